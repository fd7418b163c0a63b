//! The in-memory snapshot that `/metrics` and `report` read: per account, the
//! last complete data and the health of its latest refresh. A refresh builds
//! a whole new snapshot and swaps it in, so a scrape never sees half of one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use crate::domain::failure::SourceError;
use crate::domain::key::AccountData;

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// By account id.
    pub accounts: BTreeMap<String, AccountState>,
}

#[derive(Debug, Clone, Default)]
pub struct AccountState {
    /// The last complete data; kept when a later refresh fails.
    pub data: Option<Arc<AccountData>>,
    pub up: bool,
    pub last_success: Option<DateTime<Utc>>,
    pub last_duration: Duration,
    /// When the latest refresh finished, whatever its outcome.
    pub last_refresh: Option<DateTime<Utc>>,
    /// Why the latest refresh failed, its message redacted as the logs are
    /// (see `refresh::record`); `None` once a refresh succeeds.
    pub last_error: Option<SourceError>,
    /// When the account is tried again after its latest read failed,
    /// sooner than the interval; `None` once a read succeeds.
    pub next_try: Option<DateTime<Utc>>,
}

/// The result of refreshing one account.
#[derive(Debug)]
pub struct Outcome {
    /// The id the account had before this refresh, when known; a failed
    /// refresh is filed under it.
    pub previous_id: Option<String>,
    pub result: Result<AccountData, SourceError>,
    pub finished: DateTime<Utc>,
    pub duration: Duration,
}

impl Outcome {
    /// The account this outcome belongs to; empty when a first refresh failed
    /// before the account id could be learned.
    pub fn account_id(&self) -> &str {
        match &self.result {
            Ok(data) => &data.account_id,
            Err(_) => self.previous_id.as_deref().unwrap_or(""),
        }
    }
}

impl Snapshot {
    /// The next snapshot: this one with the outcomes applied. Failed accounts
    /// keep their data; an account whose source now reports another id (a new
    /// report file) is replaced. The outcomes' data moves into the snapshot:
    /// a copy of a large account's data would double what its refresh holds
    /// at once.
    pub fn with_outcomes(&self, outcomes: impl IntoIterator<Item = Outcome>) -> Snapshot {
        let mut next = self.clone();
        for outcome in outcomes {
            next.apply(
                outcome.previous_id.as_deref(),
                outcome.result.map(Arc::new),
                outcome.finished,
                outcome.duration,
            );
        }
        next
    }

    fn apply(
        &mut self,
        previous_id: Option<&str>,
        result: Result<Arc<AccountData>, SourceError>,
        finished: DateTime<Utc>,
        duration: Duration,
    ) {
        let id = match &result {
            Ok(data) => data.account_id.clone(),
            Err(_) => previous_id.unwrap_or("").to_string(),
        };
        if let (Some(previous), Ok(_)) = (previous_id, &result) {
            if previous != id {
                self.accounts.remove(previous);
            }
        }
        let state = self.accounts.entry(id).or_default();
        state.last_duration = duration;
        state.last_refresh = Some(finished);
        match result {
            Ok(data) => {
                state.data = Some(data);
                state.up = true;
                state.last_success = Some(finished);
                state.last_error = None;
                state.next_try = None;
            }
            Err(e) => {
                state.up = false;
                state.last_error = Some(e);
            }
        }
        // A placeholder for an account that failed before its id was known is
        // dropped as soon as the account is known under its id.
        if self.accounts.len() > 1 {
            self.accounts.retain(|id, state| !id.is_empty() || state.data.is_some());
        }
    }
}

impl Snapshot {
    /// This snapshot with `account_id` (if it is there) due to be tried
    /// again at `at`.
    pub fn with_next_try(&self, account_id: &str, at: DateTime<Utc>) -> Snapshot {
        let mut next = self.clone();
        if let Some(state) = next.accounts.get_mut(account_id) {
            state.next_try = Some(at);
        }
        next
    }

    /// Whether there is data to serve: at least one account was read. A
    /// deployment that cannot read a single account (no credentials, a wrong
    /// file) must not look healthy to its orchestrator, whatever the source.
    /// The error is one line for a person: why nothing could be served yet.
    pub fn readiness(&self) -> Result<(), String> {
        if self.accounts.values().any(|s| s.data.is_some()) {
            return Ok(());
        }
        let failed = self
            .accounts
            .iter()
            .find_map(|(id, s)| s.last_error.as_ref().map(|e| (id, e)));
        Err(match failed {
            None => "no account has been read yet".to_string(),
            Some((id, e)) => {
                let whom = if id.is_empty() {
                    String::new()
                } else {
                    format!(" (account {id})")
                };
                format!(
                    "no account has been read yet; the latest read failed{whom}: {}",
                    e.describe()
                )
            }
        })
    }

    /// This snapshot without the accounts that are no longer read (they left
    /// the organization, the filters or this shard).
    pub fn retaining(&self, account_ids: &std::collections::BTreeSet<String>) -> Snapshot {
        let mut next = self.clone();
        next.accounts.retain(|id, _| account_ids.contains(id));
        next
    }
}

/// Shared between the refresh loop (one writer) and scrapes (many readers).
#[derive(Debug, Default)]
pub struct SnapshotStore {
    current: ArcSwap<Snapshot>,
    first_round_done: AtomicBool,
}

impl SnapshotStore {
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn publish(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }

    /// Called when every account has been tried once, so that the first
    /// ready answer is followed by scrapes that hold every account that
    /// could be read.
    pub fn first_round_done(&self) {
        self.first_round_done.store(true, Ordering::Release);
    }

    /// Ready once every account was tried and one of them read (see
    /// [`Snapshot::readiness`]); derived from the published snapshot, so that
    /// a scrape that follows a ready answer sees the data. Also ready when
    /// the first round found no account to read at all (a shard to which
    /// the organization's accounts hash none, filters that leave none): a
    /// failed discovery or read leaves an account with its error, so an
    /// empty snapshot then is a plan with nothing in it, and a replica that
    /// is never ready would hold back its whole rollout.
    pub fn readiness(&self) -> Result<(), String> {
        if !self.first_round_done.load(Ordering::Acquire) {
            return Err("the first refresh has not finished".to_string());
        }
        let snapshot = self.load();
        if snapshot.accounts.is_empty() {
            return Ok(());
        }
        snapshot.readiness()
    }

    pub fn is_ready(&self) -> bool {
        self.readiness().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::failure::ErrorReason;

    fn ok(id: &str, users: usize) -> Outcome {
        Outcome {
            previous_id: Some(id.into()),
            result: Ok(AccountData {
                account_id: id.into(),
                users: (0..users)
                    .map(|i| crate::domain::key::User::new(format!("u{i}"), "/"))
                    .collect(),
                ..AccountData::default()
            }),
            finished: DateTime::from_timestamp(1_000, 0).unwrap(),
            duration: Duration::from_secs(2),
        }
    }

    fn failed(previous: Option<&str>) -> Outcome {
        Outcome {
            previous_id: previous.map(str::to_string),
            result: Err(SourceError::new(ErrorReason::Network, "down")),
            finished: DateTime::from_timestamp(2_000, 0).unwrap(),
            duration: Duration::from_secs(5),
        }
    }

    #[test]
    fn failure_keeps_last_good_data_and_marks_down() {
        let first = Snapshot::default().with_outcomes([ok("111111111111", 3)]);
        let second = first.with_outcomes([failed(Some("111111111111"))]);
        let state = &second.accounts["111111111111"];
        assert!(!state.up);
        assert_eq!(state.data.as_ref().unwrap().users.len(), 3);
        assert_eq!(state.last_success, DateTime::from_timestamp(1_000, 0));
        assert_eq!(state.last_duration, Duration::from_secs(5));
        assert_eq!(state.last_refresh, DateTime::from_timestamp(2_000, 0));
        assert_eq!(state.last_error.as_ref().map(|e| e.message.as_str()), Some("down"));
        let third = second.with_outcomes([ok("111111111111", 1)]);
        assert!(third.accounts["111111111111"].up);
        assert_eq!(
            third.accounts["111111111111"].last_error, None,
            "the error of the latest refresh only"
        );
        assert_eq!(third.accounts["111111111111"].data.as_ref().unwrap().users.len(), 1);
    }

    #[test]
    fn first_failure_without_id_is_replaced_once_known() {
        let first = Snapshot::default().with_outcomes([failed(None)]);
        assert_eq!(first.accounts.keys().collect::<Vec<_>>(), [""]);
        let second = first.with_outcomes([Outcome {
            previous_id: None,
            ..ok("111111111111", 1)
        }]);
        assert_eq!(second.accounts.keys().collect::<Vec<_>>(), ["111111111111"]);
    }

    #[test]
    fn a_source_that_changes_account_replaces_it() {
        let first = Snapshot::default().with_outcomes([ok("111111111111", 1)]);
        let second = first.with_outcomes([Outcome {
            previous_id: Some("111111111111".into()),
            ..ok("222222222222", 1)
        }]);
        assert_eq!(second.accounts.keys().collect::<Vec<_>>(), ["222222222222"]);
    }

    #[test]
    fn ready_once_one_account_was_read() {
        let store = SnapshotStore::default();
        store.publish(Snapshot::default().with_outcomes([ok("333333333333", 1)]));
        assert_eq!(
            store.readiness(),
            Err("the first refresh has not finished".into()),
            "not before every account was tried"
        );
        store.first_round_done();
        store.publish(Snapshot::default().with_outcomes([failed(None)]));
        assert_eq!(
            store.readiness(),
            Err("no account has been read yet; the latest read failed: network error: down".into())
        );
        store.publish(
            store
                .load()
                .with_outcomes([failed(Some("222222222222")), ok("111111111111", 1)]),
        );
        assert_eq!(store.readiness(), Ok(()), "one account read of two is data to serve");
        let kept = store.load().with_outcomes([failed(Some("111111111111"))]);
        assert_eq!(kept.readiness(), Ok(()), "the last good data is still served");
    }

    /// A shard that the organization's accounts all hash past has nothing
    /// to read; it must not hold back a rollout of the shards forever.
    #[test]
    fn ready_when_the_first_round_found_no_account_to_read() {
        let store = SnapshotStore::default();
        assert!(store.readiness().is_err(), "not before the first round");
        store.first_round_done();
        assert_eq!(store.readiness(), Ok(()));
        assert!(
            store.load().readiness().is_err(),
            "`report` still says that nothing was read"
        );
    }

    #[test]
    fn not_ready_names_the_failed_account() {
        let snapshot = Snapshot::default().with_outcomes([failed(Some("222222222222"))]);
        assert_eq!(
            snapshot.readiness(),
            Err(
                "no account has been read yet; the latest read failed (account 222222222222): network error: down"
                    .into()
            )
        );
    }

    #[test]
    fn accounts_no_longer_read_disappear() {
        let both = Snapshot::default().with_outcomes([ok("111111111111", 1), ok("222222222222", 1)]);
        let kept = both.retaining(&["222222222222".to_string()].into());
        assert_eq!(kept.accounts.keys().collect::<Vec<_>>(), ["222222222222"]);
    }
}

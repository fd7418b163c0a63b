//! The assessed model: every key of a snapshot measured against the policy at
//! one instant (age, time unused, bucket, high risk and why) and every
//! account summed up. `/metrics` and the report render this and compute
//! nothing themselves, so they cannot disagree about a count.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::key::{AccessKey, AccountData, KeyStatus, Privilege};
use crate::domain::policy::{short_duration, Policy};
/// One key's assessment; policy makes it, the outputs read it from here.
pub use crate::domain::policy::{Assessment, RiskReason};
use crate::domain::snapshot::{Snapshot, SnapshotStore};

/// Assesses the current snapshot whenever asked, against `clock`.
#[derive(Debug)]
pub struct Assessor {
    store: Arc<SnapshotStore>,
    policy: Policy,
    clock: fn() -> DateTime<Utc>,
}

impl Assessor {
    pub fn new(store: Arc<SnapshotStore>, policy: Policy) -> Assessor {
        Assessor::with_clock(store, policy, Utc::now)
    }

    /// As [`Assessor::new`], with ages computed against `clock` (for tests and benchmarks).
    pub fn with_clock(store: Arc<SnapshotStore>, policy: Policy, clock: fn() -> DateTime<Utc>) -> Assessor {
        Assessor { store, policy, clock }
    }

    pub fn assess(&self) -> Assessed {
        assess(self.store.load(), &self.policy, (self.clock)())
    }

    /// The current snapshot and the instant to assess it at, for outputs
    /// that render it in parts and must agree on both.
    pub fn current(&self) -> (Arc<Snapshot>, DateTime<Utc>) {
        (self.store.load(), (self.clock)())
    }

    pub fn assess_at(&self, snapshot: Arc<Snapshot>, now: DateTime<Utc>) -> Assessed {
        assess(snapshot, &self.policy, now)
    }

    /// Until when every assessment of `snapshot` made at `now` stays the
    /// same but for its ages (`None`: for ever); see [`Policy::stable_until`].
    pub fn stable_until(&self, snapshot: &Snapshot, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        snapshot
            .accounts
            .values()
            .filter_map(|state| state.data.as_ref())
            .flat_map(|data| &data.keys)
            .filter_map(|key| self.policy.stable_until(key, now))
            .min()
    }
}

/// A snapshot with its keys assessed.
#[derive(Debug)]
pub struct Assessed {
    /// When the keys were assessed.
    pub now: DateTime<Utc>,
    /// Every account with the health of its latest refresh, data or not.
    pub snapshot: Arc<Snapshot>,
    /// The accounts that have data, in account id order.
    pub accounts: Vec<AssessedAccount>,
    /// The policy the keys were assessed against, for the outputs' legends.
    pub policy: PolicyTerms,
}

/// A policy in the terms an output shows it: durations as `365d`, and the
/// age bucket labels, youngest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyTerms {
    pub rotated_more_than: String,
    pub admin_rotated_more_than: String,
    pub never_used_after: String,
    pub unused_more_than: Option<String>,
    pub age_buckets: Vec<String>,
}

impl PolicyTerms {
    pub fn of(policy: &Policy) -> PolicyTerms {
        PolicyTerms {
            rotated_more_than: short_duration(policy.rotated_more_than),
            admin_rotated_more_than: short_duration(policy.admin_rotated_more_than),
            never_used_after: short_duration(policy.never_used_after),
            unused_more_than: policy.unused_more_than.map(short_duration),
            age_buckets: policy.age_buckets.labels().to_vec(),
        }
    }
}

#[derive(Debug)]
pub struct AssessedAccount {
    pub id: String,
    pub up: bool,
    pub data: Arc<AccountData>,
    /// One per key of `data.keys`, in the same order.
    pub assessments: Vec<Assessment>,
    pub summary: AccountSummary,
}

impl AssessedAccount {
    pub fn keys(&self) -> impl Iterator<Item = (&AccessKey, &Assessment)> {
        self.data.keys.iter().zip(&self.assessments)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccountSummary {
    pub users: usize,
    pub keys: usize,
    pub active_keys: usize,
    pub high_risk_keys: usize,
    /// Active keys of admin-equivalent users; `None` when the account's
    /// privileges were not read.
    pub admin_keys: Option<usize>,
    /// Active keys of users AWS quarantined; `None` as for `admin_keys`.
    pub exposed_keys: Option<usize>,
    pub users_multiple_active_keys: usize,
    pub root_access_key_present: bool,
    /// Keys per age bucket, in bucket order.
    pub buckets: Vec<usize>,
    /// Keys per age bucket of each status, active first.
    pub buckets_by_status: [(KeyStatus, Vec<usize>); 2],
}

impl Assessed {
    /// Accounts without data: every refresh of theirs so far failed; with
    /// the error of the latest.
    pub fn not_read(&self) -> impl Iterator<Item = (&str, Option<&crate::domain::failure::SourceError>)> {
        self.snapshot
            .accounts
            .iter()
            .filter(|(_, state)| state.data.is_none())
            .map(|(id, state)| (id.as_str(), state.last_error.as_ref()))
    }
}

pub fn assess(snapshot: Arc<Snapshot>, policy: &Policy, now: DateTime<Utc>) -> Assessed {
    let terms = PolicyTerms::of(policy);
    let accounts = snapshot
        .accounts
        .iter()
        .filter_map(|(id, state)| {
            let data = state.data.clone()?;
            let assessments: Vec<Assessment> = data.keys.iter().map(|k| policy.assess(k, now)).collect();
            let summary = summarize(&data, &assessments, terms.age_buckets.len());
            Some(AssessedAccount {
                id: id.clone(),
                up: state.up,
                data,
                assessments,
                summary,
            })
        })
        .collect();
    Assessed {
        now,
        snapshot,
        accounts,
        policy: terms,
    }
}

fn summarize(data: &AccountData, assessments: &[Assessment], buckets: usize) -> AccountSummary {
    let mut summary = AccountSummary {
        users: data.users.len(),
        keys: data.keys.len(),
        active_keys: 0,
        high_risk_keys: 0,
        admin_keys: None,
        exposed_keys: None,
        users_multiple_active_keys: users_with_multiple_active_keys(data),
        root_access_key_present: data.root_access_key_present,
        buckets: vec![0; buckets],
        buckets_by_status: [
            (KeyStatus::Active, vec![0; buckets]),
            (KeyStatus::Inactive, vec![0; buckets]),
        ],
    };
    for (key, a) in data.keys.iter().zip(assessments) {
        summary.buckets[a.bucket] += 1;
        let by_status = match key.status {
            KeyStatus::Active => &mut summary.buckets_by_status[0].1,
            KeyStatus::Inactive => &mut summary.buckets_by_status[1].1,
        };
        by_status[a.bucket] += 1;
        summary.active_keys += (key.status == KeyStatus::Active) as usize;
        summary.high_risk_keys += a.high_risk() as usize;
    }
    if data.privileges_read {
        let active = || data.keys.iter().filter(|k| k.status == KeyStatus::Active);
        let count = |fact: fn(&Privilege) -> bool| active().filter(|k| k.privilege.as_ref().is_some_and(fact)).count();
        summary.admin_keys = Some(count(|p| p.admin));
        summary.exposed_keys = Some(count(|p| p.quarantined));
    }
    summary
}

/// IAM users with two active keys; root is not an IAM user.
pub fn users_with_multiple_active_keys(data: &AccountData) -> usize {
    let mut count = 0;
    let mut run: Option<(&str, u32)> = None;
    // Keys are sorted by user, so a user's keys are adjacent.
    for key in data
        .keys
        .iter()
        .filter(|k| k.status == KeyStatus::Active && !k.is_root())
    {
        run = match run {
            Some((user, n)) if user == &*key.user => Some((user, n + 1)),
            _ => Some((&key.user, 1)),
        };
        if run.is_some_and(|(_, n)| n == 2) {
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap()
    }

    fn key(user: &str, status: KeyStatus, age_days: i64) -> AccessKey {
        AccessKey::new(user, now() - chrono::Duration::days(age_days))
            .status(status)
            .last_used(now())
    }

    /// Root is not an IAM user, even with two active keys.
    #[test]
    fn root_never_counts_as_a_user_with_two_active_keys() {
        let root = || key(crate::domain::key::ROOT_USER, KeyStatus::Active, 10);
        let data = AccountData {
            keys: vec![root(), root()],
            ..AccountData::default()
        };
        assert_eq!(users_with_multiple_active_keys(&data), 0);
    }

    #[test]
    fn summary_counts_every_key_once() {
        let data = AccountData {
            account_id: "111122223333".into(),
            keys: vec![
                key("a", KeyStatus::Active, 400),
                key("a", KeyStatus::Active, 10),
                key("b", KeyStatus::Inactive, 100),
            ],
            ..AccountData::default()
        };
        let snapshot = Snapshot::default().with_outcomes([crate::domain::snapshot::Outcome {
            previous_id: None,
            result: Ok(data),
            finished: now(),
            duration: std::time::Duration::ZERO,
        }]);
        let assessed = assess(Arc::new(snapshot), &Policy::default(), now());
        let summary = &assessed.accounts[0].summary;
        assert_eq!((summary.keys, summary.active_keys, summary.high_risk_keys), (3, 2, 1));
        assert_eq!(summary.users_multiple_active_keys, 1);
        assert_eq!(summary.buckets, [1, 0, 1, 0, 1]);
        assert_eq!(summary.buckets_by_status[0].1, [1, 0, 0, 0, 1]);
        assert_eq!(summary.buckets_by_status[1].1, [0, 0, 1, 0, 0]);
    }
}

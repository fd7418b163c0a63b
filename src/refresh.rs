//! The refresh loop: discovers the accounts to read, refreshes each one on
//! its own schedule (spread over the interval, a bounded number at once),
//! applies each outcome to a new snapshot and publishes it, counting and
//! logging failures. One account's failure never touches another's data.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use chrono::Utc;
use futures::StreamExt;
use tokio::sync::watch;

use crate::accounts::{self, Caller, MemberAccount, Target};
use crate::aws::{classify, AccountAccess, Clients};
use crate::cli::SourceKind;
use crate::config::{Accounts, Shard};
use crate::metrics::Metrics;
use crate::snapshot::{Outcome, SnapshotStore};
use crate::sources::api::{self, ApiOptions};
use crate::sources::credential_report::{FileRead, ReportFile};
use crate::sources::live_report::{self, LiveReportOptions};
use crate::sources::{AccountData, ErrorReason, SourceError, UserFilter};

/// How often a credential report file is checked for changes.
const FILE_POLL: Duration = Duration::from_secs(2);

/// Looks at a file being written before a one-off read (the first refresh,
/// the `report` command) gives up on it.
const FILE_ATTEMPTS: u32 = 5;

/// What every refresh needs to know, from the settings.
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    pub interval: Duration,
    pub source: SourceKind,
    pub accounts: Accounts,
    pub shard: Shard,
    pub max_concurrent_accounts: usize,
    /// How access key ids may appear in logs.
    pub key_ids: crate::config::KeyIdLabel,
    /// Longest time one account's refresh may take.
    pub refresh_timeout: Duration,
    pub api: ApiOptions,
    pub live_report: LiveReportOptions,
}

pub struct Refresher {
    mode: Mode,
    settings: Arc<RefreshSettings>,
    store: Arc<SnapshotStore>,
    metrics: Arc<Metrics>,
}

enum Mode {
    File {
        file: Box<ReportFile>,
        filter: UserFilter,
        /// The account id learned by the last successful read.
        known_id: Option<String>,
    },
    Aws(Box<AwsState>),
}

struct AwsState {
    sdk: SdkConfig,
    base: Clients,
    organizations: aws_sdk_organizations::Client,
    targets: Vec<Target>,
    /// Per account: how to get its credentials, with assumed-role
    /// credentials cached until shortly before they expire.
    access: HashMap<String, AccountAccess>,
    /// When each account is next due.
    due: HashMap<String, Instant>,
}

impl Refresher {
    pub fn for_file(
        path: PathBuf,
        filter: UserFilter,
        settings: RefreshSettings,
        store: Arc<SnapshotStore>,
        metrics: Arc<Metrics>,
    ) -> Refresher {
        Refresher {
            mode: Mode::File {
                file: Box::new(ReportFile::new(path)),
                filter,
                known_id: None,
            },
            settings: Arc::new(settings),
            store,
            metrics,
        }
    }

    pub fn for_aws(
        sdk: SdkConfig,
        settings: RefreshSettings,
        store: Arc<SnapshotStore>,
        metrics: Arc<Metrics>,
    ) -> Refresher {
        let base = Clients::new(&sdk, &metrics.aws_calls);
        let organizations = aws_sdk_organizations::Client::from_conf(
            aws_sdk_organizations::config::Builder::from(&sdk)
                .interceptor(metrics.aws_calls.clone())
                .build(),
        );
        Refresher {
            mode: Mode::Aws(Box::new(AwsState {
                sdk,
                base,
                organizations,
                targets: Vec::new(),
                access: HashMap::new(),
                due: HashMap::new(),
            })),
            settings: Arc::new(settings),
            store,
            metrics,
        }
    }

    /// Discovers the accounts and refreshes every one of them once; returns
    /// the errors. Readiness turns on when it finishes; for a report file,
    /// once the file has been read, so that a wrong path stops a rollout.
    pub async fn refresh_all(&mut self) -> Vec<SourceError> {
        match &mut self.mode {
            Mode::File { file, .. } => {
                let started = Instant::now();
                let mut attempts = 1;
                let result = loop {
                    match file.check(true).await {
                        FileRead::Read(result) => break result,
                        FileRead::Changing | FileRead::Unchanged if attempts < FILE_ATTEMPTS => {
                            attempts += 1;
                            tokio::time::sleep(FILE_POLL).await;
                        }
                        FileRead::Changing | FileRead::Unchanged => {
                            break Err(SourceError::new(ErrorReason::Other, still_changing(file)));
                        }
                    }
                };
                self.take_file_result(result, started).into_iter().collect()
            }
            Mode::Aws(state) => {
                let mut errors = discover(state, &self.settings, &self.store, &self.metrics).await;
                let targets = state.targets.clone();
                errors.extend(refresh_targets(state, targets, &self.settings, &self.store, &self.metrics).await);
                self.store.mark_ready();
                errors
            }
        }
    }

    /// Publishes one read of the report file; returns its error.
    fn take_file_result(&mut self, result: Result<AccountData, SourceError>, started: Instant) -> Option<SourceError> {
        let Mode::File { filter, known_id, .. } = &mut self.mode else {
            return None;
        };
        let outcome = Outcome {
            previous_id: known_id.clone(),
            result: result.map(|mut data| {
                filter.apply(&mut data);
                data
            }),
            finished: Utc::now(),
            duration: started.elapsed(),
        };
        if let Ok(data) = &outcome.result {
            *known_id = Some(data.account_id.clone());
            self.store.mark_ready();
        }
        record(&self.store, &self.metrics, self.settings.key_ids, &outcome);
        outcome.result.err()
    }

    /// Refreshes at start, then every interval; returns when `shutdown` turns
    /// true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        tokio::select! {
            _ = self.refresh_all() => {}
            _ = shutdown.changed() => return,
        }
        match self.mode {
            Mode::File { .. } => self.run_file(shutdown).await,
            Mode::Aws(_) => self.run_aws(shutdown).await,
        }
    }

    /// A report file: read again when its content or identity changes, and
    /// every interval; a version still being written waits for the next look.
    async fn run_file(mut self, mut shutdown: watch::Receiver<bool>) {
        let interval = self.settings.interval;
        let mut next = Instant::now() + interval;
        let mut changing_since: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until((Instant::now() + FILE_POLL).min(next).into()) => {}
                _ = shutdown.changed() => return,
            }
            let Mode::File { file, .. } = &mut self.mode else {
                return;
            };
            let due = Instant::now() >= next;
            let started = Instant::now();
            match file.check(due).await {
                FileRead::Unchanged => {}
                FileRead::Changing => {
                    // One line per spell of writing, not one per look.
                    if changing_since.is_none() {
                        tracing::info!(file = %file.path().display(), "credential report file is being written; waiting until it holds still");
                    }
                    let since = *changing_since.get_or_insert(started);
                    if due && since.elapsed() >= interval {
                        let error = SourceError::new(ErrorReason::Other, still_changing(file));
                        self.take_file_result(Err(error), started);
                        changing_since = None;
                        next = Instant::now() + interval;
                    }
                }
                FileRead::Read(result) => {
                    if !due {
                        tracing::info!(file = %file.path().display(), "credential report file changed; read it again");
                    }
                    changing_since = None;
                    self.take_file_result(result, started);
                    next = Instant::now() + interval;
                }
            }
        }
    }

    /// AWS accounts: each refreshed once per interval at its own phase, at
    /// most `max_concurrent_accounts` at once, each started as soon as it is
    /// due and a slot is free, so that a slow or hanging account never holds
    /// back the others.
    async fn run_aws(mut self, mut shutdown: watch::Receiver<bool>) {
        let Mode::Aws(state) = &mut self.mode else {
            return;
        };
        let settings = self.settings.clone();
        let interval = settings.interval;
        let start = Instant::now();
        let mut next_discovery = start + interval;
        state.due = state
            .targets
            .iter()
            .map(|t| (t.account_id.clone(), start + phase(&t.account_id, interval)))
            .collect();
        let mut in_flight = futures::stream::FuturesUnordered::new();
        let mut busy: BTreeSet<String> = BTreeSet::new();
        loop {
            let now = Instant::now();
            if now >= next_discovery {
                let known: BTreeSet<String> = state.targets.iter().map(|t| t.account_id.clone()).collect();
                discover(state, &settings, &self.store, &self.metrics).await;
                // A new account is read at once, then on its phase.
                for t in state.targets.iter().filter(|t| !known.contains(&t.account_id)) {
                    state.due.insert(t.account_id.clone(), now);
                }
                next_discovery = now + interval;
            }
            let due: Vec<Target> = state
                .targets
                .iter()
                .filter(|t| !busy.contains(&t.account_id) && state.due.get(&t.account_id).is_some_and(|d| *d <= now))
                .take(settings.max_concurrent_accounts.max(1).saturating_sub(in_flight.len()))
                .cloned()
                .collect();
            for target in due {
                let next = state.due.get(&target.account_id).copied().unwrap_or(now) + interval;
                state
                    .due
                    .insert(target.account_id.clone(), next.max(now + interval / 2));
                busy.insert(target.account_id.clone());
                in_flight.push(start_refresh(state, target, &settings, &self.metrics));
            }
            let wake = state
                .due
                .iter()
                .filter(|(id, _)| !busy.contains(*id))
                .map(|(_, due)| *due)
                .chain([next_discovery])
                .min()
                .unwrap_or(next_discovery);
            tokio::select! {
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    busy.remove(&done.0.account_id);
                    finish_refresh(state, &self.store, &self.metrics, settings.key_ids, done);
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

fn still_changing(file: &ReportFile) -> String {
    format!(
        "{}: the file kept changing while it was read; write it elsewhere and rename it into place",
        file.path().display()
    )
}

/// A stable offset of the account within the interval, so that refreshes
/// spread over it instead of bursting at its start, and an account keeps its
/// slot when others come and go.
fn phase(account_id: &str, interval: Duration) -> Duration {
    let slots = interval.as_millis().max(1) as u64;
    let hash = accounts::shard_of(account_id, u32::MAX) as u64;
    Duration::from_millis(hash % slots)
}

/// Learns who the base credentials are and, with Organizations, the member
/// accounts; plans the targets. On failure the previous targets stay.
async fn discover(
    state: &mut AwsState,
    settings: &RefreshSettings,
    store: &SnapshotStore,
    metrics: &Metrics,
) -> Vec<SourceError> {
    let result = async {
        let identity = state
            .base
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| classify("GetCallerIdentity", &e))?;
        let account_id = identity
            .account()
            .filter(|id| crate::config::is_account_id(id))
            .ok_or_else(|| {
                SourceError::new(
                    ErrorReason::InvalidResponse,
                    "GetCallerIdentity returned no valid account id",
                )
            })?;
        let caller = Caller::from_arn(account_id, identity.arn());
        let members = if accounts::uses_organization(&settings.accounts) {
            Some(list_members(&state.organizations).await?)
        } else {
            None
        };
        Ok::<_, SourceError>(accounts::plan(
            &settings.accounts,
            settings.shard,
            &caller,
            members.as_deref(),
        ))
    }
    .await;
    match result {
        Ok(targets) => {
            let ids: BTreeSet<String> = targets.iter().map(|t| t.account_id.clone()).collect();
            state.access.retain(|id, _| ids.contains(id));
            state.due.retain(|id, _| ids.contains(id));
            if targets != state.targets {
                tracing::info!(accounts = targets.len(), "accounts discovered");
            }
            state.targets = targets;
            store.publish(store.load().retaining(&ids));
            Vec::new()
        }
        Err(e) if state.targets.is_empty() => {
            // Nothing known yet: show the failure as an account that is
            // down, so that "all accounts down" alerts see it.
            let outcome = Outcome {
                previous_id: None,
                result: Err(e.clone()),
                finished: Utc::now(),
                duration: Duration::ZERO,
            };
            record(store, metrics, settings.key_ids, &outcome);
            vec![e]
        }
        Err(e) => {
            tracing::error!(reason = e.reason.as_str(), code = e.code.as_deref().unwrap_or(""), error = %settings.key_ids.redact(&e.message), "account discovery failed; keeping the previous accounts");
            metrics.count_refresh_error("", e.reason.as_str());
            vec![e]
        }
    }
}

async fn list_members(client: &aws_sdk_organizations::Client) -> Result<Vec<MemberAccount>, SourceError> {
    use aws_sdk_organizations::types::AccountStatus;
    let pages: Vec<_> = client
        .list_accounts()
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| classify("ListAccounts", &e))?;
    let accounts = pages.into_iter().flat_map(|page| page.accounts.unwrap_or_default());
    #[allow(deprecated)] // `Status` is what moto and older organizations fill in
    let active = accounts
        .filter(|a| a.status() == Some(&AccountStatus::Active))
        .filter_map(|a| {
            Some(MemberAccount {
                id: a.id()?.to_string(),
                name: a.name().unwrap_or_default().to_string(),
            })
        })
        .filter(|m| crate::config::is_account_id(&m.id))
        .collect();
    Ok(active)
}

/// Refreshes the targets, at most `max_concurrent_accounts` at once, each
/// outcome published as soon as it is known.
async fn refresh_targets(
    state: &mut AwsState,
    targets: Vec<Target>,
    settings: &Arc<RefreshSettings>,
    store: &SnapshotStore,
    metrics: &Arc<Metrics>,
) -> Vec<SourceError> {
    let refreshes: Vec<_> = targets
        .into_iter()
        .map(|t| start_refresh(state, t, settings, metrics))
        .collect();
    let mut done = futures::stream::iter(refreshes).buffer_unordered(settings.max_concurrent_accounts.max(1));
    let mut errors = Vec::new();
    while let Some(refreshed) = done.next().await {
        errors.extend(refreshed.2.result.as_ref().err().cloned());
        finish_refresh(state, store, metrics, settings.key_ids, refreshed);
    }
    errors
}

type Refreshed = (Target, AccountAccess, Outcome);

/// A refresh of one account that owns what it needs, so that it can run
/// while other accounts start and finish. It gives up after
/// `account_timeout` so that a hung account frees its slot.
fn start_refresh(
    state: &mut AwsState,
    target: Target,
    settings: &Arc<RefreshSettings>,
    metrics: &Arc<Metrics>,
) -> impl std::future::Future<Output = Refreshed> + 'static {
    let mut access = state
        .access
        .remove(&target.account_id)
        .filter(|a| a.role() == target.role.as_ref())
        .unwrap_or_else(|| AccountAccess::new(target.role.clone()));
    let (sdk, base, settings, metrics) = (state.sdk.clone(), state.base.clone(), settings.clone(), metrics.clone());
    async move {
        let started = Instant::now();
        let limit = settings.refresh_timeout;
        let work = refresh_account(&target, &mut access, &sdk, &base, &settings, &metrics);
        let result = tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(SourceError::new(
                ErrorReason::Network,
                format!("the refresh did not finish within {}s", limit.as_secs()),
            ))
        });
        let outcome = Outcome {
            previous_id: Some(target.account_id.clone()),
            result,
            finished: Utc::now(),
            duration: started.elapsed(),
        };
        (target, access, outcome)
    }
}

fn finish_refresh(
    state: &mut AwsState,
    store: &SnapshotStore,
    metrics: &Metrics,
    key_ids: crate::config::KeyIdLabel,
    (target, access, outcome): Refreshed,
) {
    record(store, metrics, key_ids, &outcome);
    // An account dropped by a discovery while it was being read stays gone.
    if state.targets.iter().any(|t| t.account_id == target.account_id) {
        state.access.insert(target.account_id, access);
    } else {
        store.publish(
            store
                .load()
                .retaining(&state.targets.iter().map(|t| t.account_id.clone()).collect()),
        );
    }
}

/// The default longest time one account's refresh may take: its interval, but
/// never less than five minutes, which a large account needs.
pub fn default_refresh_timeout(interval: Duration) -> Duration {
    interval.max(Duration::from_secs(300))
}

async fn refresh_account(
    target: &Target,
    access: &mut AccountAccess,
    sdk: &SdkConfig,
    base: &Clients,
    settings: &RefreshSettings,
    metrics: &Metrics,
) -> Result<AccountData, SourceError> {
    let clients = access.clients(sdk, base, &metrics.aws_calls).await?;
    let data = match settings.source {
        SourceKind::Api => {
            api::fetch_account(&clients, &target.account_id, target.name.as_deref(), &settings.api).await?
        }
        SourceKind::CredentialReport => {
            let mut data = live_report::fetch(&clients.iam, &settings.live_report, Utc::now()).await?;
            if data.account_id.is_empty() {
                // No rows at all: an account without users (and, in moto, root).
                data.account_id = target.account_id.clone();
            }
            if data.account_id != target.account_id {
                return Err(SourceError::new(
                    ErrorReason::InvalidResponse,
                    format!(
                        "the credential report is of account {}, not {}",
                        data.account_id, target.account_id
                    ),
                ));
            }
            settings.api.filter.apply(&mut data);
            data.account_name = api::account_name(&clients, target.name.as_deref()).await?;
            data
        }
    };
    Ok(data)
}

/// Applies one outcome to a new snapshot and publishes it; counts and logs a
/// failure once, with its AWS error code.
fn record(store: &SnapshotStore, metrics: &Metrics, key_ids: crate::config::KeyIdLabel, outcome: &Outcome) {
    let account_id = outcome.account_id();
    match &outcome.result {
        Ok(data) => {
            log_report_warnings(store, data);
            tracing::info!(
                account_id = %data.account_id,
                users = data.users.len(),
                keys = data.keys.len(),
                duration_seconds = outcome.duration.as_secs_f64(),
                "refresh succeeded"
            )
        }
        Err(e) => {
            tracing::error!(
                account_id = %account_id,
                reason = e.reason.as_str(),
                code = e.code.as_deref().unwrap_or(""),
                error = %key_ids.redact(&e.message),
                "refresh failed; keeping the last good data"
            );
            metrics.count_refresh_error(account_id, e.reason.as_str());
        }
    }
    let mut next = store.load().with_outcomes(std::slice::from_ref(outcome));
    // The landing page shows the error: redacted as the log line above.
    if let Some(e) = next.accounts.get_mut(account_id).and_then(|s| s.last_error.as_mut()) {
        e.message = key_ids.redact(&e.message).into_owned();
    }
    store.publish(next);
}

/// What reading a credential report worked around, logged once per report:
/// the live source reuses a report for hours and the file is read every
/// interval, and the same lines again would only bury new ones.
fn log_report_warnings(store: &SnapshotStore, data: &AccountData) {
    let snapshot = store.load();
    let previous = snapshot.accounts.get(&data.account_id).and_then(|s| s.data.as_deref());
    let same_report = previous.is_some_and(|p| {
        p.credential_report_generated == data.credential_report_generated
            && p.credential_report_warnings == data.credential_report_warnings
    });
    if same_report {
        return;
    }
    for warning in &data.credential_report_warnings {
        tracing::warn!(account_id = %data.account_id, "{warning}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error kept for the landing page hides key ids as the log line does.
    #[test]
    fn a_failure_is_kept_with_key_ids_redacted() {
        let store = Arc::new(SnapshotStore::default());
        let metrics = Metrics::new(
            store.clone(),
            crate::policy::Policy::default(),
            crate::config::Labels::default(),
            crate::metrics::BuildInfo::CURRENT,
        );
        let outcome = Outcome {
            previous_id: Some("111122223333".into()),
            result: Err(SourceError::new(
                ErrorReason::AccessDenied,
                "key AKIAIOSFODNN7EXAMPLE is not allowed",
            )),
            finished: Utc::now(),
            duration: Duration::from_secs(1),
        };
        record(&store, &metrics, crate::config::KeyIdLabel::Last4, &outcome);
        let snapshot = store.load();
        let error = snapshot.accounts["111122223333"].last_error.as_ref().unwrap();
        assert_eq!(error.message, "key ****MPLE is not allowed");
        assert_eq!(error.reason, ErrorReason::AccessDenied);
    }

    #[test]
    fn phases_spread_accounts_over_the_interval_and_stay_put() {
        let interval = Duration::from_secs(1800);
        let ids: Vec<String> = (0..200u64)
            .map(|i| format!("{:012}", 200_000_000_000 + i * 104_729))
            .collect();
        let phases: Vec<Duration> = ids.iter().map(|id| phase(id, interval)).collect();
        assert!(phases.iter().all(|p| *p < interval));
        assert_eq!(
            phases,
            ids.iter().map(|id| phase(id, interval)).collect::<Vec<_>>(),
            "stable"
        );
        // Every tenth of the interval gets some accounts: no burst at its start.
        let mut tenths = [0usize; 10];
        for p in &phases {
            tenths[(p.as_secs_f64() / interval.as_secs_f64() * 10.0) as usize] += 1;
        }
        assert!(tenths.iter().all(|n| (8..=35).contains(n)), "{tenths:?}");
    }
}

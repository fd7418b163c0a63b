//! The refresh loop: discovers the accounts to read, refreshes each one on
//! its own schedule (spread over the interval, a bounded number at once),
//! applies each outcome to a new snapshot and publishes it, counting and
//! logging failures. One account's failure never touches another's data.

mod access;
mod fetch;
mod publish;
mod schedule;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use chrono::Utc;
use futures::StreamExt;
use tokio::sync::watch;

use access::AccountAccess;
use fetch::{discover, start_refresh, Refreshed};
use publish::record_and_publish;
pub use publish::RefreshMetrics;
use schedule::Schedule;

use crate::collect::aws::{self, AwsCallCounters, Clients};
use crate::collect::file_watch::POLL;
use crate::collect::sources::credential_report::{FileRead, ReportFile};
use crate::collect::sources::source::AccountSource;
use crate::collect::sources::UserFilter;
use crate::domain::accounts::{Accounts, Shard, Target};
use crate::domain::failure::{ErrorReason, SourceError};
use crate::domain::key::AccountData;
use crate::domain::snapshot::{Outcome, SnapshotStore};

/// Looks at a file being written before a one-off read (the first refresh,
/// the `report` command) gives up on it.
const FILE_ATTEMPTS: u32 = 5;

/// The log target of every line the refresh writes (its submodules' too),
/// which `report` filters on.
pub const LOG_TARGET: &str = module_path!();

/// What every refresh needs to know, from the settings.
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    pub interval: Duration,
    /// How each account is read.
    pub source: AccountSource,
    /// The users no source reports (`users.*`).
    pub users: UserFilter,
    pub accounts: Accounts,
    pub shard: Shard,
    pub max_concurrent_accounts: usize,
    /// How access key ids may appear in logs.
    pub key_ids: crate::domain::disclosure::KeyIdLabel,
    /// Longest time one account's refresh may take.
    pub refresh_timeout: Duration,
}

pub struct Refresher {
    mode: Mode,
    settings: Arc<RefreshSettings>,
    store: Arc<SnapshotStore>,
    metrics: RefreshMetrics,
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
    aws_calls: AwsCallCounters,
    organizations: aws_sdk_organizations::Client,
    targets: Vec<Target>,
    /// Per account: how to get its credentials, with assumed-role
    /// credentials cached until shortly before they expire.
    access: HashMap<String, AccountAccess>,
}

impl Refresher {
    pub fn for_file(
        path: PathBuf,
        filter: UserFilter,
        settings: RefreshSettings,
        store: Arc<SnapshotStore>,
        metrics: RefreshMetrics,
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
        metrics: RefreshMetrics,
        aws_calls: AwsCallCounters,
    ) -> Refresher {
        let base = Clients::new(&sdk, &aws_calls);
        let organizations = aws::organizations_client(&sdk, &aws_calls);
        aws_calls.start_at_zero(&operations(&settings));
        Refresher {
            mode: Mode::Aws(Box::new(AwsState {
                sdk,
                base,
                aws_calls,
                organizations,
                targets: Vec::new(),
                access: HashMap::new(),
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
                            tokio::time::sleep(POLL).await;
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
        let error = match &outcome.result {
            Ok(data) => {
                *known_id = Some(data.account_id.clone());
                None
            }
            Err(e) => Some(e.clone()),
        };
        record_and_publish(&self.store, &self.metrics, self.settings.key_ids, outcome);
        // Ready only once the data is published: a scrape that follows a
        // ready answer must see it (at 100,000 keys publishing takes long
        // enough for a scrape to come in between).
        if error.is_none() {
            self.store.mark_ready();
        }
        error
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
                _ = tokio::time::sleep_until((Instant::now() + POLL).min(next).into()) => {}
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
        let mut schedule = Schedule::new(
            Instant::now(),
            settings.interval,
            settings.max_concurrent_accounts,
            &state.targets,
        );
        let mut in_flight = futures::stream::FuturesUnordered::new();
        loop {
            let now = Instant::now();
            if schedule.discovery_due(now) {
                discover(state, &settings, &self.store, &self.metrics).await;
                schedule.discovered(now, &state.targets);
            }
            for target in schedule.start_due(now, &state.targets) {
                in_flight.push(start_refresh(state, target, &settings));
            }
            let wake = schedule.next_wake();
            tokio::select! {
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    schedule.finished(&done.target.account_id);
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

/// Refreshes the targets, at most `max_concurrent_accounts` at once, each
/// outcome published as soon as it is known.
async fn refresh_targets(
    state: &mut AwsState,
    targets: Vec<Target>,
    settings: &Arc<RefreshSettings>,
    store: &SnapshotStore,
    metrics: &RefreshMetrics,
) -> Vec<SourceError> {
    let refreshes: Vec<_> = targets.into_iter().map(|t| start_refresh(state, t, settings)).collect();
    let mut done = futures::stream::iter(refreshes).buffer_unordered(settings.max_concurrent_accounts.max(1));
    let mut errors = Vec::new();
    while let Some(refreshed) = done.next().await {
        errors.extend(refreshed.outcome.result.as_ref().err().cloned());
        finish_refresh(state, store, metrics, settings.key_ids, refreshed);
    }
    errors
}

fn finish_refresh(
    state: &mut AwsState,
    store: &SnapshotStore,
    metrics: &RefreshMetrics,
    key_ids: crate::domain::disclosure::KeyIdLabel,
    Refreshed {
        target,
        access,
        outcome,
    }: Refreshed,
) {
    record_and_publish(store, metrics, key_ids, outcome);
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

/// Every AWS operation the refresh will call with these settings: who the
/// credentials are, the Organizations members, the roles, and the source's.
fn operations(settings: &RefreshSettings) -> Vec<(&'static str, &'static str)> {
    let mut operations = vec![("sts", "GetCallerIdentity")];
    if crate::domain::accounts::uses_organization(&settings.accounts) {
        operations.push(("organizations", "ListAccounts"));
    }
    if settings.accounts.organization.is_some() || !settings.accounts.static_accounts.is_empty() {
        operations.push(("sts", "AssumeRole"));
    }
    operations.extend(settings.source.operations(&settings.users));
    operations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::sources::api::ApiOptions;
    use crate::collect::sources::SourceKind;
    use crate::domain::accounts::OrganizationAccounts;

    fn settings(kind: SourceKind, accounts: Accounts, tags: Vec<String>) -> RefreshSettings {
        RefreshSettings {
            interval: Duration::from_secs(60),
            source: AccountSource::new(
                kind,
                ApiOptions {
                    max_concurrent_requests: 1,
                    user_tags: tags,
                },
                Default::default(),
            ),
            users: UserFilter::default(),
            accounts,
            shard: Shard { index: 0, count: 1 },
            max_concurrent_accounts: 1,
            key_ids: crate::domain::disclosure::KeyIdLabel::Last4,
            refresh_timeout: Duration::from_secs(60),
        }
    }

    fn names(settings: &RefreshSettings) -> Vec<String> {
        operations(settings)
            .iter()
            .map(|(service, operation)| format!("{service}:{operation}"))
            .collect()
    }

    /// The AWS call counters start at 0 for every operation a refresh will
    /// call, and only those: roles add AssumeRole, Organizations ListAccounts,
    /// user tags ListUserTags, the credential report source its own two.
    #[test]
    fn the_operations_started_at_zero_follow_the_settings() {
        assert_eq!(
            names(&settings(SourceKind::Api, Accounts::default(), vec![])),
            [
                "sts:GetCallerIdentity",
                "iam:GetAccountSummary",
                "iam:ListUsers",
                "iam:ListAccessKeys",
                "iam:GetAccessKeyLastUsed",
                "iam:ListAccountAliases"
            ]
        );
        let org = Accounts {
            organization: Some(OrganizationAccounts {
                role_name: "R".into(),
                external_id: None,
            }),
            ..Accounts::default()
        };
        assert_eq!(
            names(&settings(SourceKind::CredentialReport, org, vec![])),
            [
                "sts:GetCallerIdentity",
                "organizations:ListAccounts",
                "sts:AssumeRole",
                "iam:GenerateCredentialReport",
                "iam:GetCredentialReport",
                "iam:ListAccountAliases"
            ]
        );
        let tags = names(&settings(SourceKind::Api, Accounts::default(), vec!["team".into()]));
        assert!(tags.contains(&"iam:ListUserTags".to_string()), "{tags:?}");
    }
}

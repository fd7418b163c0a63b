//! The refresh loop: discovers the accounts to read, refreshes each one on
//! its own schedule (spread over the interval, a bounded number at once),
//! applies each outcome to a new snapshot and publishes it, counting and
//! logging failures. One account's failure never touches another's data.

mod access;
mod fetch;
mod publish;
mod schedule;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use chrono::Utc;
use futures::StreamExt;
use tokio::sync::watch;

use access::AccountAccess;
use fetch::{discover, start_read, Refreshed};
use publish::record_and_publish;
pub use publish::RefreshMetrics;
use schedule::Schedule;

use crate::collect::aws::{self, AwsCallCounters, AwsSettings, Clients};
use crate::collect::sources::{Occasion, Source, UserFilter};
use crate::domain::accounts::{Accounts, Shard, Target};
use crate::domain::failure::SourceError;
use crate::domain::snapshot::SnapshotStore;

/// The log target of every line the refresh writes (its submodules' too),
/// which `report` filters on.
pub const LOG_TARGET: &str = module_path!();

/// What every refresh needs to know, from the settings.
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    pub interval: Duration,
    /// Where every account is read from.
    pub source: Source,
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
    settings: Arc<RefreshSettings>,
    store: Arc<SnapshotStore>,
    metrics: RefreshMetrics,
    /// The accounts to read: discovered through AWS, or the report file's one.
    targets: Vec<Target>,
    /// How accounts are found and reached, for a source that calls AWS.
    aws: Option<Box<AwsState>>,
    /// The accounts whose read at start failed: the schedule tries them
    /// again soon.
    failed_at_start: Vec<String>,
}

struct AwsState {
    sdk: SdkConfig,
    base: Clients,
    aws_calls: AwsCallCounters,
    organizations: aws_sdk_organizations::Client,
    /// Per account: how to get its credentials, with assumed-role
    /// credentials cached until shortly before they expire.
    access: HashMap<String, AccountAccess>,
}

impl Refresher {
    /// A refresher of `settings.source`; the AWS configuration is loaded
    /// only for a source that calls AWS.
    pub async fn new(
        settings: RefreshSettings,
        aws_settings: &AwsSettings,
        store: Arc<SnapshotStore>,
        metrics: RefreshMetrics,
        aws_calls: AwsCallCounters,
    ) -> Refresher {
        let aws = if settings.source.calls_aws() {
            let sdk = aws::load_sdk_config(aws_settings).await;
            let rate = Arc::new(aws::RequestRate::new(aws_settings.max_requests_per_second));
            let base = Clients::new(&sdk, &aws_calls, rate);
            let organizations = aws::organizations_client(&sdk, &aws_calls);
            aws_calls.start_at_zero(&operations(&settings));
            Some(Box::new(AwsState {
                sdk,
                base,
                aws_calls,
                organizations,
                access: HashMap::new(),
            }))
        } else {
            None
        };
        Refresher {
            settings: Arc::new(settings),
            store,
            metrics,
            targets: Vec::new(),
            aws,
            failed_at_start: Vec::new(),
        }
    }

    /// Discovers the accounts and refreshes every one of them once; returns
    /// the errors. Readiness waits for it, and then for one account read.
    pub async fn refresh_all(&mut self) -> Vec<SourceError> {
        let mut errors = self.discover().await;
        let reads: Vec<_> = (self.targets.clone().into_iter())
            .map(|t| start_read(self.aws.as_deref_mut(), t, Occasion::First, &self.settings))
            .collect();
        let mut done = futures::stream::iter(reads).buffer_unordered(self.settings.max_concurrent_accounts.max(1));
        while let Some(read) = done.next().await {
            let account_id = read.target.account_id.clone();
            if let Some(error) = self.finish_read(read) {
                self.failed_at_start.push(account_id);
                errors.push(error);
            }
        }
        self.store.first_round_done();
        errors
    }

    /// Refreshes at start, then each account once per interval at its own
    /// phase (a report file: an interval after its last read, and whenever
    /// it changes), at most `max_concurrent_accounts` at once, each started
    /// as soon as it is due and a slot is free, so that a slow or hanging
    /// account never holds back the others. Returns when `shutdown` turns
    /// true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        tokio::select! {
            _ = self.refresh_all() => {}
            _ = shutdown.changed() => return,
        }
        let settings = self.settings.clone();
        let mut schedule = Schedule::new(
            Instant::now(),
            settings.interval,
            settings.max_concurrent_accounts,
            &self.targets,
            settings.source.looks_every(),
        );
        for account_id in std::mem::take(&mut self.failed_at_start) {
            let next = schedule.failed(&account_id, Instant::now(), jitter());
            self.tell_next_try(&account_id, schedule.failures(&account_id), next);
        }
        let mut in_flight = futures::stream::FuturesUnordered::new();
        loop {
            let now = Instant::now();
            if schedule.discovery_due(now) {
                self.discover().await;
                schedule.discovered(now, &self.targets);
            }
            for (target, occasion) in schedule.start_due(now, &self.targets) {
                in_flight.push(start_read(self.aws.as_deref_mut(), target, occasion, &settings));
            }
            let wake = schedule.next_wake();
            tokio::select! {
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    let (account_id, now) = (done.target.account_id.clone(), Instant::now());
                    let published = done.outcome.is_some();
                    schedule.finished(&account_id, now, published);
                    match self.finish_read(done) {
                        Some(_) => {
                            let next = schedule.failed(&account_id, now, jitter());
                            self.tell_next_try(&account_id, schedule.failures(&account_id), next);
                        }
                        None if published => schedule.succeeded(&account_id, now),
                        None => {}
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Says when a failed account is tried again, in the log and on the
    /// landing page, since it is sooner than the interval.
    fn tell_next_try(&self, account_id: &str, failures: u32, next: Instant) {
        let wait = next.saturating_duration_since(Instant::now());
        let seconds = wait.as_secs();
        tracing::info!(
            account_id,
            failures,
            next_try_in_seconds = seconds,
            "the account's read failed; trying it again in {seconds}s"
        );
        let at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        self.store.publish(self.store.load().with_next_try(account_id, at));
    }

    /// Finds the accounts to read: through AWS, or the report file's one,
    /// whose id only the file tells.
    async fn discover(&mut self) -> Vec<SourceError> {
        match self.aws.as_deref_mut() {
            Some(aws) => discover(aws, &mut self.targets, &self.settings, &self.store, &self.metrics).await,
            None => {
                self.targets = vec![Target {
                    account_id: String::new(),
                    name: None,
                    role: None,
                }];
                Vec::new()
            }
        }
    }

    /// Publishes a finished read, if it had something new; returns its error.
    fn finish_read(
        &mut self,
        Refreshed {
            target,
            access,
            outcome,
        }: Refreshed,
    ) -> Option<SourceError> {
        let error = outcome.as_ref().and_then(|o| o.result.as_ref().err().cloned());
        if let Some(outcome) = outcome {
            record_and_publish(&self.store, &self.metrics, self.settings.key_ids, outcome);
        }
        // An account dropped by a discovery while it was being read stays gone.
        if self.targets.iter().any(|t| t.account_id == target.account_id) {
            if let (Some(aws), Some(access)) = (self.aws.as_deref_mut(), access) {
                aws.access.insert(target.account_id, access);
            }
        } else {
            let ids = self.targets.iter().map(|t| t.account_id.clone()).collect();
            self.store.publish(self.store.load().retaining(&ids));
        }
        error
    }
}

/// The default longest time one account's refresh may take: its interval, but
/// never less than five minutes, which a large account needs.
/// A number from 0 to 1 for the retry jitter; not for anything secret.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

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
    operations.extend(settings.source.operations());
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
            source: Source::new(
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
    /// the credential report source its own two and the authorization details.
    #[test]
    fn the_operations_started_at_zero_follow_the_settings() {
        assert_eq!(
            names(&settings(SourceKind::Api, Accounts::default(), vec![])),
            [
                "sts:GetCallerIdentity",
                "iam:GetAccountSummary",
                "iam:GetAccountAuthorizationDetails",
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
                "iam:GetAccountAuthorizationDetails",
                "iam:ListAccountAliases"
            ]
        );
        // Tags come with the authorization details: no call per user.
        let tags = names(&settings(SourceKind::Api, Accounts::default(), vec!["team".into()]));
        assert!(
            !tags
                .iter()
                .any(|op| op.contains("ListUserTags") || op.contains("ListUsers")),
            "{tags:?}"
        );
    }
}

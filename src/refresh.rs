//! The refresh loop: asks the source for each account's data, applies the
//! outcome to a new snapshot and publishes it, counting and logging failures.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::Utc;
use tokio::sync::watch;

use crate::aws::Clients;
use crate::metrics::Metrics;
use crate::snapshot::{Outcome, SnapshotStore};
use crate::sources::api::{self, ApiOptions};
use crate::sources::{credential_report, AccountData, SourceError, UserFilter};

/// How often a credential report file is checked for changes.
const FILE_POLL: Duration = Duration::from_secs(2);

pub enum Source {
    Api { clients: Clients, options: ApiOptions },
    File { path: PathBuf, filter: UserFilter },
}

impl Source {
    async fn fetch(&self) -> Result<AccountData, SourceError> {
        match self {
            Source::Api { clients, options } => api::fetch_account(clients, options).await,
            Source::File { path, filter } => {
                let mut data = credential_report::read_file(path)?;
                filter.apply(&mut data);
                Ok(data)
            }
        }
    }
}

pub struct Refresher {
    source: Source,
    store: Arc<SnapshotStore>,
    metrics: Arc<Metrics>,
    /// The account id learned by the last successful refresh.
    known_id: Option<String>,
}

impl Refresher {
    pub fn new(source: Source, store: Arc<SnapshotStore>, metrics: Arc<Metrics>) -> Refresher {
        Refresher {
            source,
            store,
            metrics,
            known_id: None,
        }
    }

    /// Refreshes every account once and publishes the result; returns the
    /// error of the refresh if it failed.
    pub async fn refresh(&mut self) -> Option<SourceError> {
        let started = Instant::now();
        let result = self.source.fetch().await;
        let outcome = Outcome {
            previous_id: self.known_id.clone(),
            result,
            finished: Utc::now(),
            duration: started.elapsed(),
        };
        let account_id = outcome.account_id().to_string();
        let error = match &outcome.result {
            Ok(data) => {
                tracing::info!(
                    account_id = %data.account_id,
                    users = data.users.len(),
                    keys = data.keys.len(),
                    duration_seconds = outcome.duration.as_secs_f64(),
                    "refresh succeeded"
                );
                self.known_id = Some(data.account_id.clone());
                None
            }
            Err(e) => {
                tracing::error!(
                    account_id = %account_id,
                    reason = e.reason.as_str(),
                    code = e.code.as_deref().unwrap_or(""),
                    error = %e,
                    "refresh failed; keeping the last good data"
                );
                self.metrics.count_refresh_error(&account_id, e.reason.as_str());
                Some(e.clone())
            }
        };
        let next = self.store.load().with_outcomes(std::slice::from_ref(&outcome));
        self.store.publish(next);
        error
    }

    /// Refreshes at start, then every `interval` and, for a report file, as
    /// soon as the file changes; returns when `shutdown` turns true.
    pub async fn run(mut self, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        let mut seen = self.file_fingerprint();
        self.refresh().await;
        let mut next_refresh = tokio::time::Instant::now() + interval;
        loop {
            let wake = match self.source {
                Source::File { .. } => next_refresh.min(tokio::time::Instant::now() + FILE_POLL),
                Source::Api { .. } => next_refresh,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = shutdown.changed() => return,
            }
            let fingerprint = self.file_fingerprint();
            let changed = fingerprint != seen;
            if changed || tokio::time::Instant::now() >= next_refresh {
                if changed {
                    tracing::info!("credential report file changed; reading it again");
                }
                seen = fingerprint;
                self.refresh().await;
                next_refresh = tokio::time::Instant::now() + interval;
            }
        }
    }

    fn file_fingerprint(&self) -> Option<(SystemTime, u64)> {
        let Source::File { path, .. } = &self.source else {
            return None;
        };
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }
}

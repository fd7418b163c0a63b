//! Publishing what a refresh learned: each outcome applied to a new snapshot,
//! failures logged once and counted in `aws_iam_exporter_refresh_errors_total`,
//! which refresh owns and registers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::domain::disclosure::KeyIdLabel;
use crate::domain::failure::ErrorReason;
use crate::domain::key::AccountData;
use crate::domain::snapshot::{Outcome, SnapshotStore};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefreshErrorLabels {
    account_id: String,
    reason: &'static str,
}

/// The refresh's own counters.
#[derive(Debug, Clone, Default)]
pub struct RefreshMetrics {
    errors: Family<RefreshErrorLabels, Counter>,
}

impl RefreshMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "aws_iam_exporter_refresh_errors",
            "Failed refreshes of an account, by reason",
            self.errors.clone(),
        );
    }

    /// Starts the counter of every reason at 0 for `account_id`, so that
    /// `increase()` and the alerts see its first failure.
    pub fn start_at_zero(&self, account_id: &str) {
        for reason in ErrorReason::ALL {
            drop(self.errors.get_or_create(&RefreshErrorLabels {
                account_id: account_id.to_string(),
                reason: reason.as_str(),
            }));
        }
    }

    /// One failed refresh of `account_id` (empty: discovery, before any account).
    pub fn count(&self, account_id: &str, reason: ErrorReason) {
        self.errors
            .get_or_create(&RefreshErrorLabels {
                account_id: account_id.to_string(),
                reason: reason.as_str(),
            })
            .inc();
    }
}

/// Applies one outcome to a new snapshot and publishes it; counts and logs a
/// failure once, with its AWS error code. The outcome's data moves into the
/// snapshot.
pub(super) fn record_and_publish(
    store: &SnapshotStore,
    metrics: &RefreshMetrics,
    key_ids: KeyIdLabel,
    outcome: Outcome,
) {
    let account_id = outcome.account_id().to_string();
    let account_id = account_id.as_str();
    if !account_id.is_empty() {
        // Accounts of the file mode (known only from their report) and any
        // the discovery did not list yet.
        metrics.start_at_zero(account_id);
    }
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
            // Say what is served instead, which differs before the first
            // success; an id not learned yet is left out rather than empty
            // (the error names the file, or the call that failed).
            let had_data = store.load().accounts.get(account_id).is_some_and(|s| s.data.is_some());
            let what = if had_data {
                "refresh failed; keeping the last good data"
            } else {
                "refresh failed; no data of this account yet"
            };
            let error = key_ids.redact(&e.message);
            let code = e.code.as_deref().unwrap_or("");
            let reason = e.reason.as_str();
            if account_id.is_empty() {
                tracing::error!(reason, code, error = %error, "{what}");
            } else {
                tracing::error!(account_id = %account_id, reason, code, error = %error, "{what}");
            }
            metrics.count(account_id, e.reason);
        }
    }
    let mut next = store.load().with_outcomes([outcome]);
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
    use std::time::Duration;

    use chrono::Utc;

    use super::*;
    use crate::domain::failure::SourceError;

    /// The error kept for the landing page hides key ids as the log line does.
    #[test]
    fn a_failure_is_kept_with_key_ids_redacted() {
        let store = SnapshotStore::default();
        let metrics = RefreshMetrics::default();
        let outcome = Outcome {
            previous_id: Some("111122223333".into()),
            result: Err(SourceError::new(
                ErrorReason::AccessDenied,
                "key AKIAIOSFODNN7EXAMPLE is not allowed",
            )),
            finished: Utc::now(),
            duration: Duration::from_secs(1),
        };
        record_and_publish(&store, &metrics, KeyIdLabel::Last4, outcome);
        let snapshot = store.load();
        let error = snapshot.accounts["111122223333"].last_error.as_ref().unwrap();
        assert_eq!(error.message, "key ****MPLE is not allowed");
        assert_eq!(error.reason, ErrorReason::AccessDenied);
    }
}

//! The credential report from AWS: reuse a recent one, else generate one and
//! poll until AWS says it is complete, within a bounded wait. Three calls per
//! account when AWS completes at once (Get, Generate, Get), none per user or key.

use std::time::Duration;

use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_iam::types::ReportStateType;
use chrono::{DateTime, Utc};

use super::{credential_report, AccountData, ErrorReason, SourceError};
use crate::aws::{classify, Clients};

/// AWS regenerates a credential report at most every four hours; a younger
/// one is as fresh as a new one would be.
pub const REUSE_YOUNGER_THAN: Duration = Duration::from_secs(4 * 3600);

#[derive(Debug, Clone)]
pub struct LiveReportOptions {
    /// Longest time to wait for AWS to finish a report.
    pub max_wait: Duration,
    /// First pause between polls; doubled after each, up to `MAX_POLL`.
    pub first_poll: Duration,
}

impl Default for LiveReportOptions {
    fn default() -> Self {
        LiveReportOptions {
            max_wait: Duration::from_secs(300),
            first_poll: Duration::from_secs(2),
        }
    }
}

const MAX_POLL: Duration = Duration::from_secs(30);

enum Step {
    /// GetCredentialReport: use the report if recent (or ours), else generate.
    Fetch,
    /// GenerateCredentialReport: start a report or learn its state.
    Generate,
}

/// Reads the account's credential report. `now` decides whether an existing
/// report is recent enough to reuse.
pub async fn fetch(
    clients: &Clients,
    options: &LiveReportOptions,
    now: DateTime<Utc>,
) -> Result<AccountData, SourceError> {
    let started = tokio::time::Instant::now();
    let mut pause = options.first_poll;
    let mut step = Step::Fetch;
    // Once a report we asked for is complete, whatever GetCredentialReport
    // returns is it, whatever its timestamp says.
    let mut generated_by_us = false;
    loop {
        let wait = match step {
            Step::Fetch => match clients.iam.get_credential_report().send().await {
                Ok(out) => {
                    let generated = out.generated_time().and_then(|t| DateTime::from_timestamp(t.secs(), 0));
                    let recent = generated.is_some_and(|g| (now - g).to_std().unwrap_or_default() < REUSE_YOUNGER_THAN);
                    if generated_by_us || recent {
                        let content = out.content().map(|b| b.as_ref()).unwrap_or_default();
                        return parse(content, generated);
                    }
                    step = Step::Generate;
                    false
                }
                Err(e) => match e.code() {
                    Some("ReportNotPresent" | "ReportExpired") => {
                        step = Step::Generate;
                        false
                    }
                    // Someone (maybe another exporter) is generating one.
                    Some("ReportInProgress") => true,
                    _ => return Err(classify("GetCredentialReport", &e)),
                },
            },
            Step::Generate => match clients.iam.generate_credential_report().send().await {
                Ok(out) => match out.state() {
                    Some(ReportStateType::Complete) => {
                        generated_by_us = true;
                        step = Step::Fetch;
                        false
                    }
                    Some(ReportStateType::Started | ReportStateType::Inprogress) => true,
                    other => {
                        return Err(SourceError::new(
                            ErrorReason::InvalidResponse,
                            format!("GenerateCredentialReport: unknown state {other:?}"),
                        ))
                    }
                },
                // Too many reports requested lately: one is on its way.
                Err(e) if e.code() == Some("LimitExceeded") => true,
                Err(e) => return Err(classify("GenerateCredentialReport", &e)),
            },
        };
        if wait {
            if started.elapsed() + pause > options.max_wait {
                return Err(SourceError::new(
                    ErrorReason::Other,
                    format!(
                        "the credential report was not complete after {}s (credential_report.max_wait)",
                        options.max_wait.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }
}

fn parse(content: &[u8], generated: Option<DateTime<Utc>>) -> Result<AccountData, SourceError> {
    let text = std::str::from_utf8(content).map_err(|e| {
        SourceError::new(
            ErrorReason::InvalidResponse,
            format!("credential report is not UTF-8: {e}"),
        )
    })?;
    let mut data = credential_report::parse(text)
        .map_err(|e| SourceError::new(ErrorReason::InvalidResponse, format!("GetCredentialReport: {e}")))?;
    data.credential_report_generated = generated;
    Ok(data)
}

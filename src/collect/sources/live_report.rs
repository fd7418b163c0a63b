//! The credential report from AWS: reuse a recent one, else generate one and
//! poll until AWS says it is complete, within a bounded wait. Three calls per
//! account when AWS completes at once (Get, Generate, Get), none per user or key.

use std::time::Duration;

use aws_sdk_iam::types::ReportStateType;
use chrono::{DateTime, Utc};

use super::report_csv::{self, BytesError};
use crate::collect::aws::{classify, RequestRate};
use crate::domain::failure::{ErrorReason, SourceError};
use crate::domain::key::AccountData;

/// AWS regenerates a credential report at most every four hours; a younger
/// one is as fresh as a new one would be.
pub const REUSE_YOUNGER_THAN: Duration = Duration::from_secs(4 * 3600);

#[derive(Debug, Clone)]
pub struct LiveReportOptions {
    /// Longest time to wait for AWS to finish a report.
    pub max_wait: Duration,
    /// First pause between polls; doubled after each, up to `MAX_POLL`.
    pub first_poll: Duration,
    /// Whether users' policies and tags are read too (a few
    /// `GetAccountAuthorizationDetails` calls per account).
    pub authorization_details: bool,
    /// Tag keys to export, when the authorization details are read.
    pub user_tags: Vec<String>,
}

impl Default for LiveReportOptions {
    fn default() -> Self {
        LiveReportOptions {
            max_wait: Duration::from_secs(300),
            first_poll: Duration::from_secs(2),
            authorization_details: true,
            user_tags: Vec::new(),
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
/// report is recent enough to reuse. Each call waits for its slot at the
/// account's `rate`.
pub async fn fetch(
    iam: &aws_sdk_iam::Client,
    rate: &RequestRate,
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
            Step::Fetch => match rate_then(rate, iam.get_credential_report().send()).await {
                Ok(out) => {
                    let generated = out.generated_time().and_then(|t| DateTime::from_timestamp(t.secs(), 0));
                    let recent = generated.is_some_and(|g| (now - g).to_std().unwrap_or_default() < REUSE_YOUNGER_THAN);
                    if generated_by_us || recent {
                        let content = out.content.map(aws_smithy_types::Blob::into_inner).unwrap_or_default();
                        // A report of many users takes a while to parse: not on an async worker.
                        return tokio::task::spawn_blocking(move || parse(&content, generated))
                            .await
                            .unwrap_or_else(|e| {
                                Err(SourceError::new(
                                    ErrorReason::Other,
                                    format!("parsing the credential report failed: {e}"),
                                ))
                            });
                    }
                    step = Step::Generate;
                    false
                }
                Err(e) => match e.as_service_error() {
                    Some(se)
                        if se.is_credential_report_not_present_exception()
                            || se.is_credential_report_expired_exception() =>
                    {
                        step = Step::Generate;
                        false
                    }
                    // Someone (maybe another exporter) is generating one.
                    Some(se) if se.is_credential_report_not_ready_exception() => true,
                    _ => return Err(classify("GetCredentialReport", &e)),
                },
            },
            Step::Generate => match rate_then(rate, iam.generate_credential_report().send()).await {
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
                Err(e) if e.as_service_error().is_some_and(|se| se.is_limit_exceeded_exception()) => true,
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

/// `call`, once the rate gives it a slot: a future sends nothing until polled.
async fn rate_then<T>(rate: &RequestRate, call: impl std::future::Future<Output = T>) -> T {
    rate.wait().await;
    call.await
}

fn parse(content: &[u8], generated: Option<DateTime<Utc>>) -> Result<AccountData, SourceError> {
    let mut data = report_csv::parse_bytes(content).map_err(|e| {
        let message = match e {
            BytesError::NotUtf8(e) => format!("credential report is not UTF-8: {e}"),
            BytesError::Parse(e) => format!("GetCredentialReport: {e}"),
        };
        SourceError::new(ErrorReason::InvalidResponse, message)
    })?;
    data.credential_report_generated = generated;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::operation::generate_credential_report::{
        GenerateCredentialReportError, GenerateCredentialReportOutput,
    };
    use aws_sdk_iam::operation::get_credential_report::{GetCredentialReportError, GetCredentialReportOutput};
    use aws_sdk_iam::types::error::{
        CredentialReportExpiredException, CredentialReportNotPresentException, CredentialReportNotReadyException,
        LimitExceededException,
    };
    use aws_sdk_iam::Client;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::retry::RetryConfig;
    use chrono::TimeZone;

    /// A report of one user, as IAM returns it.
    fn one_user_report() -> Vec<u8> {
        format!("{}\nalice,arn:aws:iam::111122223333:user/alice,2020-01-01T10:00:00+00:00,false,N/A,N/A,N/A,false,true,2024-02-01T10:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n", report_csv::TEST_HEADER).into_bytes()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    fn report(age: Duration) -> Rule {
        let generated = aws_smithy_types::DateTime::from_secs((now().timestamp() - age.as_secs() as i64) as _);
        mock!(Client::get_credential_report).then_output(move || {
            GetCredentialReportOutput::builder()
                .content(aws_smithy_types::Blob::new(one_user_report()))
                .generated_time(generated)
                .build()
        })
    }

    fn get_error(error: fn() -> GetCredentialReportError) -> Rule {
        mock!(Client::get_credential_report).then_error(error)
    }

    fn generate(state: ReportStateType) -> Rule {
        mock!(Client::generate_credential_report)
            .then_output(move || GenerateCredentialReportOutput::builder().state(state.clone()).build())
    }

    fn options() -> LiveReportOptions {
        LiveReportOptions {
            max_wait: Duration::from_secs(60),
            first_poll: Duration::from_secs(1),
            ..LiveReportOptions::default()
        }
    }

    fn aws_error(status: u16, code: &'static str) -> HttpResponse {
        HttpResponse::new(
            StatusCode::try_from(status).unwrap(),
            SdkBody::from(format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>m</Message></Error><RequestId>r</RequestId></ErrorResponse>"
            )),
        )
    }

    const HOUR: Duration = Duration::from_secs(3600);

    fn unlimited() -> RequestRate {
        RequestRate::new(None)
    }

    /// The report's calls draw from the account's budget like the API
    /// source's: at a cap of 1 a second, Get, Generate, Get take 2 s.
    #[tokio::test(start_paused = true)]
    async fn each_call_waits_for_its_slot_at_the_accounts_rate() {
        let (old, gen, new) = (report(5 * HOUR), generate(ReportStateType::Complete), report(5 * HOUR));
        let iam = mock_client!(aws_sdk_iam, RuleMode::Sequential, [&old, &gen, &new]);
        let started = tokio::time::Instant::now();
        fetch(&iam, &RequestRate::new(Some(1.0)), &options(), now())
            .await
            .unwrap();
        assert_eq!(new.num_calls(), 1);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_recent_report_is_reused_in_one_call() {
        let get = report(HOUR);
        let iam = mock_client!(aws_sdk_iam, RuleMode::Sequential, [&get]);
        let data = fetch(&iam, &unlimited(), &options(), now()).await.unwrap();
        assert_eq!((data.account_id.as_str(), data.keys.len()), ("111122223333", 1));
        assert_eq!(
            data.credential_report_generated,
            Some(now() - chrono::Duration::hours(1))
        );
        assert_eq!(get.num_calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_old_report_is_regenerated() {
        let (old, gen, new) = (report(5 * HOUR), generate(ReportStateType::Complete), report(5 * HOUR));
        let iam = mock_client!(aws_sdk_iam, RuleMode::Sequential, [&old, &gen, &new]);
        // The report AWS returns after our own generation is used whatever its
        // timestamp (moto's is fixed in 2015).
        fetch(&iam, &unlimited(), &options(), now()).await.unwrap();
        assert_eq!((old.num_calls(), gen.num_calls(), new.num_calls()), (1, 1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn missing_or_expired_reports_are_generated_and_polled_until_complete() {
        for missing in [
            (|| {
                GetCredentialReportError::CredentialReportNotPresentException(
                    CredentialReportNotPresentException::builder().build(),
                )
            }) as fn() -> GetCredentialReportError,
            || {
                GetCredentialReportError::CredentialReportExpiredException(
                    CredentialReportExpiredException::builder().build(),
                )
            },
        ] {
            let rules = [
                get_error(missing),
                generate(ReportStateType::Started),
                generate(ReportStateType::Inprogress),
                generate(ReportStateType::Complete),
                report(Duration::ZERO),
            ];
            let iam = mock_client!(
                aws_sdk_iam,
                RuleMode::Sequential,
                [&rules[0], &rules[1], &rules[2], &rules[3], &rules[4]]
            );
            let started = tokio::time::Instant::now();
            fetch(&iam, &unlimited(), &options(), now()).await.unwrap();
            assert!(rules.iter().all(|r| r.num_calls() == 1));
            assert_eq!(
                started.elapsed(),
                Duration::from_secs(1 + 2),
                "polls back off 1s, then 2s"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_report_in_progress_elsewhere_is_waited_for() {
        let busy = get_error(|| {
            GetCredentialReportError::CredentialReportNotReadyException(
                CredentialReportNotReadyException::builder().build(),
            )
        });
        let ready = report(Duration::ZERO);
        let iam = mock_client!(aws_sdk_iam, RuleMode::Sequential, [&busy, &ready]);
        fetch(&iam, &unlimited(), &options(), now()).await.unwrap();
        assert_eq!((busy.num_calls(), ready.num_calls()), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn limit_exceeded_waits_and_asks_again() {
        let rules = [
            get_error(|| {
                GetCredentialReportError::CredentialReportNotPresentException(
                    CredentialReportNotPresentException::builder().build(),
                )
            }),
            mock!(Client::generate_credential_report).then_error(|| {
                GenerateCredentialReportError::LimitExceededException(LimitExceededException::builder().build())
            }),
            generate(ReportStateType::Complete),
            report(Duration::ZERO),
        ];
        let iam = mock_client!(
            aws_sdk_iam,
            RuleMode::Sequential,
            [&rules[0], &rules[1], &rules[2], &rules[3]]
        );
        fetch(&iam, &unlimited(), &options(), now()).await.unwrap();
        assert!(rules.iter().all(|r| r.num_calls() == 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_report_that_never_completes_fails_after_the_bounded_wait() {
        let missing = get_error(|| {
            GetCredentialReportError::CredentialReportNotPresentException(
                CredentialReportNotPresentException::builder().build(),
            )
        });
        let forever = mock!(Client::generate_credential_report)
            .sequence()
            .output(|| {
                GenerateCredentialReportOutput::builder()
                    .state(ReportStateType::Inprogress)
                    .build()
            })
            .repeatedly()
            .build();
        let iam = mock_client!(aws_sdk_iam, RuleMode::Sequential, [&missing, &forever]);
        let started = tokio::time::Instant::now();
        let err = fetch(&iam, &unlimited(), &options(), now()).await.unwrap_err();
        assert_eq!(err.reason, ErrorReason::Other);
        assert_eq!(
            err.message,
            "the credential report was not complete after 60s (credential_report.max_wait)"
        );
        assert!(started.elapsed() <= Duration::from_secs(60));
        // 1 + 2 + 4 + 8 + 16 = 31s waited; the next pause (30s) would pass 60s.
        assert_eq!(forever.num_calls(), 6);
    }

    fn retrying_client(rule: &Rule) -> Client {
        mock_client!(aws_sdk_iam, RuleMode::Sequential, [rule], |c| c
            .retry_config(RetryConfig::standard().with_max_attempts(3)))
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_retried_by_the_sdk_and_then_reported_as_throttled() {
        let recovers = mock!(Client::get_credential_report)
            .sequence()
            .http_response(|| aws_error(400, "Throttling"))
            .times(2)
            .output(|| {
                GetCredentialReportOutput::builder()
                    .content(aws_smithy_types::Blob::new(one_user_report()))
                    .generated_time(aws_smithy_types::DateTime::from_secs(now().timestamp()))
                    .build()
            })
            .build();
        fetch(&retrying_client(&recovers), &unlimited(), &options(), now())
            .await
            .unwrap();
        assert_eq!(recovers.num_calls(), 3);

        let persists = mock!(Client::get_credential_report)
            .sequence()
            .http_response(|| aws_error(400, "Throttling"))
            .repeatedly()
            .build();
        let err = fetch(&retrying_client(&persists), &unlimited(), &options(), now())
            .await
            .unwrap_err();
        assert_eq!(
            (err.reason, err.code.as_deref()),
            (ErrorReason::Throttled, Some("Throttling"))
        );
        assert_eq!(persists.num_calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn service_failure_is_retried_then_reported() {
        let failing = mock!(Client::get_credential_report)
            .sequence()
            .http_response(|| aws_error(500, "ServiceFailure"))
            .repeatedly()
            .build();
        let err = fetch(&retrying_client(&failing), &unlimited(), &options(), now())
            .await
            .unwrap_err();
        assert_eq!(
            (err.reason, err.code.as_deref()),
            (ErrorReason::Other, Some("ServiceFailure"))
        );
        assert_eq!(failing.num_calls(), 3, "5xx is retried by the SDK");
    }

    #[tokio::test(start_paused = true)]
    async fn a_malformed_report_is_an_invalid_response() {
        let bad = mock!(Client::get_credential_report).then_output(|| {
            GetCredentialReportOutput::builder()
                .content(aws_smithy_types::Blob::new("user,arn\n"))
                .generated_time(aws_smithy_types::DateTime::from_secs(now().timestamp()))
                .build()
        });
        let iam = mock_client!(aws_sdk_iam, RuleMode::Sequential, [&bad]);
        let err = fetch(&iam, &unlimited(), &options(), now()).await.unwrap_err();
        assert_eq!(err.reason, ErrorReason::InvalidResponse);
        assert!(err.message.contains("line 1: missing column"), "{}", err.message);
    }
}

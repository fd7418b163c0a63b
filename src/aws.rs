//! AWS access: the shared SDK configuration (credentials chain, region,
//! retries, timeouts), the service clients, and the interceptor that counts
//! every API call and every failed call.

use std::time::{Duration, SystemTime};

use aws_config::{meta::region::RegionProviderChain, BehaviorVersion, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::accounts::Role;
use crate::metrics::AwsCallCounters;
use crate::sources::{ErrorReason, SourceError};

/// IAM is global: without a configured region, use its home region.
const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub max_attempts: u32,
    /// Longest wait for one HTTP attempt of an AWS call.
    pub call_timeout: Duration,
    /// Longest time one account's refresh may take; `None`: the refresh
    /// interval, but at least five minutes.
    pub refresh_timeout: Option<Duration>,
    pub max_concurrent_requests: usize,
    pub max_concurrent_accounts: usize,
}

/// Loads credentials and region from the standard AWS chain (environment,
/// profiles and SSO, web identity, ECS, instance metadata).
pub async fn load_sdk_config(settings: &AwsSettings) -> SdkConfig {
    let region = RegionProviderChain::default_provider().or_else(DEFAULT_REGION);
    aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .retry_config(RetryConfig::adaptive().with_max_attempts(settings.max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(settings.call_timeout)
                .build(),
        )
        .load()
        .await
}

/// Name of the role sessions the exporter opens; shows in CloudTrail.
pub const ROLE_SESSION_NAME: &str = "aws-iam-key-exporter";
const ROLE_SESSION_SECONDS: i32 = 3600;
/// Assumed-role credentials are renewed this long before they expire, so a
/// refresh never runs out of them half-way.
const RENEW_BEFORE: Duration = Duration::from_secs(15 * 60);

/// How to reach one account: with the base credentials, or through a role
/// whose credentials are kept until shortly before they expire.
#[derive(Debug)]
pub struct AccountAccess {
    role: Option<Role>,
    credentials: Option<Credentials>,
}

impl AccountAccess {
    pub fn new(role: Option<Role>) -> AccountAccess {
        AccountAccess {
            role,
            credentials: None,
        }
    }

    pub fn role(&self) -> Option<&Role> {
        self.role.as_ref()
    }

    /// Clients for the account, assuming its role first when the cached
    /// credentials are missing or about to expire.
    pub async fn clients(
        &mut self,
        sdk: &SdkConfig,
        base: &Clients,
        counters: &AwsCallCounters,
    ) -> Result<Clients, SourceError> {
        let Some(role) = &self.role else {
            return Ok(base.clone());
        };
        let usable = |c: &&Credentials| c.expiry().is_some_and(|e| e > SystemTime::now() + RENEW_BEFORE);
        let credentials = match self.credentials.as_ref().filter(usable) {
            Some(c) => c.clone(),
            None => {
                let fresh = assume_role(&base.sts, role).await?;
                self.credentials = Some(fresh.clone());
                fresh
            }
        };
        let config = sdk
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build();
        Ok(Clients::new(&config, counters))
    }
}

async fn assume_role(sts: &aws_sdk_sts::Client, role: &Role) -> Result<Credentials, SourceError> {
    let out = sts
        .assume_role()
        .role_arn(&role.arn)
        .role_session_name(ROLE_SESSION_NAME)
        .duration_seconds(ROLE_SESSION_SECONDS)
        .set_external_id(role.external_id.clone())
        .send()
        .await
        .map_err(|e| classify("AssumeRole", &e))?;
    let c = out.credentials().ok_or_else(|| {
        SourceError::new(
            ErrorReason::InvalidResponse,
            format!("AssumeRole {}: no credentials", role.arn),
        )
    })?;
    let expiry = SystemTime::try_from(*c.expiration()).ok();
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expiry,
        "AssumeRole",
    ))
}

/// The clients for one account, all counting their calls.
#[derive(Debug, Clone)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
}

impl Clients {
    pub fn new(sdk: &SdkConfig, counters: &AwsCallCounters) -> Clients {
        let iam = aws_sdk_iam::config::Builder::from(sdk)
            .interceptor(counters.clone())
            .build();
        let sts = aws_sdk_sts::config::Builder::from(sdk)
            .interceptor(counters.clone())
            .build();
        Clients {
            iam: aws_sdk_iam::Client::from_conf(iam),
            sts: aws_sdk_sts::Client::from_conf(sts),
        }
    }
}

/// Counts at the level of HTTP attempts, so that calls the SDK retried after
/// throttling show up in `aws_iam_exporter_aws_request_errors_total` too.
impl Intercept for AwsCallCounters {
    fn name(&self) -> &'static str {
        "AwsCallCounters"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let service = metadata.service().to_ascii_lowercase();
        let operation = metadata.name();
        let code = match (context.response(), context.output_or_error()) {
            (_, Some(Ok(_))) => None,
            (Some(response), _) if !response.status().is_success() => Some(error_code_from_response(
                response.headers().get("x-amzn-ErrorType"),
                response.body().bytes().unwrap_or_default(),
            )),
            (_, Some(Err(e))) if e.is_timeout_error() => Some("TimeoutError".to_string()),
            (_, Some(Err(e))) if e.is_connector_error() => Some("DispatchFailure".to_string()),
            (_, Some(Err(e))) if e.is_response_error() => Some("ResponseError".to_string()),
            (_, Some(Err(_))) => Some("Unknown".to_string()),
            (_, None) => None,
        };
        self.record(&service, operation, code.as_deref());
        Ok(())
    }
}

/// The AWS error code of a failed response: JSON protocols name it in a
/// header or `__type`, the query protocol (IAM, STS) in `<Code>`.
pub fn error_code_from_response(header: Option<&str>, body: &[u8]) -> String {
    let clean = |code: &str| {
        // `aws.protocoltests#Throttling:http://...` and `prefix#Code` forms.
        let code = code.split(':').next().unwrap_or(code);
        code.rsplit('#').next().unwrap_or(code).trim().to_string()
    };
    if let Some(code) = header.filter(|h| !h.is_empty()) {
        return clean(code);
    }
    let body = String::from_utf8_lossy(body);
    if let Some(code) = between(&body, "<Code>", "</Code>") {
        return clean(code);
    }
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) {
        if let Some(code) = json.get("__type").and_then(|v| v.as_str()) {
            return clean(code);
        }
    }
    "Unknown".to_string()
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// Turns an SDK error into the refresh error of one account, with the reason
/// that `aws_iam_exporter_refresh_errors_total` counts.
pub fn classify<E, R>(operation: &str, err: &SdkError<E, R>) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().map(str::to_string);
    let reason = match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => ErrorReason::Network,
        SdkError::ResponseError(_) => ErrorReason::InvalidResponse,
        // An error answer without an AWS error code is one the SDK could not
        // read (not XML, not JSON, cut off).
        SdkError::ServiceError(_) => code.as_deref().map_or(ErrorReason::InvalidResponse, reason_for_code),
        _ => ErrorReason::Other,
    };
    SourceError {
        reason,
        code,
        message: format!("{operation}: {}", DisplayErrorContext(err)),
    }
}

pub fn reason_for_code(code: &str) -> ErrorReason {
    match code {
        "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "SlowDown"
        | "LimitExceeded"
        | "LimitExceededException" => ErrorReason::Throttled,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "AWSOrganizationsNotInUseException" => ErrorReason::AccessDenied,
        _ => ErrorReason::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_from_every_protocol() {
        let query = br#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>"#;
        assert_eq!(error_code_from_response(None, query), "Throttling");
        assert_eq!(
            error_code_from_response(Some("AccessDeniedException:http://internal.amazon.com/"), b"{}"),
            "AccessDeniedException"
        );
        assert_eq!(
            error_code_from_response(
                None,
                br#"{"__type":"com.amazonaws.organizations#TooManyRequestsException","Message":"x"}"#
            ),
            "TooManyRequestsException"
        );
        assert_eq!(error_code_from_response(None, b"<html>Bad gateway</html>"), "Unknown");
    }

    #[test]
    fn codes_map_to_reasons() {
        assert_eq!(reason_for_code("Throttling"), ErrorReason::Throttled);
        assert_eq!(reason_for_code("AccessDenied"), ErrorReason::AccessDenied);
        assert_eq!(reason_for_code("InvalidClientTokenId"), ErrorReason::AccessDenied);
        assert_eq!(reason_for_code("NoSuchEntity"), ErrorReason::Other);
    }
}

//! AWS access: the shared SDK configuration (credentials chain, region,
//! retries, timeouts), the service clients, role assumption, the interceptor
//! that counts every API call and every failed call ([`counters`]), and error
//! classification ([`error`]). Of the crate it knows only the domain's
//! failure type, so that every source reports AWS errors alike.

pub mod counters;
pub mod error;
pub mod rate;
pub mod throttle;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::{meta::region::RegionProviderChain, BehaviorVersion, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::domain::failure::{ErrorReason, SourceError};

pub use counters::AwsCallCounters;
pub use error::{classify, error_code_from_response, reason_for_code};
pub use rate::RequestRate;
use throttle::ThrottleRetry;
pub use throttle::Throttles;

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
    /// `aws.max_requests_per_second`: the most calls a second to one account.
    pub max_requests_per_second: Option<f64>,
}

/// Loads credentials and region from the standard AWS chain (environment,
/// profiles and SSO, web identity, ECS, instance metadata).
pub async fn load_sdk_config(settings: &AwsSettings) -> SdkConfig {
    let region = RegionProviderChain::default_provider().or_else(DEFAULT_REGION);
    aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .retry_config(
            RetryConfig::adaptive()
                .with_max_attempts(settings.max_attempts)
                .with_max_backoff(throttle::MAX_BACKOFF),
        )
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

/// Temporary credentials for role `arn`, with their expiry.
pub async fn assume_role(
    sts: &aws_sdk_sts::Client,
    arn: &str,
    external_id: Option<&str>,
) -> Result<Credentials, SourceError> {
    let out = sts
        .assume_role()
        .role_arn(arn)
        .role_session_name(ROLE_SESSION_NAME)
        .duration_seconds(ROLE_SESSION_SECONDS)
        .set_external_id(external_id.map(str::to_string))
        .send()
        .await
        .map_err(|e| classify("AssumeRole", &e))?;
    let c = out.credentials().ok_or_else(|| SourceError {
        reason: ErrorReason::InvalidResponse,
        code: None,
        message: format!("AssumeRole {arn}: no credentials"),
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

/// The clients for one account, all counting their calls, retrying
/// throttled ones until the refresh deadline, and with a retry partition of
/// their own: the SDK's default one is shared by the whole process, so one
/// account's throttling would slow every other account down and its retry
/// quota (500, shared) would run out under a throttle that lasts.
#[derive(Debug, Clone)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
    /// The throttled answers these clients have had.
    pub throttles: Arc<Throttles>,
    /// The account's: kept across reads, as its clients are not.
    pub rate: Arc<RequestRate>,
}

/// Retries of throttled calls are bounded by the refresh deadline, those of
/// other errors by `aws.max_attempts`: a retry quota would only end a read
/// early that the deadline bounds anyway.
fn own_partition() -> RetryPartition {
    RetryPartition::custom("aws-iam-key-exporter")
        .token_bucket(TokenBucket::unlimited())
        .build()
}

impl Clients {
    pub fn new(sdk: &SdkConfig, counters: &AwsCallCounters, rate: Arc<RequestRate>) -> Clients {
        let throttle = ThrottleRetry {
            throttles: Arc::default(),
            rate,
        };
        let iam = aws_sdk_iam::config::Builder::from(sdk)
            .interceptor(counters.clone())
            .interceptor(throttle.clone())
            .retry_classifier(throttle.clone())
            .retry_partition(own_partition())
            .build();
        let sts = aws_sdk_sts::config::Builder::from(sdk)
            .interceptor(counters.clone())
            .interceptor(throttle.clone())
            .retry_classifier(throttle.clone())
            .retry_partition(own_partition())
            .build();
        Clients {
            iam: aws_sdk_iam::Client::from_conf(iam),
            sts: aws_sdk_sts::Client::from_conf(sts),
            throttles: throttle.throttles,
            rate: throttle.rate,
        }
    }

    /// Clients that act with `credentials` (an assumed role's) instead of
    /// the base chain's.
    pub fn with_credentials(
        sdk: &SdkConfig,
        credentials: Credentials,
        counters: &AwsCallCounters,
        rate: Arc<RequestRate>,
    ) -> Clients {
        let config = sdk
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build();
        Clients::new(&config, counters, rate)
    }
}

/// The Organizations client of the base credentials, counting its calls.
pub fn organizations_client(sdk: &SdkConfig, counters: &AwsCallCounters) -> aws_sdk_organizations::Client {
    aws_sdk_organizations::Client::from_conf(
        aws_sdk_organizations::config::Builder::from(sdk)
            .interceptor(counters.clone())
            .build(),
    )
}

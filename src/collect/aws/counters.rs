//! `aws_iam_exporter_aws_requests_total` and `..._aws_request_errors_total`:
//! owned here, next to the interceptor that feeds them, and registered by
//! whoever builds the registry.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::error::error_code_from_response;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsCallLabels {
    service: String,
    operation: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    account_id: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsErrorLabels {
    service: String,
    operation: String,
    code: String,
}

/// The AWS call counters, handed to every AWS client as an interceptor.
#[derive(Debug, Clone, Default)]
pub struct AwsCallCounters {
    requests: Family<AwsCallLabels, Counter>,
    errors: Family<AwsErrorLabels, Counter>,
    throttled: Family<AccountLabels, Counter>,
    allowed_rate: Family<AccountLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl AwsCallCounters {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "aws_iam_exporter_aws_requests",
            "AWS API calls made, retries included",
            self.requests.clone(),
        );
        registry.register(
            "aws_iam_exporter_aws_request_errors",
            "AWS API calls that failed, by AWS error code",
            self.errors.clone(),
        );
        registry.register(
            "aws_iam_exporter_aws_throttled_requests",
            "AWS API calls of an account's reads that AWS answered with a throttling error",
            self.throttled.clone(),
        );
        registry.register(
            "aws_iam_exporter_aws_allowed_requests_per_second",
            "AWS calls a second the exporter allows itself for the account after its latest read: +Inf without a limit, lowered when AWS throttles, at most aws.max_requests_per_second",
            self.allowed_rate.clone(),
        );
    }

    /// Starts the account's throttled-calls counter at 0, so that its first
    /// throttle is an increase.
    pub fn start_account_at_zero(&self, account_id: &str) {
        drop(self.throttled.get_or_create(&AccountLabels {
            account_id: account_id.to_string(),
        }));
    }

    /// The rate the account's calls are allowed; `None`: no limit.
    pub fn record_allowed_rate(&self, account_id: &str, rate: Option<f64>) {
        let labels = AccountLabels {
            account_id: account_id.to_string(),
        };
        self.allowed_rate
            .get_or_create(&labels)
            .set(rate.unwrap_or(f64::INFINITY));
    }

    /// `count` more throttled answers in a read of `account_id`.
    pub fn record_throttled(&self, account_id: &str, count: u64) {
        let labels = AccountLabels {
            account_id: account_id.to_string(),
        };
        self.throttled.get_or_create(&labels).inc_by(count);
    }

    /// Starts `aws_iam_exporter_aws_requests_total` at 0 for each
    /// `(service, operation)` the exporter will call, so that the first call
    /// and its rate are seen. The error counter is by AWS error code, an open
    /// set: its series appear with the first failure of each code (the
    /// dashboard adds the requests times 0 for the operations without one).
    pub fn start_at_zero(&self, operations: &[(&str, &str)]) {
        for (service, operation) in operations {
            drop(self.requests.get_or_create(&AwsCallLabels {
                service: service.to_string(),
                operation: operation.to_string(),
            }));
        }
    }

    pub fn record(&self, service: &str, operation: &str, error_code: Option<&str>) {
        let call = AwsCallLabels {
            service: service.to_string(),
            operation: operation.to_string(),
        };
        self.requests.get_or_create(&call).inc();
        if let Some(code) = error_code {
            let labels = AwsErrorLabels {
                service: call.service,
                operation: call.operation,
                code: code.to_string(),
            };
            self.errors.get_or_create(&labels).inc();
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

//! Throttling: IAM keeps one token bucket per account that every caller
//! shares (Terraform, pipelines, scanners, this exporter), so a throttled
//! answer says "later", not "broken". Such a call is retried for as long as
//! the account's refresh deadline allows instead of within
//! `aws.max_attempts`, which stays the budget of the other transient errors;
//! the deadline itself is the caller's (`tokio::time::timeout` around the
//! read), which asks [`Throttles::since`] whether throttling is why it passed.
//!
//! Done with the SDK's public hooks: a retry classifier that calls the
//! throttling answers the SDK does not know (`LimitExceeded` of
//! `GenerateCredentialReport`, a bare HTTP 429) throttling, and an
//! interceptor that, on each throttled attempt, gives the operation one more
//! attempt. The SDK's backoff stays: exponential with full jitter, capped at
//! `MAX_BACKOFF`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{FinalizerInterceptorContextMut, InterceptorContext};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction, RetryClassifierPriority};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;

use super::error::{error_code_from_response, reason_for_code};
use super::rate::RequestRate;
use crate::domain::failure::ErrorReason;

/// Longest wait between two attempts of one call. The SDK's 20 s would
/// leave the budget unused for long stretches once a few calls have been
/// throttled in a row; IAM's bucket refills every second.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Whether an answer is AWS asking the caller to slow down.
pub fn is_throttling(response: &HttpResponse) -> bool {
    let status = response.status().as_u16();
    if status == 429 {
        return true;
    }
    if response.status().is_success() {
        return false;
    }
    let code = error_code_from_response(
        response.headers().get("x-amzn-ErrorType"),
        response.body().bytes().unwrap_or_default(),
    );
    reason_for_code(&code) == ErrorReason::Throttled
}

/// The throttled answers one set of clients has had: how many, and when the
/// last one came.
#[derive(Debug, Default)]
pub struct Throttles {
    answers: AtomicU64,
    last: Mutex<Option<Instant>>,
}

impl Throttles {
    pub fn answers(&self) -> u64 {
        self.answers.load(Ordering::Relaxed)
    }

    /// Whether an answer was throttled at or after `start`.
    pub fn since(&self, start: Instant) -> bool {
        self.last
            .lock()
            .map(|last| last.is_some_and(|t| t >= start))
            .unwrap_or(false)
    }

    fn record(&self) {
        self.answers.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last.lock() {
            *last = Some(Instant::now());
        }
    }
}

/// Makes throttled answers retryable (classifier) and not count against
/// `aws.max_attempts` (interceptor), and tells the account's request rate
/// of every answer.
#[derive(Debug, Clone)]
pub struct ThrottleRetry {
    pub throttles: Arc<Throttles>,
    pub rate: Arc<RequestRate>,
}

impl ClassifyRetry for ThrottleRetry {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.response() {
            Some(response) if is_throttling(response) => RetryAction::throttling_error(),
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "ThrottleRetry"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

impl Intercept for ThrottleRetry {
    fn name(&self) -> &'static str {
        "ThrottleRetry"
    }

    /// Runs before the retry strategy looks at the attempt: one more attempt
    /// for this operation, so that only the other errors use up the budget.
    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(response) = context.response() else {
            return Ok(());
        };
        if !is_throttling(response) {
            if response.status().is_success() {
                self.rate.answered();
            }
            return Ok(());
        }
        self.rate.throttled(tokio::time::Instant::now());
        self.throttles.record();
        if let Some(retry) = cfg.load::<RetryConfig>().cloned() {
            let more = retry.max_attempts().saturating_add(1);
            cfg.interceptor_state().store_put(retry.with_max_attempts(more));
        }
        Ok(())
    }
}

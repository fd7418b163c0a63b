//! What went wrong in an AWS call, in SDK terms: the error code the service
//! answered with, turned into the domain's [`ErrorReason`] and one line.

use aws_config::meta::ProviderChainError;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;

use crate::domain::failure::{ErrorReason, SourceError};

/// Longest message kept: one log line, a landing page cell.
const MAX_MESSAGE: usize = 400;

/// Turns an SDK error into its reason, code and one readable line: what
/// failed, the AWS error code and message when there is one, and what to do
/// when that is clear. Never the SDK's Debug output.
pub fn classify<E, R>(operation: &str, err: &SdkError<E, R>) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = err.code().map(str::to_string);
    let (reason, message) = match err {
        SdkError::DispatchFailure(failure) => match credentials_error(err) {
            Some(problem) => (ErrorReason::Credentials, format!("{operation}: {problem}")),
            None => {
                let cause = causes(err);
                match failure.as_connector_error() {
                    Some(c) if c.is_timeout() => (
                        ErrorReason::Timeout,
                        format!("{operation}: no answer from AWS in time ({cause}); check the network path to AWS, or raise --aws.call-timeout"),
                    ),
                    Some(c) if c.is_io() => (
                        ErrorReason::Network,
                        format!("{operation}: could not reach AWS ({cause}); check DNS, proxies (HTTPS_PROXY) and the network path to the AWS endpoints"),
                    ),
                    _ => (ErrorReason::Network, format!("{operation}: the request could not be sent: {cause}")),
                }
            }
        },
        SdkError::TimeoutError(_) => (
            ErrorReason::Timeout,
            format!(
                "{operation}: no answer from AWS within --aws.call-timeout; check the network path to AWS, or raise it"
            ),
        ),
        SdkError::ResponseError(_) => (
            ErrorReason::InvalidResponse,
            format!("{operation}: the answer could not be read: {}", causes(err)),
        ),
        // An error answer without an AWS error code is one the SDK could not
        // read (not XML, not JSON, cut off).
        SdkError::ServiceError(_) => {
            let reason = code.as_deref().map_or(ErrorReason::InvalidResponse, reason_for_code);
            let aws = match (code.as_deref(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {}", one_line(message)),
                (Some(code), None) => code.to_string(),
                (None, _) => format!("an error answer without an AWS error code: {}", causes(err)),
            };
            let hint = hint(reason, code.as_deref().unwrap_or(""), operation);
            (reason, format!("{operation}: {aws}{hint}"))
        }
        _ => (ErrorReason::Other, format!("{operation}: {}", causes(err))),
    };
    SourceError {
        reason,
        code,
        message: cut(message),
    }
}

/// What to do about an error answer, when it is clear; `""` otherwise.
fn hint(reason: ErrorReason, code: &str, operation: &str) -> String {
    match (reason, code) {
        (ErrorReason::Credentials, "ExpiredToken" | "ExpiredTokenException") => {
            "; the credentials have expired: renew them (e.g. aws sso login, or a new session)".to_string()
        }
        (ErrorReason::Credentials, _) => {
            "; the access key or its secret is not valid: check the credentials the exporter runs with".to_string()
        }
        (ErrorReason::AccessDenied, _) if operation == "AssumeRole" => "; the exporter needs sts:AssumeRole on the role, and the trust policy of the role must allow the exporter (deploy/iam has both)".to_string(),
        (ErrorReason::AccessDenied, _) => format!(
            "; the exporter needs {}:{operation}, which the policy in deploy/iam grants",
            service_of(operation)
        ),
        (ErrorReason::Throttled, _) => {
            "; AWS throttled the calls until the refresh deadline: the account's API budget is shared with its other callers; lower --aws.max-concurrent-requests, raise --aws.refresh-timeout, or use the credential-report source".to_string()
        }
        _ => String::new(),
    }
}

/// The IAM action prefix of an operation the exporter calls.
fn service_of(operation: &str) -> &'static str {
    match operation {
        "GetCallerIdentity" | "AssumeRole" => "sts",
        "ListAccounts" | "DescribeOrganization" => "organizations",
        _ => "iam",
    }
}

/// No credentials, or credentials that could not be loaded: the SDK reports
/// it as a dispatch failure whose source chain holds a `CredentialsError`.
fn credentials_error(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    const GIVE: &str = "give the exporter credentials: environment variables, a profile (AWS_PROFILE), web identity, or a role of the instance or task";
    let chain = || std::iter::successors(err.source(), |e| e.source());
    // The default chain wraps the attempts of each provider: name them.
    if let Some(tried) = chain().find_map(|e| e.downcast_ref::<ProviderChainError<CredentialsError>>()) {
        let names: Vec<&str> = tried.attempts().iter().map(|a| a.name()).collect();
        return Some(format!("no AWS credentials found (tried {}); {GIVE}", names.join(", ")));
    }
    let e = chain().find_map(|e| e.downcast_ref::<CredentialsError>())?;
    Some(match e {
        CredentialsError::CredentialsNotLoaded(_) => format!("no AWS credentials found ({}); {GIVE}", causes(e)),
        CredentialsError::ProviderTimedOut(_) => {
            "loading AWS credentials timed out; check the instance metadata or container credentials endpoint"
                .to_string()
        }
        _ => format!("loading AWS credentials failed: {}", causes(e)),
    })
}

/// An error and its sources, each once, on one line: `a: b: c`.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        let text = one_line(&e.to_string());
        // Wrappers repeat their source in their own text; keep it once.
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cut(text: String) -> String {
    if text.chars().count() <= MAX_MESSAGE {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_MESSAGE - 3).collect();
    cut.push_str("...");
    cut
}

pub fn reason_for_code(code: &str) -> ErrorReason {
    match code {
        "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "InvalidAccessKeyId"
        | "IncompleteSignature" => ErrorReason::Credentials,
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
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AWSOrganizationsNotInUseException" => {
            ErrorReason::AccessDenied
        }
        _ => ErrorReason::Other,
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

    fn service_error(code: &str, message: &str) -> SdkError<aws_sdk_iam::operation::list_users::ListUsersError, ()> {
        let meta = aws_smithy_types::error::ErrorMetadata::builder()
            .code(code)
            .message(message)
            .build();
        SdkError::service_error(aws_sdk_iam::operation::list_users::ListUsersError::generic(meta), ())
    }

    fn dispatch(error: ConnectorError) -> SdkError<aws_sdk_iam::operation::list_users::ListUsersError, ()> {
        SdkError::dispatch_failure(error)
    }

    use aws_smithy_runtime_api::client::result::ConnectorError;

    /// Each failure is one line with the operation, the code and message of
    /// AWS and the hint, and the reason the metrics count it under.
    #[test]
    fn errors_are_classified_and_told_in_one_line() {
        let e = classify(
            "ListUsers",
            &service_error("ExpiredToken", "The security token included in the request is expired"),
        );
        assert_eq!(e.reason, ErrorReason::Credentials);
        assert_eq!(e.code.as_deref(), Some("ExpiredToken"));
        assert!(e.message.starts_with("ListUsers: ExpiredToken: The security token included in the request is expired; the credentials have expired"), "{}", e.message);

        let e = classify("ListUsers", &service_error("AccessDenied", "User x is not\nauthorized"));
        assert_eq!(e.reason, ErrorReason::AccessDenied);
        assert_eq!(
            e.message,
            "ListUsers: AccessDenied: User x is not authorized; the exporter needs iam:ListUsers, which the policy in deploy/iam grants"
        );

        let e = classify("ListUsers", &service_error("Throttling", "Rate exceeded"));
        assert_eq!(e.reason, ErrorReason::Throttled);
        assert!(e.message.contains("--aws.max-concurrent-requests"), "{}", e.message);

        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = classify("ListUsers", &dispatch(ConnectorError::io(Box::new(io))));
        assert_eq!(e.reason, ErrorReason::Network);
        assert!(
            e.message.starts_with("ListUsers: could not reach AWS ("),
            "{}",
            e.message
        );
        assert!(e.message.contains("connection refused"), "{}", e.message);

        let slow = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
        let e = classify("ListUsers", &dispatch(ConnectorError::timeout(Box::new(slow))));
        assert_eq!(e.reason, ErrorReason::Timeout);

        let missing = CredentialsError::not_loaded("no credentials in the environment");
        let e = classify("ListUsers", &dispatch(ConnectorError::other(Box::new(missing), None)));
        assert_eq!(e.reason, ErrorReason::Credentials);
        assert!(
            e.message.starts_with("ListUsers: no AWS credentials found ("),
            "{}",
            e.message
        );
        assert!(e.message.contains("no credentials in the environment"), "{}", e.message);
        assert!(
            !e.message.contains("DispatchFailure") && !e.message.contains('{'),
            "{}",
            e.message
        );
    }

    #[test]
    fn long_messages_are_cut() {
        let e = classify("ListUsers", &service_error("Other", &"x".repeat(2000)));
        assert_eq!(e.message.chars().count(), MAX_MESSAGE);
        assert!(e.message.ends_with("..."));
    }

    #[test]
    fn codes_map_to_reasons() {
        assert_eq!(reason_for_code("Throttling"), ErrorReason::Throttled);
        assert_eq!(reason_for_code("AccessDenied"), ErrorReason::AccessDenied);
        assert_eq!(reason_for_code("InvalidClientTokenId"), ErrorReason::Credentials);
        assert_eq!(reason_for_code("ExpiredToken"), ErrorReason::Credentials);
        assert_eq!(reason_for_code("UnrecognizedClientException"), ErrorReason::Credentials);
        assert_eq!(reason_for_code("NoSuchEntity"), ErrorReason::Other);
    }
}

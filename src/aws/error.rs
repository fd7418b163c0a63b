//! What went wrong in an AWS call, in SDK terms: the error code the service
//! answered with, and a kind coarse enough for a refresh to act on. The
//! sources map it to their own `SourceError`; this module knows nothing of
//! them, so that the dependency points one way.

use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;

/// The kinds of failure, one to one with the `reason` label of
/// `aws_iam_exporter_refresh_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// No credentials found, or expired, or not valid.
    Credentials,
    Throttled,
    Timeout,
    AccessDenied,
    Network,
    InvalidResponse,
    Other,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct AwsError {
    pub kind: AwsErrorKind,
    /// The AWS error code when there is one, for the log line.
    pub code: Option<String>,
    pub message: String,
}

/// Turns an SDK error into its kind, code and a message naming `operation`.
pub fn classify<E, R>(operation: &str, err: &SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().map(str::to_string);
    let kind = match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => AwsErrorKind::Network,
        SdkError::ResponseError(_) => AwsErrorKind::InvalidResponse,
        // An error answer without an AWS error code is one the SDK could not
        // read (not XML, not JSON, cut off).
        SdkError::ServiceError(_) => code.as_deref().map_or(AwsErrorKind::InvalidResponse, kind_for_code),
        _ => AwsErrorKind::Other,
    };
    AwsError {
        kind,
        code,
        message: format!("{operation}: {}", DisplayErrorContext(err)),
    }
}

pub fn kind_for_code(code: &str) -> AwsErrorKind {
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
        | "LimitExceededException" => AwsErrorKind::Throttled,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "AWSOrganizationsNotInUseException" => AwsErrorKind::AccessDenied,
        _ => AwsErrorKind::Other,
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

    #[test]
    fn codes_map_to_reasons() {
        assert_eq!(kind_for_code("Throttling"), AwsErrorKind::Throttled);
        assert_eq!(kind_for_code("AccessDenied"), AwsErrorKind::AccessDenied);
        assert_eq!(kind_for_code("InvalidClientTokenId"), AwsErrorKind::AccessDenied);
        assert_eq!(kind_for_code("NoSuchEntity"), AwsErrorKind::Other);
    }
}

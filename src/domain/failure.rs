//! Why an account could not be read: a reason coarse enough for a refresh
//! to act on and to count, and one readable line for a person.

/// Why a refresh failed, in the categories of
/// `aws_iam_exporter_refresh_errors_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorReason {
    /// No credentials found, or they are expired or not valid.
    Credentials,
    Throttled,
    AccessDenied,
    Timeout,
    Network,
    InvalidResponse,
    Other,
}

impl ErrorReason {
    /// Every reason, in the order of docs/metrics.md: the `reason` values of
    /// `aws_iam_exporter_refresh_errors_total`, each started at 0.
    pub const ALL: [ErrorReason; 7] = [
        ErrorReason::Credentials,
        ErrorReason::AccessDenied,
        ErrorReason::Throttled,
        ErrorReason::Timeout,
        ErrorReason::Network,
        ErrorReason::InvalidResponse,
        ErrorReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorReason::Credentials => "credentials",
            ErrorReason::Timeout => "timeout",
            ErrorReason::Throttled => "throttled",
            ErrorReason::AccessDenied => "access_denied",
            ErrorReason::Network => "network",
            ErrorReason::InvalidResponse => "invalid_response",
            ErrorReason::Other => "other",
        }
    }

    /// The reason in words, for text meant for people (logs, pages, the
    /// report); [`Self::as_str`] is the label value. Empty for `Other`,
    /// whose message says it all.
    pub fn words(self) -> &'static str {
        match self {
            ErrorReason::Credentials => "no valid credentials",
            ErrorReason::Timeout => "timed out",
            ErrorReason::Throttled => "throttled",
            ErrorReason::AccessDenied => "access denied",
            ErrorReason::Network => "network error",
            ErrorReason::InvalidResponse => "unreadable data",
            ErrorReason::Other => "",
        }
    }
}

/// Why one account could not be read. Kept in the snapshot, not raised:
/// the other accounts and the last good data are not affected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub reason: ErrorReason,
    /// The AWS error code when there is one, for the log line.
    pub code: Option<String>,
    pub message: String,
}

impl SourceError {
    /// One line for a person: the reason in words, then the message.
    pub fn describe(&self) -> String {
        let message = self.message.replace(['\n', '\r'], " ");
        match self.reason.words() {
            "" => message,
            words => format!("{words}: {message}"),
        }
    }

    pub fn new(reason: ErrorReason, message: impl Into<String>) -> Self {
        SourceError {
            reason,
            code: None,
            message: message.into(),
        }
    }
}

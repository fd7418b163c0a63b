//! Where key data comes from: the IAM API ([`api`]) or an IAM credential
//! report ([`credential_report`]). Every source produces one [`AccountData`]
//! per account, complete or not at all.

pub mod api;
pub mod credential_report;
#[cfg(test)]
pub(crate) mod fixtures;
mod intern;
pub mod live_report;
pub mod source;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum KeyStatus {
    Active,
    Inactive,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "Active",
            KeyStatus::Inactive => "Inactive",
        }
    }
}

/// One of these is held per key, twice while a refresh replaces the data
/// still served: the strings that repeat across keys (the user's name, the
/// service and region of last use) are shared, not copied into every key.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessKey {
    /// The same allocation as the name of its [`User`].
    pub user: Arc<str>,
    /// `None` when the source does not carry key ids (credential report).
    pub access_key_id: Option<Box<str>>,
    /// Interned: only a few dozen values exist.
    pub last_used_service: Option<Arc<str>>,
    /// Interned: only a few dozen values exist.
    pub last_used_region: Option<Arc<str>>,
    pub created: DateTime<Utc>,
    pub last_used: Option<DateTime<Utc>>,
    /// 1 or 2: the report's column (`access_key_1`, `access_key_2`) for a
    /// credential report; the position by creation date for the IAM API.
    pub position: u8,
    pub status: KeyStatus,
}

/// The credential report's name for the root user; no IAM user can be
/// called this, as IAM names cannot hold `<` or `>`.
pub const ROOT_USER: &str = "<root_account>";

impl AccessKey {
    /// A key of the account's root user, which only a credential report lists.
    pub fn is_root(&self) -> bool {
        &*self.user == ROOT_USER
    }

    /// Where its time unused counts from: a key never used has been unused
    /// since it was created.
    pub fn unused_since(&self) -> DateTime<Utc> {
        self.last_used.unwrap_or(self.created)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Shared with its keys' [`AccessKey::user`].
    pub name: Arc<str>,
    /// Interned: most users of an account share a few paths.
    pub path: Arc<str>,
    /// Only the tags named in `labels.user_tags`.
    pub tags: BTreeMap<String, String>,
}

/// Everything one refresh learned about one account.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountData {
    pub account_id: String,
    pub account_name: String,
    pub users: Vec<User>,
    /// Sorted by user, then position. A credential report's root keys are
    /// here too, under [`ROOT_USER`]; `users` never holds root.
    pub keys: Vec<AccessKey>,
    pub root_access_key_present: bool,
    pub credential_report_generated: Option<DateTime<Utc>>,
    /// Rows of the credential report in use that could not be read; `None`
    /// for the IAM API.
    pub credential_report_skipped_rows: Option<u64>,
    /// What reading the report worked around (rows skipped, users merged),
    /// a bounded number of lines, logged once per report.
    pub credential_report_warnings: Vec<String>,
}

pub use crate::aws::ErrorReason;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub reason: ErrorReason,
    /// The AWS error code when there is one, for the log line.
    pub code: Option<String>,
    pub message: String,
}

impl From<crate::aws::AwsError> for SourceError {
    fn from(e: crate::aws::AwsError) -> SourceError {
        SourceError {
            reason: e.reason,
            code: e.code,
            message: e.message,
        }
    }
}

impl SourceError {
    pub fn new(reason: ErrorReason, message: impl Into<String>) -> Self {
        SourceError {
            reason,
            code: None,
            message: message.into(),
        }
    }
}

/// Where the exporter reads keys from (`--source`, `source:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// IAM API: exact, fresh, with key ids.
    Api,
    /// IAM credential report: three calls per account, no key ids.
    CredentialReport,
}

/// Values that AWS (and moto) write where a value is unknown or absent.
pub(crate) fn is_missing(value: &str) -> bool {
    matches!(value, "" | "N/A" | "no_information" | "not_supported")
}

/// Which users a source leaves out (`users.exclude`, `users.exclude_tags`).
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub exclude: Vec<regex::Regex>,
    pub exclude_tags: BTreeMap<String, String>,
}

impl UserFilter {
    pub fn excludes_name(&self, name: &str) -> bool {
        self.exclude.iter().any(|re| re.is_match(name))
    }

    pub fn excludes_tags<'a>(&self, mut tags: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
        !self.exclude_tags.is_empty() && tags.any(|(k, v)| self.exclude_tags.get(k).is_some_and(|wanted| wanted == v))
    }

    /// Drops excluded users and their keys from data that is already complete
    /// (the credential report, which has no tags).
    pub fn apply(&self, data: &mut AccountData) {
        if self.exclude.is_empty() {
            return;
        }
        data.users.retain(|u| !self.excludes_name(&u.name));
        // Root is not an IAM user: a pattern on user names never hides it.
        data.keys.retain(|k| k.is_root() || !self.excludes_name(&k.user));
    }
}

/// Users' keys get positions 1 and 2 by creation date; the key list is kept
/// sorted by user, then position, so that every output is stable.
pub(crate) fn number_keys_by_creation(keys: &mut [AccessKey]) {
    keys.sort_by(|a, b| {
        (&*a.user, a.created, a.access_key_id.as_deref()).cmp(&(&*b.user, b.created, b.access_key_id.as_deref()))
    });
    for i in 0..keys.len() {
        keys[i].position = if i > 0 && keys[i - 1].user == keys[i].user {
            keys[i - 1].position.saturating_add(1)
        } else {
            1
        };
    }
}

#[cfg(test)]
mod tests {
    /// One is held for every key, two during a refresh: it was 128 bytes
    /// before its strings were shared.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_key_stays_compact() {
        assert_eq!(std::mem::size_of::<super::AccessKey>(), 96);
    }
}

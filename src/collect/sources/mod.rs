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

use crate::domain::key::{AccessKey, AccountData};

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

//! The key model: what a source learned about an account's users and their
//! access keys, before any policy looks at it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use crate::domain::privilege::Privilege;

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
    /// Its user's, copied here by [`AccountData::set_privileges`] so that
    /// the policy judges a key from the key alone; `None`: not read.
    pub privilege: Option<Privilege>,
}

/// The credential report's name for the root user; no IAM user can be
/// called this, as IAM names cannot hold `<` or `>`.
pub const ROOT_USER: &str = "<root_account>";

impl AccessKey {
    /// A key of the account's root user, which only a credential report lists.
    pub fn is_root(&self) -> bool {
        &*self.user == ROOT_USER
    }

    /// An active key of `user` created at `created`, first of the user's,
    /// with no id and never used; the setters below say the rest, for the
    /// sources and for the keys of tests and benchmarks alike.
    pub fn new(user: impl Into<Arc<str>>, created: DateTime<Utc>) -> AccessKey {
        AccessKey {
            user: user.into(),
            access_key_id: None,
            last_used_service: None,
            last_used_region: None,
            created,
            last_used: None,
            position: 1,
            status: KeyStatus::Active,
            privilege: None,
        }
    }

    pub fn position(mut self, position: u8) -> AccessKey {
        self.position = position;
        self
    }

    pub fn id(mut self, id: impl Into<Box<str>>) -> AccessKey {
        self.access_key_id = Some(id.into());
        self
    }

    pub fn status(mut self, status: KeyStatus) -> AccessKey {
        self.status = status;
        self
    }

    /// Takes a time or an `Option` of one.
    pub fn last_used(mut self, when: impl Into<Option<DateTime<Utc>>>) -> AccessKey {
        self.last_used = when.into();
        self
    }

    /// Where it was last used.
    pub fn last_used_in(mut self, service: Option<Arc<str>>, region: Option<Arc<str>>) -> AccessKey {
        self.last_used_service = service;
        self.last_used_region = region;
        self
    }

    pub fn privilege(mut self, privilege: impl Into<Option<Privilege>>) -> AccessKey {
        self.privilege = privilege.into();
        self
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
    /// From its policies (`GetAccountAuthorizationDetails`); `None` when the
    /// source did not read them.
    pub privilege: Option<Privilege>,
}

impl User {
    /// A user without tags, whose privileges were not read.
    pub fn new(name: impl Into<Arc<str>>, path: impl Into<Arc<str>>) -> User {
        User {
            name: name.into(),
            path: path.into(),
            tags: BTreeMap::new(),
            privilege: None,
        }
    }

    pub fn tags(mut self, tags: BTreeMap<String, String>) -> User {
        self.tags = tags;
        self
    }

    pub fn privilege(mut self, privilege: impl Into<Option<Privilege>>) -> User {
        self.privilege = privilege.into();
        self
    }
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
    /// Whether the users' privileges were read: when not, no count of admin
    /// or exposed keys is known, which is not the same as none.
    pub privileges_read: bool,
}

impl AccountData {
    /// Gives each user named in `found` its privilege, and each of its keys
    /// the same; a user the policies did not list (created between the two
    /// reads) stays unknown.
    pub fn set_privileges(&mut self, found: &std::collections::HashMap<&str, Privilege>) {
        for user in &mut self.users {
            user.privilege = found.get(&*user.name).copied();
        }
        for key in &mut self.keys {
            key.privilege = found.get(&*key.user).copied();
        }
        self.privileges_read = true;
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

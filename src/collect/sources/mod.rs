//! Where key data comes from, through one seam, [`Source`]: the IAM API
//! ([`api`]), the credential report AWS generates ([`live_report`]), or a
//! credential report file ([`report_file`]); the report's CSV is parsed by
//! [`report_csv`] for both. Every source produces one [`AccountData`] per
//! account, complete or not at all.
//!
//! One enum, not a trait: the sources are a closed set that the settings
//! choose from, the refresh clones the one chosen into every read of an
//! account (reads run concurrently), and one `match` per question shows what
//! each source does; a trait object would need boxed futures for its async
//! read and add nothing a new variant does not.

pub mod api;
pub mod authorization;
#[cfg(test)]
pub(crate) mod fixtures;
mod intern;
pub mod live_report;
pub mod report_csv;
pub mod report_file;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::collect::aws::Clients;
use crate::collect::file_watch::POLL;
use crate::domain::accounts::Target;
use crate::domain::failure::{ErrorReason, SourceError};
use crate::domain::key::{AccessKey, AccountData};
use api::ApiOptions;
use live_report::LiveReportOptions;
use report_file::ReportFileSource;

/// Where the exporter reads keys from (`--source`, `source:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// IAM API: exact, fresh, with key ids.
    Api,
    /// IAM credential report: 1 call per account when a recent report exists, else 3 or 4; no key ids.
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

/// Why an account is read now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occasion {
    /// The first refresh, at start or of the `report` command: it must answer.
    First,
    /// The account's interval came round.
    Due,
    /// A look between due reads at a source that can tell that it changed
    /// ([`Source::looks_every`]).
    Look,
}

/// The source the settings chose, and the one way the refresh reads it.
#[derive(Debug, Clone)]
pub enum Source {
    Api(ApiOptions),
    LiveReport(LiveReportOptions),
    /// Shared by the reads, which never overlap: the file's last version and
    /// the account it held are known from one read to the next.
    ReportFile(Arc<tokio::sync::Mutex<ReportFileSource>>),
}

impl Source {
    /// A source that reads the accounts through AWS.
    pub fn new(kind: SourceKind, api: ApiOptions, live_report: LiveReportOptions) -> Source {
        match kind {
            SourceKind::Api => Source::Api(api),
            SourceKind::CredentialReport => Source::LiveReport(live_report),
        }
    }

    pub fn report_file(path: PathBuf) -> Source {
        Source::ReportFile(Arc::new(tokio::sync::Mutex::new(ReportFileSource::new(path))))
    }

    /// Whether the accounts are found and reached through AWS; a report file
    /// is one account's data, whose account is learned from the file.
    pub fn calls_aws(&self) -> bool {
        !matches!(self, Source::ReportFile(_))
    }

    /// How often the source is looked at between due reads, for one that can
    /// tell cheaply that its data changed: a report file is read again as
    /// soon as it is rewritten.
    pub fn looks_every(&self) -> Option<Duration> {
        matches!(self, Source::ReportFile(_)).then_some(POLL)
    }

    /// The `(service, operation)` pairs this source calls for an account,
    /// as the SDK names them in `aws_iam_exporter_aws_requests_total`.
    pub fn operations(&self) -> Vec<(&'static str, &'static str)> {
        let mut operations = match self {
            Source::Api(_) => {
                vec![
                    ("iam", "GetAccountSummary"),
                    ("iam", "GetAccountAuthorizationDetails"),
                    ("iam", "ListAccessKeys"),
                    ("iam", "GetAccessKeyLastUsed"),
                ]
            }
            Source::LiveReport(options) => {
                let mut ops = vec![("iam", "GenerateCredentialReport"), ("iam", "GetCredentialReport")];
                if options.authorization_details {
                    ops.push(("iam", "GetAccountAuthorizationDetails"));
                }
                ops
            }
            Source::ReportFile(_) => return Vec::new(),
        };
        // For an account without a configured or Organizations name.
        operations.push(("iam", "ListAccountAliases"));
        operations
    }

    /// The account a read of `target` is of, as far as it is known before
    /// the read: the target's, or the one the report file held last.
    pub async fn known_account(&self, target: &Target) -> Option<String> {
        match self {
            Source::Api(_) | Source::LiveReport(_) => Some(target.account_id.clone()),
            Source::ReportFile(file) => file.lock().await.known_id().map(str::to_string),
        }
    }

    /// Reads `target` completely for `occasion`, without the users `filter`
    /// excludes; `None` when there is nothing new to publish. `clients`
    /// reach the account, for a source that [`calls_aws`](Source::calls_aws);
    /// `interval` is how long a report file may be seen being written before
    /// the account fails.
    pub async fn read(
        &self,
        occasion: Occasion,
        target: &Target,
        clients: Option<&Clients>,
        interval: Duration,
        filter: &UserFilter,
    ) -> Option<Result<AccountData, SourceError>> {
        let (account_id, name) = (target.account_id.as_str(), target.name.as_deref());
        match (self, clients) {
            // While listing: an excluded user costs no further calls.
            (Source::Api(options), Some(clients)) => {
                Some(api::fetch_account(clients, account_id, name, options, filter).await)
            }
            (Source::LiveReport(options), Some(clients)) => {
                Some(read_live_report(clients, options, account_id, name, filter).await)
            }
            (Source::ReportFile(file), _) => file.lock().await.read(occasion, interval, filter).await,
            // The refresh loads AWS for every source that calls it; a failed
            // read, not a panic, if that ever stops being true.
            (Source::Api(_) | Source::LiveReport(_), None) => Some(Err(SourceError::new(
                ErrorReason::Other,
                format!("account {account_id}: no AWS clients to read it with"),
            ))),
        }
    }
}

async fn read_live_report(
    clients: &Clients,
    options: &LiveReportOptions,
    account_id: &str,
    name: Option<&str>,
    filter: &UserFilter,
) -> Result<AccountData, SourceError> {
    let mut data = live_report::fetch(&clients.iam, &clients.rate, options, Utc::now()).await?;
    if data.account_id.is_empty() {
        // No rows at all: an account without users (and, in moto, root).
        data.account_id = account_id.to_string();
    }
    if data.account_id != account_id {
        return Err(SourceError::new(
            ErrorReason::InvalidResponse,
            format!(
                "the credential report is of account {}, not {account_id}",
                data.account_id
            ),
        ));
    }
    filter.apply(&mut data);
    if options.authorization_details {
        let details = authorization::fetch(&clients.iam, &clients.rate).await?;
        add_authorization(&mut data, &details, filter, &options.user_tags);
    }
    data.account_name = api::account_name(clients, name).await?;
    Ok(data)
}

/// A credential report's users with what the authorization details say of
/// them: tags (so the tag filter now applies) and privileges. A user in only
/// one of the two, created or deleted between the reads, keeps no tags and
/// unknown privileges.
fn add_authorization(
    data: &mut AccountData,
    details: &[authorization::UserDetails],
    filter: &UserFilter,
    user_tags: &[String],
) {
    let by_name: std::collections::HashMap<&str, &authorization::UserDetails> =
        details.iter().map(|u| (u.name.as_str(), u)).collect();
    let excluded = |name: &str| by_name.get(name).is_some_and(|u| u.excluded_by(filter));
    data.users.retain(|u| !excluded(&u.name));
    data.keys.retain(|k| k.is_root() || !excluded(&k.user));
    for user in &mut data.users {
        if let Some(found) = by_name.get(&*user.name) {
            user.tags = found.exported_tags(user_tags);
        }
    }
    let privileges = details.iter().map(|u| (u.name.as_str(), u.privilege)).collect();
    data.set_privileges(&privileges);
}

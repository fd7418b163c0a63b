//! The seam between the refresh and the sources that read an account through
//! AWS: one enum, built once from the settings, and the one place where the
//! user filter meets those sources' data. A new source is a variant here and
//! its own module. (A report file is not read per account: the refresh
//! watches it, and applies the same filter to it.)

use chrono::Utc;

use super::api::{self, ApiOptions};
use super::live_report::{self, LiveReportOptions};
use super::{SourceKind, UserFilter};
use crate::collect::aws::Clients;
use crate::domain::failure::{ErrorReason, SourceError};
use crate::domain::key::AccountData;

#[derive(Debug, Clone)]
pub enum AccountSource {
    Api(ApiOptions),
    CredentialReport(LiveReportOptions),
}

impl AccountSource {
    pub fn new(kind: SourceKind, api: ApiOptions, live_report: LiveReportOptions) -> AccountSource {
        match kind {
            SourceKind::Api => AccountSource::Api(api),
            SourceKind::CredentialReport => AccountSource::CredentialReport(live_report),
        }
    }

    /// The `(service, operation)` pairs this source calls for an account
    /// (`filter` decides whether user tags are read), as the SDK names them
    /// in `aws_iam_exporter_aws_requests_total`.
    pub fn operations(&self, filter: &UserFilter) -> Vec<(&'static str, &'static str)> {
        let mut operations = match self {
            AccountSource::Api(options) => {
                let mut ops = vec![
                    ("iam", "GetAccountSummary"),
                    ("iam", "ListUsers"),
                    ("iam", "ListAccessKeys"),
                    ("iam", "GetAccessKeyLastUsed"),
                ];
                if !options.user_tags.is_empty() || !filter.exclude_tags.is_empty() {
                    ops.push(("iam", "ListUserTags"));
                }
                ops
            }
            AccountSource::CredentialReport(_) => {
                vec![("iam", "GenerateCredentialReport"), ("iam", "GetCredentialReport")]
            }
        };
        // For an account without a configured or Organizations name.
        operations.push(("iam", "ListAccountAliases"));
        operations
    }

    /// Reads account `account_id` completely, without the users `filter`
    /// excludes. `name` is its name from Organizations or the config; the
    /// account alias otherwise.
    pub async fn fetch(
        &self,
        clients: &Clients,
        account_id: &str,
        name: Option<&str>,
        filter: &UserFilter,
    ) -> Result<AccountData, SourceError> {
        match self {
            // While listing: an excluded user costs no further calls.
            AccountSource::Api(options) => api::fetch_account(clients, account_id, name, options, filter).await,
            AccountSource::CredentialReport(options) => {
                let mut data = live_report::fetch(&clients.iam, options, Utc::now()).await?;
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
                data.account_name = api::account_name(clients, name).await?;
                Ok(data)
            }
        }
    }
}

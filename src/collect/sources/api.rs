//! The IAM API source: exact, fresh, with key ids, at a few
//! `GetAccountAuthorizationDetails` per account (users, tags, policies), one
//! `ListAccessKeys` per user and one `GetAccessKeyLastUsed` per key.

use std::sync::Arc;

use aws_sdk_iam::types::{StatusType, SummaryKeyType};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use super::authorization::{self, UserDetails};
use super::intern::Interner;
use super::{is_missing, UserFilter};
use crate::collect::aws::{classify, Clients};
use crate::domain::failure::{ErrorReason, SourceError};
use crate::domain::key::{AccessKey, AccountData, KeyStatus, User};

#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Calls in flight at once for this account.
    pub max_concurrent_requests: usize,
    /// Tag keys to export.
    pub user_tags: Vec<String>,
}

/// Reads one account completely, or fails: a half-read account is never
/// returned, so the caller keeps its previous complete data. The account
/// alias is read only when the account has no name from Organizations or the
/// config.
pub async fn fetch_account(
    clients: &Clients,
    account_id: &str,
    name: Option<&str>,
    options: &ApiOptions,
    filter: &UserFilter,
) -> Result<AccountData, SourceError> {
    let account_name = account_name(clients, name).await?;

    clients.rate.wait().await;
    let summary = clients
        .iam
        .get_account_summary()
        .send()
        .await
        .map_err(|e| classify("GetAccountSummary", &e))?;
    let root_access_key_present = summary
        .summary_map()
        .and_then(|m| m.get(&SummaryKeyType::AccountAccessKeysPresent))
        .is_some_and(|n| *n > 0);

    let details = authorization::fetch(&clients.iam, &clients.rate).await?;
    let per_user: Vec<(User, Vec<AccessKey>)> =
        futures::stream::iter(details.into_iter().filter(|u| !u.excluded_by(filter)))
            .map(|user| fetch_user(clients, options, user))
            .buffer_unordered(options.max_concurrent_requests.max(1))
            .try_collect()
            .await?;

    let mut users = Vec::with_capacity(per_user.len());
    let mut keys = Vec::with_capacity(per_user.len());
    // Users were read concurrently, each with its own copies of the values
    // that repeat: these are shared here, once all are in.
    let mut interner = Interner::default();
    for (mut user, mut user_keys) in per_user {
        user.path = interner.share(user.path);
        for key in &mut user_keys {
            key.last_used_service = key.last_used_service.take().map(|v| interner.share(v));
            key.last_used_region = key.last_used_region.take().map(|v| interner.share(v));
        }
        users.push(user);
        keys.extend(user_keys);
    }
    users.sort_by(|a, b| a.name.cmp(&b.name));
    super::number_keys_by_creation(&mut keys);
    Ok(AccountData {
        account_id: account_id.to_string(),
        account_name,
        users,
        keys,
        root_access_key_present,
        privileges_read: true,
        ..AccountData::default()
    })
}

/// The account's display name: the one given (by Organizations or the
/// config), else its alias, else empty.
pub async fn account_name(clients: &Clients, name: Option<&str>) -> Result<String, SourceError> {
    if let Some(name) = name {
        return Ok(name.to_string());
    }
    clients.rate.wait().await;
    let aliases = clients
        .iam
        .list_account_aliases()
        .send()
        .await
        .map_err(|e| classify("ListAccountAliases", &e))?;
    Ok(aliases.account_aliases().first().cloned().unwrap_or_default())
}

/// One user's keys and their last use.
async fn fetch_user(
    clients: &Clients,
    options: &ApiOptions,
    details: UserDetails,
) -> Result<(User, Vec<AccessKey>), SourceError> {
    let name: Arc<str> = Arc::from(details.name.as_str());
    clients.rate.wait().await;
    let metadata: Vec<aws_sdk_iam::types::AccessKeyMetadata> = clients
        .iam
        .list_access_keys()
        .user_name(&*name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify("ListAccessKeys", &e))?;

    let mut keys = Vec::with_capacity(metadata.len());
    for key in metadata {
        let id = key
            .access_key_id()
            .ok_or_else(|| invalid(format!("ListAccessKeys returned a key without id for user {name}")))?;
        let created = key.create_date().and_then(to_chrono).ok_or_else(|| {
            invalid(format!(
                "ListAccessKeys returned key {id} of user {name} without a valid CreateDate"
            ))
        })?;
        let status = match key.status() {
            Some(StatusType::Active) => KeyStatus::Active,
            Some(StatusType::Inactive) => KeyStatus::Inactive,
            other => return Err(invalid(format!("key {id} of user {name} has unknown status {other:?}"))),
        };
        clients.rate.wait().await;
        let last_used = clients
            .iam
            .get_access_key_last_used()
            .access_key_id(id)
            .send()
            .await
            .map_err(|e| classify("GetAccessKeyLastUsed", &e))?;
        let last = last_used.access_key_last_used();
        // Interned by the caller, which sees every user's keys.
        let known = |v: Option<&str>| v.filter(|v| !is_missing(v)).map(Arc::from);
        // Numbered by creation date once the user's keys are all in.
        keys.push(
            AccessKey::new(Arc::clone(&name), created)
                .position(0)
                .id(id)
                .privilege(details.privilege)
                .status(status)
                .last_used(last.and_then(|l| l.last_used_date()).and_then(to_chrono))
                .last_used_in(known(last.map(|l| l.service_name())), known(last.map(|l| l.region()))),
        );
    }
    let user = User::new(name, details.path.as_str())
        .tags(details.exported_tags(&options.user_tags))
        .privilege(details.privilege);
    Ok((user, keys))
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn invalid(message: impl Into<String>) -> SourceError {
    SourceError::new(ErrorReason::InvalidResponse, message)
}

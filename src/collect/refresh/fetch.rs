//! Fetching: who the base credentials are, which accounts to read
//! (Organizations), and one read of an account through its source, bounded
//! by the refresh timeout when it goes to AWS.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::access::AccountAccess;
use super::publish::{record_and_publish, RefreshMetrics};
use super::{AwsState, RefreshSettings};
use crate::collect::aws::{classify, rate, Clients, Throttles};
use crate::collect::sources::{Occasion, Source};
use crate::domain::accounts::{self, Caller, MemberAccount, Target};
use crate::domain::failure::{ErrorReason, SourceError};
use crate::domain::key::AccountData;
use crate::domain::snapshot::{Outcome, SnapshotStore};

/// Learns who the base credentials are and, with Organizations, the member
/// accounts; plans the targets. On failure the previous targets stay.
pub(super) async fn discover(
    state: &mut AwsState,
    known: &mut Vec<Target>,
    settings: &RefreshSettings,
    store: &SnapshotStore,
    metrics: &RefreshMetrics,
) -> Vec<SourceError> {
    // Throttled calls are retried until a deadline, and discovery's would
    // otherwise have none.
    let (started, base_throttles) = (Instant::now(), state.base.throttles.clone());
    let work = async {
        let identity = state
            .base
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| classify("GetCallerIdentity", &e))?;
        let account_id = identity
            .account()
            .filter(|id| crate::domain::ids::is_account_id(id))
            .ok_or_else(|| {
                SourceError::new(
                    ErrorReason::InvalidResponse,
                    "GetCallerIdentity returned no valid account id",
                )
            })?;
        let caller = Caller::from_arn(account_id, identity.arn());
        let members = if accounts::uses_organization(&settings.accounts) {
            Some(list_members(&state.organizations).await?)
        } else {
            None
        };
        Ok::<_, SourceError>(accounts::plan(
            &settings.accounts,
            settings.shard,
            &caller,
            members.as_deref(),
        ))
    };
    let limit = settings.refresh_timeout;
    let result = match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => {
            let mut e = deadline_passed(limit, [&*base_throttles], started);
            // No account is known yet to which the reader could tie it.
            e.message = format!("account discovery (GetCallerIdentity, ListAccounts): {}", e.message);
            Err(e)
        }
    };
    match result {
        Ok(targets) => {
            let ids: BTreeSet<String> = targets.iter().map(|t| t.account_id.clone()).collect();
            // Before their first refresh, so that its failure is an increase.
            for id in &ids {
                metrics.start_at_zero(id);
                state.aws_calls.start_account_at_zero(id);
            }
            state.access.retain(|id, _| ids.contains(id));
            if targets != *known {
                tracing::info!(accounts = targets.len(), "accounts discovered");
            }
            *known = targets;
            store.publish(store.load().retaining(&ids));
            Vec::new()
        }
        Err(e) if known.is_empty() => {
            // Nothing known yet: show the failure as an account that is
            // down, so that "all accounts down" alerts see it.
            let outcome = Outcome {
                previous_id: None,
                result: Err(e.clone()),
                finished: Utc::now(),
                duration: Duration::ZERO,
            };
            record_and_publish(store, metrics, settings.key_ids, outcome);
            vec![e]
        }
        Err(e) => {
            tracing::error!(reason = e.reason.as_str(), code = e.code.as_deref().unwrap_or(""), error = %settings.key_ids.redact(&e.message), "account discovery failed; keeping the previous accounts");
            metrics.count("", e.reason);
            vec![e]
        }
    }
}

async fn list_members(client: &aws_sdk_organizations::Client) -> Result<Vec<MemberAccount>, SourceError> {
    use aws_sdk_organizations::types::AccountStatus;
    let pages: Vec<_> = client
        .list_accounts()
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| classify("ListAccounts", &e))?;
    let accounts = pages.into_iter().flat_map(|page| page.accounts.unwrap_or_default());
    #[allow(deprecated)] // `Status` is what moto and older organizations fill in
    let active = accounts
        .filter(|a| a.status() == Some(&AccountStatus::Active))
        .filter_map(|a| {
            Some(MemberAccount {
                id: a.id()?.to_string(),
                name: a.name().unwrap_or_default().to_string(),
            })
        })
        .filter(|m| crate::domain::ids::is_account_id(&m.id))
        .collect();
    Ok(active)
}

/// A finished read, with the access to keep for the account's next one;
/// no outcome when the source had nothing new.
pub(super) struct Refreshed {
    pub target: Target,
    pub access: Option<AccountAccess>,
    pub outcome: Option<Outcome>,
}

/// A read of one account that owns what it needs, so that it can run while
/// other accounts start and finish. Through AWS (`state`), it gives up after
/// the refresh timeout so that a hung account frees its slot; a report file
/// is local and read without one, as it always was.
pub(super) fn start_read(
    state: Option<&mut AwsState>,
    target: Target,
    occasion: Occasion,
    settings: &Arc<RefreshSettings>,
) -> impl std::future::Future<Output = Refreshed> + 'static {
    let reach = state.map(|state| {
        let access = state
            .access
            .remove(&target.account_id)
            .filter(|a| a.role() == target.role.as_ref())
            .unwrap_or_else(|| AccountAccess::new(target.role.clone()));
        (access, state.sdk.clone(), state.base.clone(), state.aws_calls.clone())
    });
    let settings = settings.clone();
    async move {
        let started = Instant::now();
        let previous_id = settings.source.known_account(&target).await;
        let (source, interval, users) = (&settings.source, settings.interval, &settings.users);
        let (access, result) = match reach {
            None => (None, source.read(occasion, &target, None, interval, users).await),
            Some((mut access, sdk, base, aws_calls)) => {
                let limit = settings.refresh_timeout;
                // Throttled calls are retried until this deadline: when it
                // passes after throttling, that is the reason to report. The
                // clients live outside the read, so that one cut off by the
                // deadline still tells what they saw.
                let made = std::sync::OnceLock::new();
                let work = async {
                    let clients = access.clients(&sdk, &base, &aws_calls).await?;
                    let clients: &Clients = made.get_or_init(|| clients);
                    Ok(source.read(occasion, &target, Some(clients), interval, users).await)
                };
                let before = base.throttles.answers();
                let outcome = tokio::time::timeout(limit, work).await;
                // An account read with the base credentials has the base's.
                let own = made
                    .get()
                    .map(|c| &c.throttles)
                    .filter(|t| !Arc::ptr_eq(t, &base.throttles))
                    .map(|t| &**t);
                let result = match outcome {
                    Ok(Ok(read)) => read,
                    Ok(Err(e)) => Some(Err(e)),
                    Err(_) => Some(Err(deadline_passed(
                        limit,
                        std::iter::once(&*base.throttles).chain(own),
                        started,
                    ))),
                };
                aws_calls.record_throttled(&target.account_id, throttled_in_read(&base.throttles, before, own));
                if let Some(rate) = made.get().map(|c| &c.rate) {
                    aws_calls.record_allowed_rate(&target.account_id, rate.allowed());
                    if let (Some(Ok(data)), Some(allowed), Source::Api(_)) = (&result, rate.allowed(), source) {
                        warn_if_over_budget(&mut access, data, allowed, interval);
                    }
                }
                (Some(access), result)
            }
        };
        let outcome = result.map(|result| Outcome {
            previous_id,
            result,
            finished: Utc::now(),
            duration: started.elapsed(),
        });
        Refreshed {
            target,
            access,
            outcome,
        }
    }
}

/// Says once, when the rate the account's calls are allowed (the cap, or
/// what throttling left) cannot read it within the interval, what it takes
/// and the ways out.
fn warn_if_over_budget(access: &mut AccountAccess, data: &AccountData, allowed: f64, interval: Duration) {
    let needs = rate::api_read_at(data.users.len(), data.keys.len(), allowed);
    if needs <= interval || access.over_budget_said {
        return;
    }
    access.over_budget_said = true;
    tracing::warn!(
        account_id = %data.account_id,
        users = data.users.len(),
        keys = data.keys.len(),
        allowed_requests_per_second = allowed,
        read_seconds = needs.as_secs(),
        interval_seconds = interval.as_secs(),
        "at the rate of AWS calls this account allows (aws.max_requests_per_second or AWS's throttling), a read takes longer than refresh.interval; use the credential-report source, a longer interval, or more shards (docs: IAM rate limits)"
    );
}

/// The throttled answers of a read: those of the account's own clients, and
/// those of the base clients (with which the caller's account is read and
/// its role assumed) since `base_before`. A discovery running at the same
/// time would be counted too; discovery runs between reads of the caller's
/// account except on a long read.
fn throttled_in_read(base: &Throttles, base_before: u64, own: Option<&Throttles>) -> u64 {
    base.answers().saturating_sub(base_before) + own.map_or(0, Throttles::answers)
}

/// The error of a read that did not finish within the refresh timeout:
/// `throttled` when AWS was throttling it, since then it was waiting for the
/// account's API budget, not for a broken network.
fn deadline_passed<'a>(
    limit: Duration,
    throttles: impl IntoIterator<Item = &'a Throttles>,
    started: Instant,
) -> SourceError {
    let throttled = throttles.into_iter().any(|t| t.since(started));
    if throttled {
        SourceError::new(
            ErrorReason::Throttled,
            format!(
                "AWS throttled the account's API calls and the refresh did not finish within {}s (--aws.refresh-timeout); the account's API budget is shared with its other callers: see the runbook for reason=\"throttled\"",
                limit.as_secs()
            ),
        )
    } else {
        SourceError::new(
            ErrorReason::Timeout,
            format!(
                "the refresh did not finish within {}s (--aws.refresh-timeout); check the network path to AWS, or raise it",
                limit.as_secs()
            ),
        )
    }
}

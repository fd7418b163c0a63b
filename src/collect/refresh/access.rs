//! How to reach one account: with the base credentials, or through a role
//! whose credentials are kept until shortly before they expire.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;

use crate::collect::aws::{self, AwsCallCounters, Clients};
use crate::domain::accounts::Role;
use crate::domain::failure::SourceError;

/// Assumed-role credentials are renewed this long before they expire, so a
/// refresh never runs out of them half-way.
const RENEW_BEFORE: Duration = Duration::from_secs(15 * 60);

#[derive(Debug)]
pub struct AccountAccess {
    role: Option<Role>,
    credentials: Option<Credentials>,
    /// The rate this account's calls are allowed, which outlives the
    /// clients of one read.
    rate: Option<std::sync::Arc<crate::collect::aws::RequestRate>>,
    /// Whether the account was said to need more than an interval at the
    /// rate allowed: said once, not at every read.
    pub(super) over_budget_said: bool,
}

impl AccountAccess {
    pub fn new(role: Option<Role>) -> AccountAccess {
        AccountAccess {
            role,
            credentials: None,
            rate: None,
            over_budget_said: false,
        }
    }

    pub fn role(&self) -> Option<&Role> {
        self.role.as_ref()
    }

    /// Clients for the account, assuming its role first when the cached
    /// credentials are missing or about to expire.
    pub async fn clients(
        &mut self,
        sdk: &SdkConfig,
        base: &Clients,
        counters: &AwsCallCounters,
    ) -> Result<Clients, SourceError> {
        let Some(role) = &self.role else {
            return Ok(base.clone());
        };
        let usable = |c: &&Credentials| c.expiry().is_some_and(|e| e > SystemTime::now() + RENEW_BEFORE);
        let credentials = match self.credentials.as_ref().filter(usable) {
            Some(c) => c.clone(),
            None => {
                let fresh = aws::assume_role(&base.sts, &role.arn, role.external_id.as_deref()).await?;
                self.credentials = Some(fresh.clone());
                fresh
            }
        };
        let rate = self
            .rate
            .get_or_insert_with(|| std::sync::Arc::new(crate::collect::aws::RequestRate::new(base.rate.cap())))
            .clone();
        Ok(Clients::with_credentials(sdk, credentials, counters, rate))
    }
}

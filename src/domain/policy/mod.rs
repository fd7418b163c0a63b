//! The risk policy: pure functions from a key's timestamps and a moment in
//! time to its age, unused time, bucket and risk. Evaluated at scrape time so
//! that ages are exact between refreshes.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::key::{AccessKey, KeyStatus};

const DAY: u64 = 86_400;

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// An active key older than this is high risk.
    pub rotated_more_than: Duration,
    /// An active key of an admin-equivalent user older than this is high
    /// risk: what such a key can do if it leaks calls for faster rotation.
    pub admin_rotated_more_than: Duration,
    /// An active key never used and older than this is high risk.
    pub never_used_after: Duration,
    /// An active key not used for longer than this is high risk (off when `None`).
    pub unused_more_than: Option<Duration>,
    pub age_buckets: AgeBuckets,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            rotated_more_than: Duration::from_secs(365 * DAY),
            admin_rotated_more_than: Duration::from_secs(90 * DAY),
            never_used_after: Duration::from_secs(7 * DAY),
            unused_more_than: None,
            age_buckets: AgeBuckets::new([30, 90, 180, 365].map(|d| Duration::from_secs(d * DAY)).to_vec())
                .expect("default bounds are increasing"),
        }
    }
}

/// Why a key is high risk; more than one reason can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskReason {
    NotRotated,
    NeverUsed,
    Unused,
    /// CIS AWS Foundations 1.4, Security Hub IAM.4: the root user should have
    /// no access key at all, so an active one is high risk at any age.
    RootKey,
    /// AWS attached a quarantine policy to the key's user: one of its keys
    /// was found in public, so every active key of the user is suspect.
    Quarantined,
    /// An admin-equivalent user's key older than `admin_rotated_more_than`.
    AdminNotRotated,
}

impl RiskReason {
    pub fn describe(self) -> &'static str {
        match self {
            RiskReason::NotRotated => "not rotated",
            RiskReason::NeverUsed => "never used",
            RiskReason::Unused => "unused",
            RiskReason::RootKey => "root access key",
            RiskReason::Quarantined => "AWS quarantined this user: a key was found exposed",
            RiskReason::AdminNotRotated => "admin key not rotated",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub age_seconds: f64,
    pub unused_seconds: f64,
    pub never_used: bool,
    pub bucket: usize,
    pub reasons: Vec<RiskReason>,
}

impl Assessment {
    pub fn high_risk(&self) -> bool {
        !self.reasons.is_empty()
    }

    /// Whole days since creation, rounded down.
    pub fn age_days(&self) -> u64 {
        (self.age_seconds / DAY as f64) as u64
    }

    /// Whole days unused, rounded down.
    pub fn unused_days(&self) -> u64 {
        (self.unused_seconds / DAY as f64) as u64
    }
}

impl Policy {
    pub fn assess(&self, key: &AccessKey, now: DateTime<Utc>) -> Assessment {
        let age_seconds = seconds_since(key.created, now);
        let unused_seconds = seconds_since(key.unused_since(), now);
        let never_used = key.last_used.is_none();
        let mut reasons = Vec::new();
        if key.status == KeyStatus::Active {
            let privilege = key.privilege.unwrap_or_default();
            if key.is_root() {
                reasons.push(RiskReason::RootKey);
            }
            if privilege.quarantined {
                reasons.push(RiskReason::Quarantined);
            }
            // The stricter limit of an admin replaces the general one.
            if privilege.admin && age_seconds > self.admin_rotated_more_than.as_secs_f64() {
                reasons.push(RiskReason::AdminNotRotated);
            } else if age_seconds > self.rotated_more_than.as_secs_f64() {
                reasons.push(RiskReason::NotRotated);
            }
            if never_used && age_seconds > self.never_used_after.as_secs_f64() {
                reasons.push(RiskReason::NeverUsed);
            }
            if let Some(limit) = self.unused_more_than {
                if !never_used && unused_seconds > limit.as_secs_f64() {
                    reasons.push(RiskReason::Unused);
                }
            }
        }
        Assessment {
            age_seconds,
            unused_seconds,
            never_used,
            bucket: self.age_buckets.index(age_seconds),
            reasons,
        }
    }
}

/// Clamped at zero: a timestamp slightly in the future (clock skew between AWS
/// and this host) must not produce a negative age.
impl Policy {
    /// The first instant after `now` at which the key's assessment may
    /// change other than in its ages (its bucket, or a risk reason
    /// appearing), or `None` if it never will: until then an output of it
    /// rendered at `now` stays right. Each threshold counts both at its
    /// instant and a millisecond later (`>` and `>=` comparisons on whole
    /// milliseconds), which is conservative: an early candidate only costs
    /// one more rendering.
    pub fn stable_until(&self, key: &AccessKey, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut thresholds: Vec<(DateTime<Utc>, Duration)> = self
            .age_buckets
            .bounds
            .iter()
            .map(|b| (key.created, Duration::from_secs_f64(*b)))
            .collect();
        thresholds.push((key.created, self.rotated_more_than));
        if key.privilege.is_some_and(|p| p.admin) {
            thresholds.push((key.created, self.admin_rotated_more_than));
        }
        match (key.last_used, self.unused_more_than) {
            (None, _) => thresholds.push((key.created, self.never_used_after)),
            (Some(used), Some(limit)) => thresholds.push((used, limit)),
            (Some(_), None) => {}
        }
        thresholds
            .into_iter()
            .filter_map(|(from, after)| from.checked_add_signed(chrono::Duration::from_std(after).ok()?))
            .flat_map(|at| [at, at + chrono::Duration::milliseconds(1)])
            .filter(|at| *at > now)
            .min()
    }
}

pub fn seconds_since(then: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    let millis = (now - then).num_milliseconds().max(0);
    millis as f64 / 1000.0
}

/// Half-open age intervals `[lower, upper)` between increasing bounds, the last
/// one open-ended.
#[derive(Debug, Clone, PartialEq)]
pub struct AgeBuckets {
    bounds: Vec<f64>,
    labels: Vec<String>,
}

impl AgeBuckets {
    pub fn new(bounds: Vec<Duration>) -> Result<Self, String> {
        if bounds.is_empty() {
            return Err("needs at least one bound".into());
        }
        if bounds[0].is_zero() {
            return Err("bounds must be greater than zero".into());
        }
        // Labels are in whole d, h, m or s: a fraction would be labelled as
        // something it is not (500ms as `0d`).
        if let Some(bound) = bounds.iter().find(|b| b.subsec_nanos() != 0) {
            return Err(format!(
                "bounds must be whole seconds, as their labels are ({} is not)",
                humantime::format_duration(*bound)
            ));
        }
        if let Some(pair) = bounds.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!(
                "bounds must be strictly increasing ({} is not below {})",
                short_duration(pair[0]),
                short_duration(pair[1])
            ));
        }
        // `30-90d`: the lower bound drops its unit when the upper one has the same.
        let mut labels = Vec::with_capacity(bounds.len() + 1);
        let mut lower = String::from("0");
        for bound in &bounds {
            let upper = short_duration(*bound);
            let same_unit = lower.chars().last() == upper.chars().last();
            let lower_text = if same_unit {
                &lower[..lower.len() - 1]
            } else {
                lower.as_str()
            };
            labels.push(format!("{lower_text}-{upper}"));
            lower = upper;
        }
        labels.push(format!("{lower}+"));
        Ok(AgeBuckets {
            bounds: bounds.iter().map(Duration::as_secs_f64).collect(),
            labels,
        })
    }

    pub fn index(&self, age_seconds: f64) -> usize {
        self.bounds.partition_point(|bound| *bound <= age_seconds)
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }
}

/// `30d`, `12h`, `90m` or `45s`: the largest unit that divides the duration,
/// so that bucket labels read like the configured bounds.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s % DAY == 0 => format!("{}d", s / DAY),
        _ if s % 3600 == 0 => format!("{}h", s / 3600),
        _ if s % 60 == 0 => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn bounds() -> impl Strategy<Value = Vec<u64>> {
        proptest::collection::btree_set(1u64..10_000 * DAY, 1..8).prop_map(|set| set.into_iter().collect())
    }

    proptest! {
        /// Every age falls in exactly one bucket, the one whose half-open
        /// interval holds it.
        #[test]
        fn every_age_is_in_exactly_one_bucket(bounds in bounds(), age in 0u64..20_000 * DAY) {
            let buckets = AgeBuckets::new(bounds.iter().map(|s| Duration::from_secs(*s)).collect()).unwrap();
            let i = buckets.index(age as f64);
            prop_assert!(i <= bounds.len());
            let lower = if i == 0 { 0 } else { bounds[i - 1] };
            prop_assert!(lower <= age);
            if i < bounds.len() {
                prop_assert!(age < bounds[i]);
            }
            prop_assert_eq!(buckets.labels().len(), bounds.len() + 1);
        }

        /// High risk is exactly the policy's definition, and never for an
        /// inactive key.
        #[test]
        fn high_risk_follows_the_definition(
            age in 0i64..5_000 * DAY as i64,
            used_ago in proptest::option::of(0i64..5_000 * DAY as i64),
            active in any::<bool>(),
            unused_limit in proptest::option::of(1u64..1_000 * DAY),
            privilege in proptest::option::of((any::<bool>(), any::<bool>())),
        ) {
            let now = chrono::DateTime::from_timestamp(2_000_000_000, 0).unwrap();
            let used_ago = used_ago.map(|u| u.min(age));
            let key = AccessKey::new("u", now - chrono::Duration::seconds(age))
                .status(if active { KeyStatus::Active } else { KeyStatus::Inactive })
                .last_used(used_ago.map(|u| now - chrono::Duration::seconds(u)))
                .privilege(privilege.map(|(admin, quarantined)| crate::domain::key::Privilege { admin, quarantined }));
            let policy = Policy { unused_more_than: unused_limit.map(Duration::from_secs), ..Policy::default() };
            let a = policy.assess(&key, now);
            let (admin, quarantined) = privilege.unwrap_or_default();
            let rotation_limit = if admin { policy.admin_rotated_more_than.min(policy.rotated_more_than) } else { policy.rotated_more_than };
            let expected = active
                && (quarantined
                    || age as f64 > rotation_limit.as_secs_f64()
                    || (used_ago.is_none() && age as f64 > policy.never_used_after.as_secs_f64())
                    || matches!((unused_limit, used_ago), (Some(l), Some(u)) if u as u64 > l));
            prop_assert_eq!(a.high_risk(), expected);
            prop_assert_eq!(a.never_used, used_ago.is_none());
            prop_assert!(a.unused_seconds <= a.age_seconds);
        }
    }
}

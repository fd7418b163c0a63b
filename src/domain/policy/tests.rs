//! The policy's tests: each risk reason and bucket bound.

use super::*;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

fn key(age: Duration, last_used: Option<Duration>, status: KeyStatus) -> AccessKey {
    AccessKey::new("alice", now() - age)
        .status(status)
        .last_used(last_used.map(|ago| now() - ago))
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n * DAY)
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn default_bucket_labels_match_spec() {
    assert_eq!(
        Policy::default().age_buckets.labels(),
        ["0-30d", "30-90d", "90-180d", "180-365d", "365d+"]
    );
}

#[test]
fn buckets_are_half_open_at_every_boundary() {
    let buckets = Policy::default().age_buckets;
    let cases = [
        (0, 0),
        (30 * DAY - 1, 0),
        (30 * DAY, 1),
        (90 * DAY - 1, 1),
        (90 * DAY, 2),
        (180 * DAY - 1, 2),
        (180 * DAY, 3),
        (365 * DAY - 1, 3),
        (365 * DAY, 4),
        (3650 * DAY, 4),
    ];
    for (age, expected) in cases {
        assert_eq!(buckets.index(age as f64), expected, "age {age}s");
    }
}

#[test]
fn bucket_labels_use_the_largest_whole_unit() {
    let buckets = AgeBuckets::new(vec![
        Duration::from_secs(90 * 60),
        Duration::from_secs(12 * 3600),
        days(7),
    ])
    .unwrap();
    assert_eq!(buckets.labels(), ["0-90m", "90m-12h", "12h-7d", "7d+"]);
    let days_only = AgeBuckets::new(vec![days(7), days(14)]).unwrap();
    assert_eq!(days_only.labels(), ["0-7d", "7-14d", "14d+"]);
}

#[test]
fn bucket_bounds_are_validated() {
    assert!(AgeBuckets::new(vec![]).unwrap_err().contains("at least one"));
    assert!(AgeBuckets::new(vec![Duration::ZERO])
        .unwrap_err()
        .contains("greater than zero"));
    assert_eq!(
        AgeBuckets::new(vec![days(90), days(30)]).unwrap_err(),
        "bounds must be strictly increasing (90d is not below 30d)"
    );
    assert!(AgeBuckets::new(vec![days(30), days(30)]).is_err());
}

#[test]
fn rotation_boundary_is_strictly_more_than() {
    let p = Policy::default();
    let used = Some(days(1));
    assert!(!p.assess(&key(days(365), used, KeyStatus::Active), now()).high_risk());
    assert_eq!(
        p.assess(&key(days(365) + SECOND, used, KeyStatus::Active), now())
            .reasons,
        [RiskReason::NotRotated]
    );
}

#[test]
fn never_used_grace_period() {
    let p = Policy::default();
    let fresh = p.assess(&key(days(7), None, KeyStatus::Active), now());
    assert!(fresh.never_used && !fresh.high_risk());
    assert_eq!(fresh.unused_seconds, fresh.age_seconds);
    let stale = p.assess(&key(days(7) + SECOND, None, KeyStatus::Active), now());
    assert_eq!(stale.reasons, [RiskReason::NeverUsed]);
    let both = p.assess(&key(days(400), None, KeyStatus::Active), now());
    assert_eq!(both.reasons, [RiskReason::NotRotated, RiskReason::NeverUsed]);
}

#[test]
fn inactive_keys_are_never_high_risk() {
    let p = Policy {
        unused_more_than: Some(days(1)),
        ..Policy::default()
    };
    for k in [
        key(days(4000), None, KeyStatus::Inactive),
        key(days(4000), Some(days(3000)), KeyStatus::Inactive),
    ] {
        assert!(!p.assess(&k, now()).high_risk());
    }
}

#[test]
fn unused_threshold_is_optional_and_strict() {
    let off = Policy::default();
    assert!(!off
        .assess(&key(days(100), Some(days(99)), KeyStatus::Active), now())
        .high_risk());
    let on = Policy {
        unused_more_than: Some(days(90)),
        ..Policy::default()
    };
    assert!(!on
        .assess(&key(days(100), Some(days(90)), KeyStatus::Active), now())
        .high_risk());
    let a = on.assess(&key(days(100), Some(days(90) + SECOND), KeyStatus::Active), now());
    assert_eq!(a.reasons, [RiskReason::Unused]);
    assert_eq!(a.unused_seconds, (90 * DAY + 1) as f64);
}

/// CIS 1.4 / Security Hub IAM.4: an active root key is high risk at any
/// age and however recently used; an inactive one is not.
#[test]
fn an_active_root_key_is_always_high_risk() {
    let root = |status| {
        AccessKey::new(crate::domain::key::ROOT_USER, now() - days(1))
            .status(status)
            .last_used(now() - SECOND)
    };
    let p = Policy::default();
    assert_eq!(p.assess(&root(KeyStatus::Active), now()).reasons, [RiskReason::RootKey]);
    assert!(!p.assess(&root(KeyStatus::Inactive), now()).high_risk());
    assert!(!p
        .assess(&key(days(1), Some(SECOND), KeyStatus::Active), now())
        .high_risk());
}

#[test]
fn keys_from_the_future_have_age_zero() {
    let mut k = key(days(0), None, KeyStatus::Active);
    k.created = now() + chrono::Duration::seconds(30);
    let a = Policy::default().assess(&k, now());
    assert_eq!((a.age_seconds, a.unused_seconds, a.bucket), (0.0, 0.0, 0));
}

fn with_privilege(key: AccessKey, admin: bool, quarantined: bool) -> AccessKey {
    key.privilege(crate::domain::key::Privilege { admin, quarantined })
}

/// AWS quarantines a user whose key it found in public: a 10-day-old key
/// used a second ago is high risk then, and not while inactive.
#[test]
fn an_active_key_of_a_quarantined_user_is_always_high_risk() {
    let p = Policy::default();
    let fresh = |status| with_privilege(key(days(10), Some(SECOND), status), false, true);
    assert_eq!(
        p.assess(&fresh(KeyStatus::Active), now()).reasons,
        [RiskReason::Quarantined]
    );
    assert!(!p.assess(&fresh(KeyStatus::Inactive), now()).high_risk());
}

/// An admin's key is held to `admin_rotated_more_than` (90 days by default),
/// strictly more than, and the general 365 days stays for everyone else;
/// a user whose privileges were not read counts as not admin.
#[test]
fn an_admin_key_is_high_risk_after_the_admin_rotation_limit() {
    let p = Policy::default();
    let admin = |age| with_privilege(key(age, Some(SECOND), KeyStatus::Active), true, false);
    assert!(!p.assess(&admin(days(90)), now()).high_risk());
    assert_eq!(
        p.assess(&admin(days(90) + SECOND), now()).reasons,
        [RiskReason::AdminNotRotated]
    );
    // Not also "not rotated": one limit applies to a key.
    assert_eq!(
        p.assess(&admin(days(400)), now()).reasons,
        [RiskReason::AdminNotRotated]
    );
    let others = [
        with_privilege(key(days(100), Some(SECOND), KeyStatus::Active), false, false),
        key(days(100), Some(SECOND), KeyStatus::Active),
    ];
    for other in others {
        assert!(!p.assess(&other, now()).high_risk());
    }
    // The admin limit is a threshold the outputs must be re-rendered at:
    // here before the next bucket bound (90 days).
    let p = Policy {
        admin_rotated_more_than: days(45),
        ..Policy::default()
    };
    assert_eq!(
        p.stable_until(&admin(days(40)), now()),
        Some(now() + chrono::Duration::days(5))
    );
}

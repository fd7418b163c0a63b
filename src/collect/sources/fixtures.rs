//! Keys for the outputs' tests (metrics, report), all dated from one instant
//! so that their expected expositions and documents can be written out.

use chrono::{DateTime, TimeZone, Utc};

use crate::domain::key::{AccessKey, KeyStatus};

/// The instant the fixtures are dated from, and assessed at.
pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap()
}

/// A key created `age` days before [`now`], used `used` days before it (in
/// S3, from eu-west-1).
pub(crate) fn key(user: &str, position: u8, id: &str, status: KeyStatus, age: i64, used: Option<i64>) -> AccessKey {
    AccessKey::new(user, now() - chrono::Duration::days(age))
        .position(position)
        .id(id)
        .status(status)
        .last_used(used.map(|d| now() - chrono::Duration::days(d)))
        .last_used_in(used.map(|_| "s3".into()), used.map(|_| "eu-west-1".into()))
}

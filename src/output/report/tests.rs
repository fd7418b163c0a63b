//! The report's tests: whole tables compared byte for byte, and the fixtures
//! the HTML report's tests share.

use super::*;
use crate::domain::key::{AccessKey, AccountData, User};
use crate::domain::policy::Policy;
use crate::domain::snapshot::{Outcome, Snapshot};
use std::time::Duration;

pub(super) use crate::collect::sources::fixtures::{key, now};

/// alice's key not rotated and her never-used second key, bob's old
/// inactive key.
pub(super) fn three_keys() -> Vec<AccessKey> {
    vec![
        key("alice", 1, "AKIAOLD0000000000001", KeyStatus::Active, 400, Some(1)),
        key("alice", 2, "AKIANEW0000000000002", KeyStatus::Active, 10, None),
        key("bob", 1, "AKIABOB0000000000003", KeyStatus::Inactive, 100, Some(50)),
    ]
}

/// The report of `snapshot` at [`now`].
pub(super) fn build(snapshot: Snapshot, policy: &Policy, key_ids: KeyIdLabel) -> Report {
    Report::build(
        &crate::domain::assess::assess(std::sync::Arc::new(snapshot), policy, now()),
        key_ids,
    )
}

fn report() -> Report {
    let mut data = AccountData {
        account_id: "111122223333".into(),
        account_name: "prod".into(),
        users: ["alice", "bob"].map(|n| User::new(n, "/")).to_vec(),
        keys: three_keys(),
        root_access_key_present: true,
        ..AccountData::default()
    };
    // alice is admin, so her old key breaks the admin limit; bob is
    // quarantined, with only an inactive key.
    let privilege = |admin, quarantined| crate::domain::key::Privilege { admin, quarantined };
    data.set_privileges(&[("alice", privilege(true, false)), ("bob", privilege(false, true))].into());
    let snapshot = Snapshot::default().with_outcomes([Outcome {
        previous_id: None,
        result: Ok(data),
        finished: now(),
        duration: Duration::from_secs(1),
    }]);
    build(snapshot, &Policy::default(), KeyIdLabel::Last4)
}

#[test]
fn table_output() {
    let expected = "\
Access key details (3)
ACCOUNT_ID    ACCOUNT_NAME  USER   KEY  ACCESS_KEY_ID  STATUS    ADMIN  EXPOSED  CREATED               AGE_DAYS  LAST_USED             UNUSED_DAYS  LAST_USED_SERVICE  LAST_USED_REGION  HIGH_RISK  RISK_REASONS
111122223333  prod          alice  1    0001           Active    true   false    2025-10-24T00:00:00Z  400       2026-11-27T00:00:00Z  1            s3                 eu-west-1         true       admin key not rotated
111122223333  prod          alice  2    0002           Active    true   false    2026-11-18T00:00:00Z  10        Never                 10                                                true       never used
111122223333  prod          bob    1    0003           Inactive  false  true     2026-08-20T00:00:00Z  100       2026-10-09T00:00:00Z  50           s3                 eu-west-1         false

High-risk access keys (2)
ACCOUNT_ID    ACCOUNT_NAME  USER   KEY  ACCESS_KEY_ID  STATUS  ADMIN  EXPOSED  CREATED               AGE_DAYS  LAST_USED             UNUSED_DAYS  LAST_USED_SERVICE  LAST_USED_REGION  HIGH_RISK  RISK_REASONS
111122223333  prod          alice  1    0001           Active  true   false    2025-10-24T00:00:00Z  400       2026-11-27T00:00:00Z  1            s3                 eu-west-1         true       admin key not rotated
111122223333  prod          alice  2    0002           Active  true   false    2026-11-18T00:00:00Z  10        Never                 10                                                true       never used

Summary by account (1)
ACCOUNT_ID    ACCOUNT_NAME  UP    USERS  KEYS  ACTIVE_KEYS  HIGH_RISK_KEYS  ADMIN_KEYS  EXPOSED_KEYS  USERS_MULTIPLE_ACTIVE_KEYS  ROOT_ACCESS_KEY_PRESENT  AGE_0-30D  AGE_30-90D  AGE_90-180D  AGE_180-365D  AGE_365D+
111122223333  prod          true  2      3     2            2               2           0             1                           true                     1          0           1            0             1
";
    assert_eq!(
        report().render(ReportFormat::Table, ReportTable::All, &Default::default()),
        expected
    );
}

#[test]
fn csv_output_of_one_table() {
    let expected = "\
account_id,account_name,user,key,access_key_id,status,admin,exposed,created,age_days,last_used,unused_days,last_used_service,last_used_region,high_risk,risk_reasons
111122223333,prod,alice,1,0001,Active,true,false,2025-10-24T00:00:00Z,400,2026-11-27T00:00:00Z,1,s3,eu-west-1,true,admin key not rotated
111122223333,prod,alice,2,0002,Active,true,false,2026-11-18T00:00:00Z,10,Never,10,,,true,never used
";
    assert_eq!(
        report().render(ReportFormat::Csv, ReportTable::HighRisk, &Default::default()),
        expected
    );
}

#[test]
fn json_output_has_all_three_tables() {
    let value: serde_json::Value =
        serde_json::from_str(&report().render(ReportFormat::Json, ReportTable::All, &Default::default())).unwrap();
    assert_eq!(value["details"].as_array().unwrap().len(), 3);
    assert_eq!(value["high_risk"][1]["last_used"], serde_json::Value::Null);
    assert_eq!(value["high_risk"][1]["risk_reasons"], serde_json::json!(["never used"]));
    assert_eq!(value["summary"][0]["age_buckets"][4], serde_json::json!(["365d+", 1]));
    assert!(report().has_high_risk());
}

/// CSV injection: every cell a spreadsheet would run as a formula starts
/// with `'`, in every table; the others are written as they are.
#[test]
fn csv_cells_never_start_a_formula() {
    let hostile = "=HYPERLINK(\"http://x.example\",\"open\")";
    let users = ["+cmd", "-2+3", "@SUM(1)", "\tx", "\rx", "alice"];
    let data = AccountData {
        account_id: "111122223333".into(),
        account_name: hostile.into(),
        users: users.map(|n| User::new(n, "/")).to_vec(),
        keys: users
            .iter()
            .map(|u| key(u, 1, "AKIAOLD0000000000001", KeyStatus::Active, 400, Some(1)))
            .collect(),
        ..AccountData::default()
    };
    let snapshot = Snapshot::default().with_outcomes([Outcome {
        previous_id: None,
        result: Ok(data),
        finished: now(),
        duration: Duration::from_secs(1),
    }]);
    let csv = build(snapshot, &Policy::default(), KeyIdLabel::Last4).render(
        ReportFormat::Csv,
        ReportTable::All,
        &Default::default(),
    );
    let mut cells: Vec<String> = Vec::new();
    for table in csv.split("\n\n") {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(table.as_bytes());
        for record in reader.records() {
            cells.extend(record.unwrap().iter().map(String::from));
        }
    }
    for cell in &cells {
        assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "{cell:?}");
    }
    let quoted = format!("'{hostile}");
    assert_eq!(
        cells.iter().filter(|c| **c == quoted).count(),
        13,
        "6 keys in details and in high risk, and the summary"
    );
    for user in &users[..5] {
        let quoted = format!("'{user}");
        assert_eq!(
            cells.iter().filter(|c| **c == quoted).count(),
            2,
            "details and high risk: {user:?}"
        );
    }
    assert!(cells.iter().any(|c| c == "alice"), "a plain cell stays as it is");
    assert!(cells.iter().any(|c| c == "2025-10-24T00:00:00Z"));
}

//! Every rendered output, pinned byte for byte: /metrics in both exposition
//! formats (with and without data), and the report in every format. Issue 13
//! moves code between modules without changing behaviour; these files are
//! how that is proven, so they change only in a commit of their own that says
//! why. `GOLDEN_UPDATE=1 cargo test --test golden` rewrites them.
//!
//! Uses only the public API, as benches/render.rs does, so it survives any
//! reshuffle of the modules behind it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_iam_key_exporter::domain::assess::assess;
use aws_iam_key_exporter::domain::disclosure::{KeyIdLabel, LabelSettings};
use aws_iam_key_exporter::domain::failure::{ErrorReason, SourceError};
use aws_iam_key_exporter::domain::key::{AccessKey, AccountData, KeyStatus, Privilege, User};
use aws_iam_key_exporter::domain::policy::Policy;
use aws_iam_key_exporter::domain::snapshot::{Outcome, Snapshot, SnapshotStore};
use aws_iam_key_exporter::output::metrics::{BuildInfo, Format};
use aws_iam_key_exporter::output::report::{html, Report, ReportFormat, ReportTable};
use aws_iam_key_exporter::Telemetry;
use chrono::{DateTime, TimeZone, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap()
}

const BUILD: BuildInfo = BuildInfo {
    version: "1.2.3",
    revision: "abc",
    rustc_version: "1.95.0",
};

/// A key created `age` days before [`now`], used `used` days before it.
fn key(user: &str, position: u8, id: &str, status: KeyStatus, age: i64, used: Option<i64>) -> AccessKey {
    AccessKey::new(user, now() - chrono::Duration::days(age))
        .position(position)
        .id(id)
        .status(status)
        .last_used(used.map(|d| now() - chrono::Duration::days(d)))
        .last_used_in(used.map(|_| "s3".into()), used.map(|_| "eu-west-1".into()))
}

/// One account: admin alice's key not rotated and her never-used second key,
/// bob's (a name that needs escaping) old inactive key, the fresh active key
/// of carol, whom AWS quarantined; a root key; a second account that was
/// never read.
fn snapshot() -> Snapshot {
    let mut data = AccountData {
        account_id: "111122223333".into(),
        account_name: "prod".into(),
        users: vec![
            User::new("alice", "/").tags([("team".to_string(), "web".to_string())].into()),
            User::new("bob \"b\", jr", "/ci/"),
            User::new("carol", "/"),
        ],
        keys: vec![
            key("alice", 1, "AKIAOLD0000000000001", KeyStatus::Active, 400, Some(1)),
            key("alice", 2, "AKIANEW0000000000002", KeyStatus::Active, 10, None),
            key(
                "bob \"b\", jr",
                1,
                "AKIABOB0000000000003",
                KeyStatus::Inactive,
                100,
                Some(50),
            ),
            key("carol", 1, "AKIACAR0000000000004", KeyStatus::Active, 10, Some(0)),
        ],
        root_access_key_present: true,
        ..AccountData::default()
    };
    let privilege = |admin, quarantined| Privilege { admin, quarantined };
    data.set_privileges(
        &[
            ("alice", privilege(true, false)),
            ("bob \"b\", jr", privilege(false, false)),
            ("carol", privilege(false, true)),
        ]
        .into(),
    );
    Snapshot::default().with_outcomes([
        Outcome {
            previous_id: None,
            result: Ok(data),
            finished: now() - chrono::Duration::seconds(60),
            duration: Duration::from_millis(1500),
        },
        down(),
    ])
}

fn down() -> Outcome {
    Outcome {
        previous_id: Some("444455556666".into()),
        result: Err(SourceError::new(ErrorReason::AccessDenied, "denied")),
        finished: now(),
        duration: Duration::from_secs(1),
    }
}

fn labels() -> LabelSettings {
    LabelSettings {
        user_tags: vec!["team".into()],
        access_key_id: KeyIdLabel::Last4,
    }
}

fn metrics(snapshot: Snapshot) -> Telemetry {
    let store = Arc::new(SnapshotStore::default());
    store.publish(snapshot);
    let telemetry = Telemetry::with_clock(store, Policy::default(), labels(), BUILD, now);
    telemetry.refresh.count("444455556666", ErrorReason::AccessDenied);
    telemetry.aws_calls.record("iam", "ListUsers", None);
    telemetry.aws_calls.record("iam", "ListUsers", Some("Throttling"));
    telemetry
}

fn report() -> Report {
    Report::build(
        &assess(Arc::new(snapshot()), &Policy::default(), now()),
        KeyIdLabel::Last4,
    )
}

fn context() -> html::Context {
    html::Context {
        key_ids: KeyIdLabel::Last4,
        user_tags: vec!["team".into()],
        source: "IAM API".into(),
        scope: "2 accounts listed in the configuration".into(),
    }
}

fn check(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("GOLDEN_UPDATE").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        expected == actual,
        "{name} differs from tests/golden/{name} (GOLDEN_UPDATE=1 rewrites it, in a commit that says why)\n--- actual\n{actual}"
    );
}

#[test]
fn metrics_text() {
    check("metrics.prom", &metrics(snapshot()).metrics.render(Format::Text));
}

#[test]
fn metrics_openmetrics() {
    check("metrics.om", &metrics(snapshot()).metrics.render(Format::OpenMetrics));
}

#[test]
fn metrics_of_an_account_never_read() {
    let store = Arc::new(SnapshotStore::default());
    store.publish(Snapshot::default().with_outcomes([down()]));
    let m = Telemetry::with_clock(store, Policy::default(), LabelSettings::default(), BUILD, now).metrics;
    check("down.prom", &m.render(Format::Text));
    check("down.om", &m.render(Format::OpenMetrics));
}

#[test]
fn report_every_format_and_table() {
    let report = report();
    let context = context();
    for (format, extension) in [
        (ReportFormat::Table, "txt"),
        (ReportFormat::Csv, "csv"),
        (ReportFormat::Json, "json"),
    ] {
        for (table, name) in [
            (ReportTable::All, "all"),
            (ReportTable::Details, "details"),
            (ReportTable::HighRisk, "high-risk"),
            (ReportTable::Summary, "summary"),
        ] {
            check(
                &format!("report-{name}.{extension}"),
                &report.render(format, table, &context),
            );
        }
    }
    check(
        "report.html",
        &report.render(ReportFormat::Html, ReportTable::All, &context),
    );
}

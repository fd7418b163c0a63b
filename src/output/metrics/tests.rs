//! The metrics' tests: whole expositions compared byte for byte.

use super::*;
use crate::collect::sources::fixtures::{key, now};
use crate::domain::assess::Assessor;
use crate::domain::disclosure::{KeyIdLabel, LabelSettings};
use crate::domain::key::User;
use crate::domain::key::{AccountData, KeyStatus};
use crate::domain::policy::Policy;
use crate::domain::snapshot::Outcome;
use crate::domain::snapshot::SnapshotStore;
use chrono::{DateTime, Utc};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

const BUILD: BuildInfo = BuildInfo {
    version: "1.2.3",
    revision: "abc",
    rustc_version: "1.95.0",
};

fn metrics(labels: LabelSettings) -> crate::Telemetry {
    crate::Telemetry::with_clock(sample_store(), Policy::default(), labels, BUILD, now)
}

/// The sample's metrics, exporting `series`, with ages against `clock`.
fn sample_metrics(
    store: Arc<SnapshotStore>,
    series: crate::output::key_series::KeySeriesSet,
    clock: fn() -> DateTime<Utc>,
) -> Arc<Metrics> {
    crate::Telemetry::assemble(
        store,
        Policy::default(),
        LabelSettings::default(),
        series,
        BUILD,
        clock,
        false,
    )
    .metrics
}

/// Three keys of one account, one never used.
/// `/metrics` as text from `store` alone: the default policy, labels and
/// key series, no component counters, at [`now`].
fn bare_text(store: Arc<SnapshotStore>) -> String {
    Metrics::new(
        Registry::default(),
        Assessor::with_clock(store, Policy::default(), now),
        LabelSettings::default(),
        KeySeriesSet::all(),
        BUILD,
    )
    .render(Format::Text)
}

fn sample_store() -> Arc<SnapshotStore> {
    let store = Arc::new(SnapshotStore::default());
    let mut data = AccountData {
        account_id: "111122223333".into(),
        account_name: "prod".into(),
        users: vec![
            User::new("alice", "/").tags([("team".to_string(), "web".to_string())].into()),
            User::new("bob \"b\"", "/ci/"),
        ],
        keys: vec![
            key("alice", 1, "AKIAOLD0000000000001", KeyStatus::Active, 400, Some(1)),
            key("alice", 2, "AKIANEW0000000000002", KeyStatus::Active, 10, None),
            key(
                "bob \"b\"",
                1,
                "AKIABOB0000000000003",
                KeyStatus::Inactive,
                100,
                Some(50),
            ),
        ],
        root_access_key_present: false,
        ..AccountData::default()
    };
    // alice is admin (her keys are high risk either way), bob quarantined
    // (his only key is inactive): the facts show, the verdicts stay.
    let privilege = |admin, quarantined| crate::domain::key::Privilege { admin, quarantined };
    data.set_privileges(&[("alice", privilege(true, false)), ("bob \"b\"", privilege(false, true))].into());
    store.publish(crate::domain::snapshot::Snapshot::default().with_outcomes([Outcome {
        previous_id: None,
        result: Ok(data),
        finished: now() - chrono::Duration::seconds(60),
        duration: Duration::from_millis(1500),
    }]));
    store
}

#[test]
fn renders_every_metric_in_text_format() {
    let m = metrics(LabelSettings {
        user_tags: vec!["team".into()],
        access_key_id: KeyIdLabel::Last4,
    });
    m.refresh
        .count("111122223333", crate::domain::failure::ErrorReason::Throttled);
    m.aws_calls.record("iam", "ListUsers", None);
    m.aws_calls.record("iam", "ListUsers", Some("Throttling"));
    let expected = r#"# HELP aws_iam_exporter_refresh_errors_total Failed refreshes of an account, by reason.
# TYPE aws_iam_exporter_refresh_errors_total counter
aws_iam_exporter_refresh_errors_total{account_id="111122223333",reason="throttled"} 1
# HELP aws_iam_exporter_aws_requests_total AWS API calls made, retries included.
# TYPE aws_iam_exporter_aws_requests_total counter
aws_iam_exporter_aws_requests_total{service="iam",operation="ListUsers"} 2
# HELP aws_iam_exporter_aws_request_errors_total AWS API calls that failed, by AWS error code.
# TYPE aws_iam_exporter_aws_request_errors_total counter
aws_iam_exporter_aws_request_errors_total{service="iam",operation="ListUsers",code="Throttling"} 1
# HELP aws_iam_access_key_created_timestamp_seconds Creation time of the access key, which is its last rotation.
# TYPE aws_iam_access_key_created_timestamp_seconds gauge
aws_iam_access_key_created_timestamp_seconds{account_id="111122223333",user="alice",key="1",access_key_id="0001",status="Active"} 1761264000
aws_iam_access_key_created_timestamp_seconds{account_id="111122223333",user="alice",key="2",access_key_id="0002",status="Active"} 1794960000
aws_iam_access_key_created_timestamp_seconds{account_id="111122223333",user="bob \"b\"",key="1",access_key_id="0003",status="Inactive"} 1787184000
# HELP aws_iam_access_key_last_used_timestamp_seconds Time the access key was last used; absent for a key never used.
# TYPE aws_iam_access_key_last_used_timestamp_seconds gauge
aws_iam_access_key_last_used_timestamp_seconds{account_id="111122223333",user="alice",key="1",access_key_id="0001",status="Active"} 1795737600
aws_iam_access_key_last_used_timestamp_seconds{account_id="111122223333",user="bob \"b\"",key="1",access_key_id="0003",status="Inactive"} 1791504000
# HELP aws_iam_access_key_age_seconds Time since the access key was created (rotated).
# TYPE aws_iam_access_key_age_seconds gauge
aws_iam_access_key_age_seconds{account_id="111122223333",user="alice",key="1",access_key_id="0001",status="Active"} 34560000
aws_iam_access_key_age_seconds{account_id="111122223333",user="alice",key="2",access_key_id="0002",status="Active"} 864000
aws_iam_access_key_age_seconds{account_id="111122223333",user="bob \"b\"",key="1",access_key_id="0003",status="Inactive"} 8640000
# HELP aws_iam_access_key_unused_seconds Time since the access key was last used, or since its creation if never used.
# TYPE aws_iam_access_key_unused_seconds gauge
aws_iam_access_key_unused_seconds{account_id="111122223333",user="alice",key="1",access_key_id="0001",status="Active"} 86400
aws_iam_access_key_unused_seconds{account_id="111122223333",user="alice",key="2",access_key_id="0002",status="Active"} 864000
aws_iam_access_key_unused_seconds{account_id="111122223333",user="bob \"b\"",key="1",access_key_id="0003",status="Inactive"} 4320000
# HELP aws_iam_access_key_never_used 1 if the access key has never been used.
# TYPE aws_iam_access_key_never_used gauge
aws_iam_access_key_never_used{account_id="111122223333",user="alice",key="1",access_key_id="0001",status="Active"} 0
aws_iam_access_key_never_used{account_id="111122223333",user="alice",key="2",access_key_id="0002",status="Active"} 1
aws_iam_access_key_never_used{account_id="111122223333",user="bob \"b\"",key="1",access_key_id="0003",status="Inactive"} 0
# HELP aws_iam_access_key_high_risk 1 if the access key is high risk by the configured policy.
# TYPE aws_iam_access_key_high_risk gauge
aws_iam_access_key_high_risk{account_id="111122223333",user="alice",key="1",access_key_id="0001",status="Active"} 1
aws_iam_access_key_high_risk{account_id="111122223333",user="alice",key="2",access_key_id="0002",status="Active"} 1
aws_iam_access_key_high_risk{account_id="111122223333",user="bob \"b\"",key="1",access_key_id="0003",status="Inactive"} 0
# HELP aws_iam_access_key_info Always 1; carries the service and region of the key's last use.
# TYPE aws_iam_access_key_info gauge
aws_iam_access_key_info{account_id="111122223333",user="alice",key="1",access_key_id="0001",status="Active",last_used_service="s3",last_used_region="eu-west-1"} 1
aws_iam_access_key_info{account_id="111122223333",user="alice",key="2",access_key_id="0002",status="Active",last_used_service="",last_used_region=""} 1
aws_iam_access_key_info{account_id="111122223333",user="bob \"b\"",key="1",access_key_id="0003",status="Inactive",last_used_service="s3",last_used_region="eu-west-1"} 1
# HELP aws_iam_user_info Always 1 for every IAM user considered; carries its path and exported tags.
# TYPE aws_iam_user_info gauge
aws_iam_user_info{account_id="111122223333",user="alice",path="/",tag_team="web"} 1
aws_iam_user_info{account_id="111122223333",user="bob \"b\"",path="/ci/",tag_team=""} 1
# HELP aws_iam_user_admin 1 if the IAM user is admin-equivalent by its policies (see docs/metrics.md for the rule).
# TYPE aws_iam_user_admin gauge
aws_iam_user_admin{account_id="111122223333",user="alice"} 1
aws_iam_user_admin{account_id="111122223333",user="bob \"b\""} 0
# HELP aws_iam_user_quarantined 1 if AWS attached a compromised-key quarantine policy to the IAM user: one of its keys was found exposed.
# TYPE aws_iam_user_quarantined gauge
aws_iam_user_quarantined{account_id="111122223333",user="alice"} 0
aws_iam_user_quarantined{account_id="111122223333",user="bob \"b\""} 1
# HELP aws_iam_account_info Always 1; carries the account's name from Organizations, the config or its alias.
# TYPE aws_iam_account_info gauge
aws_iam_account_info{account_id="111122223333",account_name="prod"} 1
# HELP aws_iam_access_keys Access keys by status and age bucket; every bucket is present.
# TYPE aws_iam_access_keys gauge
aws_iam_access_keys{account_id="111122223333",status="Active",age_bucket="0-30d"} 1
aws_iam_access_keys{account_id="111122223333",status="Active",age_bucket="30-90d"} 0
aws_iam_access_keys{account_id="111122223333",status="Active",age_bucket="90-180d"} 0
aws_iam_access_keys{account_id="111122223333",status="Active",age_bucket="180-365d"} 0
aws_iam_access_keys{account_id="111122223333",status="Active",age_bucket="365d+"} 1
aws_iam_access_keys{account_id="111122223333",status="Inactive",age_bucket="0-30d"} 0
aws_iam_access_keys{account_id="111122223333",status="Inactive",age_bucket="30-90d"} 0
aws_iam_access_keys{account_id="111122223333",status="Inactive",age_bucket="90-180d"} 1
aws_iam_access_keys{account_id="111122223333",status="Inactive",age_bucket="180-365d"} 0
aws_iam_access_keys{account_id="111122223333",status="Inactive",age_bucket="365d+"} 0
# HELP aws_iam_access_keys_high_risk Number of high-risk access keys.
# TYPE aws_iam_access_keys_high_risk gauge
aws_iam_access_keys_high_risk{account_id="111122223333"} 2
# HELP aws_iam_users Number of IAM users considered.
# TYPE aws_iam_users gauge
aws_iam_users{account_id="111122223333"} 2
# HELP aws_iam_users_multiple_active_keys Number of IAM users with two active access keys.
# TYPE aws_iam_users_multiple_active_keys gauge
aws_iam_users_multiple_active_keys{account_id="111122223333"} 1
# HELP aws_iam_root_access_key_present 1 if the account's root user has an access key.
# TYPE aws_iam_root_access_key_present gauge
aws_iam_root_access_key_present{account_id="111122223333"} 0
# HELP aws_iam_exporter_account_up 1 if the latest refresh of the account succeeded.
# TYPE aws_iam_exporter_account_up gauge
aws_iam_exporter_account_up{account_id="111122223333"} 1
# HELP aws_iam_exporter_account_last_success_timestamp_seconds End of the account's latest successful refresh.
# TYPE aws_iam_exporter_account_last_success_timestamp_seconds gauge
aws_iam_exporter_account_last_success_timestamp_seconds{account_id="111122223333"} 1795823940
# HELP aws_iam_exporter_account_refresh_duration_seconds Duration of the account's latest refresh.
# TYPE aws_iam_exporter_account_refresh_duration_seconds gauge
aws_iam_exporter_account_refresh_duration_seconds{account_id="111122223333"} 1.5
# HELP aws_iam_exporter_credential_report_generated_timestamp_seconds When the credential report in use was generated.
# TYPE aws_iam_exporter_credential_report_generated_timestamp_seconds gauge
# HELP aws_iam_exporter_credential_report_skipped_rows Rows of the credential report in use that could not be read and were skipped.
# TYPE aws_iam_exporter_credential_report_skipped_rows gauge
# HELP aws_iam_exporter_build_info Always 1; carries the exporter's version, revision and compiler.
# TYPE aws_iam_exporter_build_info gauge
aws_iam_exporter_build_info{version="1.2.3",revision="abc",rustc_version="1.95.0"} 1
"#;
    assert_eq!(m.metrics.render(Format::Text), expected);
}

/// A credential report with an active and an inactive root key, a user
/// on two rows and a user with two active keys, one of them newer in
/// column 1: root's keys are per-key series, counted in the buckets, the
/// active one high risk at any age; users are counted once, root never.
#[test]
fn renders_root_keys_and_merged_users_of_a_credential_report() {
    let header = crate::collect::sources::report_csv::TEST_HEADER;
    let report = format!(
        "{header}\n\
<root_account>,arn:aws:iam::111122223333:root,2011-01-01T00:00:00+00:00,not_supported,N/A,not_supported,not_supported,false,TRUE,2026-11-18T00:00:00+00:00,2026-11-27T00:00:00+00:00,us-east-1,ec2,FALSE,2011-05-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A\n\
dup,arn:aws:iam::111122223333:user/dup,2020-01-01T00:00:00+00:00,true,2026-11-27T00:00:00+00:00,N/A,N/A,false,true,2026-11-08T00:00:00+00:00,2026-11-27T00:00:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
dup,arn:aws:iam::111122223333:user/dup,2020-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
two,arn:aws:iam::111122223333:user/ci/two,2020-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-11-18T00:00:00+00:00,2026-11-27T00:00:00+00:00,eu-west-1,sts,true,2026-06-01T00:00:00+00:00,2026-11-20T00:00:00+00:00,eu-west-1,s3,false,N/A,false,N/A\n"
    );
    let data = crate::collect::sources::report_csv::parse(&report).unwrap();
    let store = Arc::new(SnapshotStore::default());
    store.publish(crate::domain::snapshot::Snapshot::default().with_outcomes([Outcome {
        previous_id: None,
        result: Ok(data),
        finished: now(),
        duration: Duration::from_secs(1),
    }]));
    let text = bare_text(store);
    let expected = include_str!("../../../tests/data/credential-report-root-and-repeated-user.prom");
    assert_eq!(text, expected);
}

#[test]
fn renders_openmetrics_with_units_and_eof() {
    let m = metrics(LabelSettings::default());
    let text = m.metrics.render(Format::OpenMetrics);
    assert!(text.ends_with("# EOF\n"));
    assert!(
        text.contains("# TYPE aws_iam_access_key_age_seconds gauge\n# UNIT aws_iam_access_key_age_seconds seconds\n")
    );
    assert!(text.contains(
        "aws_iam_access_key_age_seconds{account_id=\"111122223333\",user=\"alice\",key=\"1\",access_key_id=\"AKIAOLD0000000000001\",status=\"Active\"} 34560000\n"
    ));
    assert!(text.contains("aws_iam_user_info{account_id=\"111122223333\",user=\"alice\",path=\"/\"} 1\n"));
}

#[test]
fn an_account_without_data_only_has_health_series() {
    let store = Arc::new(SnapshotStore::default());
    store.publish(crate::domain::snapshot::Snapshot::default().with_outcomes([Outcome {
        previous_id: Some("111122223333".into()),
        result: Err(crate::domain::failure::SourceError::new(
            crate::domain::failure::ErrorReason::AccessDenied,
            "denied",
        )),
        finished: now(),
        duration: Duration::from_secs(1),
    }]));
    let text = bare_text(store);
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        samples,
        [
            "aws_iam_exporter_account_up{account_id=\"111122223333\"} 0",
            "aws_iam_exporter_account_refresh_duration_seconds{account_id=\"111122223333\"} 1",
            "aws_iam_exporter_build_info{version=\"1.2.3\",revision=\"abc\",rustc_version=\"1.95.0\"} 1",
        ]
    );
}

mod properties {
    use super::*;
    use crate::domain::key::AccessKey;
    use crate::domain::key::{AccountData, KeyStatus};
    use crate::domain::policy::Policy;
    use crate::domain::snapshot::Outcome;
    use crate::domain::snapshot::Snapshot;
    use crate::domain::snapshot::SnapshotStore;
    use proptest::prelude::*;
    use std::sync::Arc;

    proptest! {
        /// The `aws_iam_access_keys` series of an account add up to its
        /// number of keys, and every bucket is present for both statuses.
        #[test]
        fn bucket_counts_add_up_to_the_keys(keys in proptest::collection::vec((0i64..4_000, any::<bool>()), 0..200)) {
            let now = DateTime::from_timestamp(2_000_000_000, 0).unwrap();
            let data = AccountData {
                account_id: "111122223333".into(),
                keys: keys
                    .iter()
                    .enumerate()
                    .map(|(i, (age_days, active))| {
                        AccessKey::new(format!("u{i}"), now - chrono::Duration::days(*age_days))
                            .status(if *active { KeyStatus::Active } else { KeyStatus::Inactive })
                    })
                    .collect(),
                ..AccountData::default()
            };
            let store = Arc::new(SnapshotStore::default());
            store.publish(Snapshot::default().with_outcomes([Outcome {
                previous_id: None,
                result: Ok(data),
                finished: now,
                duration: std::time::Duration::ZERO,
            }]));
            fn fixed() -> DateTime<Utc> {
                DateTime::from_timestamp(2_000_000_000, 0).unwrap()
            }
            let build = BuildInfo { version: "v", revision: "r", rustc_version: "c" };
            let text = Metrics::new(Registry::default(), Assessor::with_clock(store, Policy::default(), fixed), LabelSettings::default(), KeySeriesSet::all(), build).render(Format::Text);
            let counts: Vec<f64> = text
                .lines()
                .filter(|l| l.starts_with("aws_iam_access_keys{"))
                .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
                .collect();
            prop_assert_eq!(counts.len(), 2 * 5);
            prop_assert_eq!(counts.iter().sum::<f64>(), keys.len() as f64);
        }
    }
}

/// A chosen set drops the other per-key families whole (HELP, TYPE and
/// samples) and changes nothing else, in either format.
#[test]
fn a_key_series_set_leaves_out_exactly_the_other_families() {
    use crate::output::key_series::{KeySeries, KeySeriesSet};
    let render = |series: KeySeriesSet, format: Format| sample_metrics(sample_store(), series, now).render(format);
    let dropped = [
        "aws_iam_access_key_age_seconds",
        "aws_iam_access_key_unused_seconds",
        "aws_iam_access_key_never_used",
        "aws_iam_access_key_info",
    ];
    for format in [Format::Text, Format::OpenMetrics] {
        let all = render(KeySeriesSet::all(), format);
        let lean = render(KeySeriesSet::lean(), format);
        let family = |line: &str| {
            let name = line
                .trim_start_matches("# HELP ")
                .trim_start_matches("# TYPE ")
                .trim_start_matches("# UNIT ");
            name.split([' ', '{']).next().unwrap().to_string()
        };
        let expected: Vec<&str> = all
            .lines()
            .filter(|l| {
                !dropped
                    .iter()
                    .any(|d| family(l) == *d || family(l) == d.trim_end_matches("_seconds"))
            })
            .collect();
        assert_eq!(lean.lines().collect::<Vec<_>>(), expected, "{format:?}");
        assert!(lean.contains("aws_iam_access_key_high_risk{"));
        assert!(lean.contains("aws_iam_access_key_last_used_timestamp_seconds{"));
        let none = render(KeySeriesSet::of(&[]), format);
        assert!(!none.contains("aws_iam_access_key_"), "{none}");
        assert!(none.contains("aws_iam_access_keys{"));
        let info_only = render(KeySeriesSet::of(&[KeySeries::Info]), format);
        assert!(info_only.contains("aws_iam_access_key_info{") && !info_only.contains("aws_iam_access_key_age"));
    }
}

/// A gzip body is one gzip member (a reader of the first member only reads
/// it all) that decompresses to the plain text, byte for byte, in both
/// formats and for any set; the ages are compressed in several parts once
/// they are large enough to be split, and joined.
#[test]
fn a_gzip_body_is_one_member_that_decompresses_to_the_text() {
    use crate::output::key_series::KeySeriesSet;
    use std::io::Read as _;
    for series in [KeySeriesSet::all(), KeySeriesSet::lean()] {
        let m = sample_metrics(sample_store(), series, now);
        for format in [Format::Text, Format::OpenMetrics] {
            let body = m.body(format, true);
            let gz = gzip_bytes(&body);
            let mut plain = String::new();
            // A single-member reader: it would stop after a first member.
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_string(&mut plain)
                .unwrap();
            assert_eq!(plain, m.render(format), "{series:?} {format:?}");
        }
    }
    let text = "aws_iam_access_key_age_seconds{user=\"u\"} 1\n".repeat(200_000);
    // Written a line at a time, deflated a slice at a time as it comes.
    let mut writer = gzip::DeflateWriter::new();
    for line in text.split_inclusive('\n') {
        std::fmt::Write::write_str(&mut writer, line).unwrap();
    }
    let part = writer.finish();
    let mut gz = gzip::HEADER.to_vec();
    gz.extend_from_slice(&part.data);
    gz.extend_from_slice(&gzip::trailer([&part]));
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut plain)
        .unwrap();
    assert_eq!(plain, text);
    let mut empty = String::new();
    flate2::read::GzDecoder::new(&compress(b"")[..])
        .read_to_string(&mut empty)
        .unwrap();
    assert_eq!(empty, "");
}

/// The parts that do not vary are rendered once per snapshot and reused
/// (the same bytes, not a copy) until a refresh publishes another snapshot
/// or the clock reaches a threshold of the policy, where a key's verdict or
/// bucket changes and they are rendered again.
#[test]
fn the_parts_that_do_not_vary_are_kept_until_the_snapshot_or_a_verdict_changes() {
    use crate::output::key_series::KeySeriesSet;
    use std::sync::atomic::{AtomicI64, Ordering};
    static CLOCK: AtomicI64 = AtomicI64::new(0);
    fn clock() -> DateTime<Utc> {
        now() + chrono::Duration::milliseconds(CLOCK.load(Ordering::Relaxed))
    }
    let store = sample_store();
    let m = sample_metrics(store.clone(), KeySeriesSet::lean(), clock);
    let rest = |m: &Metrics| match m.body(Format::Text, false).parts.last() {
        Some(Piece::Bytes(tail)) => tail.clone(),
        other => panic!("the tail is bytes: {other:?}"),
    };
    let first = rest(&m);
    CLOCK.store(60_000, Ordering::Relaxed);
    assert_eq!(
        rest(&m).as_ptr(),
        first.as_ptr(),
        "same snapshot, no verdict changed: kept"
    );

    // alice's key 2, ten days old, enters the 30-90d bucket in 20 days.
    let until = m.snapshot.assessor.stable_until(&store.load(), clock()).unwrap();
    assert_eq!(until, now() + chrono::Duration::days(20));
    let before = m.render(Format::Text);
    CLOCK.store((until - now()).num_milliseconds() - 1, Ordering::Relaxed);
    assert_eq!(rest(&m).as_ptr(), first.as_ptr(), "just before the threshold: kept");
    CLOCK.store((until - now()).num_milliseconds(), Ordering::Relaxed);
    let again = rest(&m);
    assert_ne!(
        again.as_ptr(),
        first.as_ptr(),
        "the threshold was reached: rendered again"
    );
    let after = m.render(Format::Text);
    assert_ne!(after, before);
    assert!(
        after.contains("aws_iam_access_keys{account_id=\"111122223333\",status=\"Active\",age_bucket=\"30-90d\"} 1"),
        "{after}"
    );

    store.publish((*store.load()).clone());
    assert_ne!(rest(&m).as_ptr(), again.as_ptr(), "a new snapshot: rendered again");
}

/// The bytes of a gzip body, which holds no lines to write.
fn gzip_bytes(body: &Body) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in &body.parts {
        match piece {
            Piece::Bytes(bytes) => out.extend_from_slice(bytes),
            Piece::Lines(_) => panic!("a gzip body is all bytes"),
        }
    }
    out
}

/// `keys` keys of one account, two per user, a fifth never used.
fn large_store(keys: usize) -> Arc<SnapshotStore> {
    let store = Arc::new(SnapshotStore::default());
    let data = AccountData {
        account_id: "111122223333".into(),
        account_name: "prod".into(),
        keys: (0..keys)
            .map(|n| {
                let used = (n % 5 != 0).then_some((n % 40) as i64);
                key(
                    &format!("user-{:06}", n / 2),
                    (n % 2 + 1) as u8,
                    "AKIA0000000000000000",
                    KeyStatus::Active,
                    (n % 800) as i64,
                    used,
                )
            })
            .collect(),
        ..AccountData::default()
    };
    store.publish(crate::domain::snapshot::Snapshot::default().with_outcomes([Outcome {
        previous_id: None,
        result: Ok(data),
        finished: now(),
        duration: Duration::from_millis(1),
    }]));
    store
}

/// Ages large enough to be compressed on several cores come out as one
/// gzip member of the same text; lines split anywhere join to the whole.
#[test]
fn large_ages_are_compressed_in_parts_that_join_to_the_text() {
    use crate::output::key_series::KeySeriesSet;
    use std::io::Read as _;
    let m = sample_metrics(large_store(20_000), KeySeriesSet::all(), now);
    for format in [Format::Text, Format::OpenMetrics] {
        let body = m.body(format, true);
        // Header, head, timestamps, the ages in several parts, rest, trailer.
        let cores = std::thread::available_parallelism().unwrap().get();
        assert!(body.parts.len() > 6 || cores == 1, "{}", body.parts.len());
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&gzip_bytes(&body)[..])
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain, m.render(format), "{format:?}");
    }

    let (snapshot, at) = m.snapshot.assessor.current();
    let table = Arc::new(keys::KeyTable::new(
        &m.snapshot.assessor.assess_at(snapshot, at),
        &LabelSettings::default(),
    ));
    let sections = [keys::Section::Timestamps, keys::Section::Ages, keys::Section::Rest];
    let lines = KeyLines::new(table, at, Format::OpenMetrics, KeySeriesSet::all(), &sections);
    let mut whole = Vec::new();
    lines.cursor().write_all(&mut whole);
    assert_eq!(whole.len(), lines.len());
    for parts in [1, 2, 3, 7, 1000] {
        let mut joined = Vec::new();
        for part in lines.split(parts) {
            let before = joined.len();
            part.cursor().write_all(&mut joined);
            assert_eq!(joined.len() - before, part.len());
        }
        assert_eq!(joined, whole, "{parts} parts");
    }
    // A plain body sent a slice at a time: whole lines, about the size
    // asked, joined to the text, and the announced length is exact.
    let body = m.body(Format::OpenMetrics, false);
    let mut slices = Slices::new(&body, 16 * 1024);
    assert_eq!(slices.left(), body.len());
    let mut sent = Vec::new();
    for slice in slices.by_ref() {
        assert!(slice.len() <= 16 * 1024 + 1024, "{}", slice.len());
        sent.extend_from_slice(&slice);
    }
    assert!(slices.is_empty() && slices.left() == 0);
    assert_eq!(String::from_utf8(sent).unwrap(), m.render(Format::OpenMetrics));
    assert_eq!(body.len(), m.render(Format::OpenMetrics).len());

    // Written a slice at a time, whole lines each.
    let mut cursor = lines.cursor();
    let mut slices = Vec::new();
    loop {
        let mut slice = Vec::new();
        let more = cursor.fill(&mut slice, 4096);
        assert!(slice.is_empty() || slice.ends_with(b"\n"));
        slices.extend_from_slice(&slice);
        if !more {
            break;
        }
    }
    assert_eq!(slices, whole);
}

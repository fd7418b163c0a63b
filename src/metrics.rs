//! Metrics: a registry that holds the exporter's counters and a custom
//! collector that renders every key, user and account metric from the current
//! snapshot at scrape time (so ages are exact between refreshes).

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::assess::{AssessedAccount, Assessment, Assessor};
use crate::labels::Labels;
use crate::snapshot::Snapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text = 0,
    OpenMetrics = 1,
}

impl Format {
    /// OpenMetrics only when the scraper prefers it to the text format (by
    /// q-value, as Prometheus asks); the text format otherwise, even when
    /// neither is acceptable, as Prometheus' own handler does.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let open_metrics = crate::negotiate::media_quality(accept, "application/openmetrics-text");
        if open_metrics > 0.0 && open_metrics > crate::negotiate::media_quality(accept, "text/plain") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Build facts for `aws_iam_exporter_build_info`.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    pub version: &'static str,
    pub revision: &'static str,
    pub rustc_version: &'static str,
}

impl BuildInfo {
    pub const CURRENT: BuildInfo = BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        revision: env!("AWS_IAM_KEY_EXPORTER_REVISION"),
        rustc_version: env!("AWS_IAM_KEY_EXPORTER_RUSTC_VERSION"),
    };
}

/// The registry with everything registered in it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Size of the previous rendering, to allocate the next one at once.
    last_size: AtomicUsize,
}

impl Metrics {
    /// `registry` holds the families that components own and register
    /// themselves (refresh errors, AWS calls); the snapshot's collector comes
    /// after them, so the exposition keeps that order.
    pub fn new(mut registry: Registry, assessor: Assessor, labels: Labels, build: BuildInfo) -> Metrics {
        registry.register_collector(Box::new(SnapshotCollector {
            assessor,
            labels,
            build,
        }));
        Metrics {
            registry,
            last_size: AtomicUsize::new(0),
        }
    }

    pub fn render(&self, format: Format) -> String {
        let mut out = String::with_capacity(self.last_size.load(Ordering::Relaxed) + 4096);
        let result = match format {
            Format::Text => prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry),
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &self.registry),
        };
        // Writing to a String cannot fail, and no encoder here returns errors.
        result.expect("encoding into a String is infallible");
        self.last_size.store(out.len(), Ordering::Relaxed);
        out
    }
}

#[derive(Debug)]
struct SnapshotCollector {
    assessor: Assessor,
    labels: Labels,
    build: BuildInfo,
}

const KEY_POSITIONS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The labels every per-key series carries.
struct KeyLabels<'a> {
    account_id: &'a str,
    user: &'a str,
    key: &'static str,
    access_key_id: &'a str,
    status: &'static str,
}

impl EncodeLabelSet for KeyLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> std::fmt::Result {
        [
            ("account_id", self.account_id),
            ("user", self.user),
            ("key", self.key),
            ("access_key_id", self.access_key_id),
            ("status", self.status),
        ]
        .encode(encoder)
    }
}

struct AccountLabel<'a> {
    account_id: &'a str,
}

impl EncodeLabelSet for AccountLabel<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> std::fmt::Result {
        [("account_id", self.account_id)].encode(encoder)
    }
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        // Ages are exact at scrape time, not at the last refresh.
        let assessed = self.assessor.assess();
        self.encode_keys(&mut encoder, &assessed.accounts)?;
        self.encode_users(&mut encoder, &assessed.accounts)?;
        self.encode_accounts(&mut encoder, &assessed.accounts, &assessed.bucket_labels)?;
        self.encode_health(&mut encoder, &assessed.snapshot)
    }
}

impl SnapshotCollector {
    fn encode_keys(&self, encoder: &mut DescriptorEncoder, accounts: &[AssessedAccount]) -> std::fmt::Result {
        type Value<'v> = &'v dyn Fn(&crate::sources::AccessKey, &Assessment) -> Option<f64>;
        let families: [(&str, &str, Option<Unit>, Value); 6] = [
            (
                "aws_iam_access_key_created_timestamp",
                "Creation time of the access key, which is its last rotation.",
                Some(Unit::Seconds),
                &|k, _| Some(k.created.timestamp() as f64),
            ),
            (
                "aws_iam_access_key_last_used_timestamp",
                "Time the access key was last used; absent for a key never used.",
                Some(Unit::Seconds),
                &|k, _| k.last_used.map(|t| t.timestamp() as f64),
            ),
            (
                "aws_iam_access_key_age",
                "Time since the access key was created (rotated).",
                Some(Unit::Seconds),
                &|_, a| Some(a.age_seconds),
            ),
            (
                "aws_iam_access_key_unused",
                "Time since the access key was last used, or since its creation if never used.",
                Some(Unit::Seconds),
                &|_, a| Some(a.unused_seconds),
            ),
            (
                "aws_iam_access_key_never_used",
                "1 if the access key has never been used.",
                None,
                &|_, a| Some(bool_value(a.never_used)),
            ),
            (
                "aws_iam_access_key_high_risk",
                "1 if the access key is high risk by the configured policy.",
                None,
                &|_, a| Some(bool_value(a.high_risk())),
            ),
        ];
        for (name, help, unit, value) in families {
            let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            for account in accounts {
                for (key, assessment) in account.keys() {
                    if let Some(v) = value(key, assessment) {
                        family
                            .encode_family(&self.key_labels(&account.id, key))?
                            .encode_gauge(&v)?;
                    }
                }
            }
        }
        let mut info = encoder.encode_descriptor(
            "aws_iam_access_key_info",
            "Always 1; carries the service and region of the key's last use.",
            None,
            MetricType::Gauge,
        )?;
        for account in accounts {
            for key in &account.data.keys {
                let last_used = [
                    ("last_used_service", key.last_used_service.as_deref().unwrap_or("")),
                    ("last_used_region", key.last_used_region.as_deref().unwrap_or("")),
                ];
                info.encode_family(&(self.key_labels(&account.id, key), last_used))?
                    .encode_gauge(&1i64)?;
            }
        }
        Ok(())
    }

    fn key_labels<'a>(&self, account_id: &'a str, key: &'a crate::sources::AccessKey) -> KeyLabels<'a> {
        KeyLabels {
            account_id,
            user: &key.user,
            key: KEY_POSITIONS.get(key.position as usize).copied().unwrap_or("9"),
            access_key_id: self.labels.access_key_id.render(key.access_key_id.as_deref()),
            status: key.status.as_str(),
        }
    }

    fn encode_users(&self, encoder: &mut DescriptorEncoder, accounts: &[AssessedAccount]) -> std::fmt::Result {
        let tag_labels: Vec<String> = self.labels.user_tags.iter().map(|k| Labels::tag_label(k)).collect();
        let mut family = encoder.encode_descriptor(
            "aws_iam_user_info",
            "Always 1 for every IAM user considered; carries its path and exported tags.",
            None,
            MetricType::Gauge,
        )?;
        let mut labels: Vec<(&str, &str)> = Vec::with_capacity(3 + tag_labels.len());
        for account in accounts {
            for user in &account.data.users {
                labels.clear();
                labels.extend([
                    ("account_id", account.id.as_str()),
                    ("user", user.name.as_str()),
                    ("path", user.path.as_str()),
                ]);
                for (key, label) in self.labels.user_tags.iter().zip(&tag_labels) {
                    labels.push((label, user.tags.get(key).map_or("", String::as_str)));
                }
                family.encode_family(&labels.as_slice())?.encode_gauge(&1i64)?;
            }
        }
        Ok(())
    }

    fn encode_accounts(
        &self,
        encoder: &mut DescriptorEncoder,
        accounts: &[AssessedAccount],
        buckets: &[String],
    ) -> std::fmt::Result {
        let mut info = encoder.encode_descriptor(
            "aws_iam_account_info",
            "Always 1; carries the account's name from Organizations, the config or its alias.",
            None,
            MetricType::Gauge,
        )?;
        for account in accounts {
            let labels = [
                ("account_id", account.id.as_str()),
                ("account_name", account.data.account_name.as_str()),
            ];
            info.encode_family(&labels)?.encode_gauge(&1i64)?;
        }

        let mut by_bucket = encoder.encode_descriptor(
            "aws_iam_access_keys",
            "Access keys by status and age bucket; every bucket is present.",
            None,
            MetricType::Gauge,
        )?;
        for account in accounts {
            for (status, counts) in &account.summary.buckets_by_status {
                for (bucket, count) in buckets.iter().zip(counts) {
                    let labels = [
                        ("account_id", account.id.as_str()),
                        ("status", status.as_str()),
                        ("age_bucket", bucket.as_str()),
                    ];
                    by_bucket.encode_family(&labels)?.encode_gauge(&(*count as i64))?;
                }
            }
        }

        type Count<'c> = &'c dyn Fn(&AssessedAccount) -> i64;
        let counts: [(&str, &str, Count); 4] = [
            (
                "aws_iam_access_keys_high_risk",
                "Number of high-risk access keys.",
                &|a| a.summary.high_risk_keys as i64,
            ),
            ("aws_iam_users", "Number of IAM users considered.", &|a| {
                a.summary.users as i64
            }),
            (
                "aws_iam_users_multiple_active_keys",
                "Number of IAM users with two active access keys.",
                &|a| a.summary.users_multiple_active_keys as i64,
            ),
            (
                "aws_iam_root_access_key_present",
                "1 if the account's root user has an access key.",
                &|a| a.summary.root_access_key_present as i64,
            ),
        ];
        for (name, help, count) in counts {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for account in accounts {
                family
                    .encode_family(&AccountLabel {
                        account_id: &account.id,
                    })?
                    .encode_gauge(&count(account))?;
            }
        }
        Ok(())
    }

    fn encode_health(&self, encoder: &mut DescriptorEncoder, snapshot: &Snapshot) -> std::fmt::Result {
        type Value<'v> = &'v dyn Fn(&crate::snapshot::AccountState) -> Option<f64>;
        let families: [(&str, &str, Option<Unit>, Value); 5] = [
            (
                "aws_iam_exporter_account_up",
                "1 if the latest refresh of the account succeeded.",
                None,
                &|s| Some(bool_value(s.up)),
            ),
            (
                "aws_iam_exporter_account_last_success_timestamp",
                "End of the account's latest successful refresh.",
                Some(Unit::Seconds),
                &|s| s.last_success.map(unix_seconds),
            ),
            (
                "aws_iam_exporter_account_refresh_duration",
                "Duration of the account's latest refresh.",
                Some(Unit::Seconds),
                &|s| Some(s.last_duration.as_secs_f64()),
            ),
            (
                "aws_iam_exporter_credential_report_generated_timestamp",
                "When the credential report in use was generated.",
                Some(Unit::Seconds),
                &|s| s.data.as_ref()?.credential_report_generated.map(unix_seconds),
            ),
            (
                "aws_iam_exporter_credential_report_skipped_rows",
                "Rows of the credential report in use that could not be read and were skipped.",
                None,
                &|s| s.data.as_ref()?.credential_report_skipped_rows.map(|n| n as f64),
            ),
        ];
        for (name, help, unit, value) in families {
            let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            for (id, state) in &snapshot.accounts {
                if let Some(v) = value(state) {
                    family
                        .encode_family(&AccountLabel { account_id: id })?
                        .encode_gauge(&v)?;
                }
            }
        }
        let mut build = encoder.encode_descriptor(
            "aws_iam_exporter_build_info",
            "Always 1; carries the exporter's version, revision and compiler.",
            None,
            MetricType::Gauge,
        )?;
        let labels = [
            ("version", self.build.version),
            ("revision", self.build.revision),
            ("rustc_version", self.build.rustc_version),
        ];
        build.encode_family(&labels)?.encode_gauge(&1i64)?;
        Ok(())
    }
}

fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn unix_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::KeyIdLabel;
    use crate::policy::Policy;
    use crate::snapshot::Outcome;
    use crate::snapshot::SnapshotStore;
    use crate::sources::{AccessKey, User};
    use crate::sources::{AccountData, KeyStatus};
    use chrono::TimeZone;
    use std::sync::Arc;
    use std::time::Duration;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap()
    }

    const BUILD: BuildInfo = BuildInfo {
        version: "1.2.3",
        revision: "abc",
        rustc_version: "1.95.0",
    };

    fn key(
        user: &str,
        position: u8,
        id: &str,
        status: KeyStatus,
        age_days: i64,
        used_days_ago: Option<i64>,
    ) -> AccessKey {
        AccessKey {
            user: user.into(),
            position,
            access_key_id: Some(id.into()),
            status,
            created: now() - chrono::Duration::days(age_days),
            last_used: used_days_ago.map(|d| now() - chrono::Duration::days(d)),
            last_used_service: used_days_ago.map(|_| "s3".into()),
            last_used_region: used_days_ago.map(|_| "eu-west-1".into()),
        }
    }

    fn metrics(labels: Labels) -> crate::Telemetry {
        let store = Arc::new(SnapshotStore::default());
        let data = AccountData {
            account_id: "111122223333".into(),
            account_name: "prod".into(),
            users: vec![
                User {
                    name: "alice".into(),
                    path: "/".into(),
                    tags: [("team".to_string(), "web".to_string())].into(),
                },
                User {
                    name: "bob \"b\"".into(),
                    path: "/ci/".into(),
                    tags: Default::default(),
                },
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
        store.publish(crate::snapshot::Snapshot::default().with_outcomes(&[Outcome {
            previous_id: None,
            result: Ok(data),
            finished: now() - chrono::Duration::seconds(60),
            duration: Duration::from_millis(1500),
        }]));
        crate::Telemetry::with_clock(store, Policy::default(), labels, BUILD, now)
    }

    #[test]
    fn renders_every_metric_in_text_format() {
        let m = metrics(Labels {
            user_tags: vec!["team".into()],
            access_key_id: KeyIdLabel::Last4,
        });
        m.refresh.count("111122223333", crate::sources::ErrorReason::Throttled);
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
aws_iam_access_key_created_timestamp_seconds{account_id="111122223333",user="alice",key="1",access_key_id="0001",status="Active"} 1761264000.0
aws_iam_access_key_created_timestamp_seconds{account_id="111122223333",user="alice",key="2",access_key_id="0002",status="Active"} 1794960000.0
aws_iam_access_key_created_timestamp_seconds{account_id="111122223333",user="bob \"b\"",key="1",access_key_id="0003",status="Inactive"} 1787184000.0
# HELP aws_iam_access_key_last_used_timestamp_seconds Time the access key was last used; absent for a key never used.
# TYPE aws_iam_access_key_last_used_timestamp_seconds gauge
aws_iam_access_key_last_used_timestamp_seconds{account_id="111122223333",user="alice",key="1",access_key_id="0001",status="Active"} 1795737600.0
aws_iam_access_key_last_used_timestamp_seconds{account_id="111122223333",user="bob \"b\"",key="1",access_key_id="0003",status="Inactive"} 1791504000.0
# HELP aws_iam_access_key_age_seconds Time since the access key was created (rotated).
# TYPE aws_iam_access_key_age_seconds gauge
aws_iam_access_key_age_seconds{account_id="111122223333",user="alice",key="1",access_key_id="0001",status="Active"} 34560000.0
aws_iam_access_key_age_seconds{account_id="111122223333",user="alice",key="2",access_key_id="0002",status="Active"} 864000.0
aws_iam_access_key_age_seconds{account_id="111122223333",user="bob \"b\"",key="1",access_key_id="0003",status="Inactive"} 8640000.0
# HELP aws_iam_access_key_unused_seconds Time since the access key was last used, or since its creation if never used.
# TYPE aws_iam_access_key_unused_seconds gauge
aws_iam_access_key_unused_seconds{account_id="111122223333",user="alice",key="1",access_key_id="0001",status="Active"} 86400.0
aws_iam_access_key_unused_seconds{account_id="111122223333",user="alice",key="2",access_key_id="0002",status="Active"} 864000.0
aws_iam_access_key_unused_seconds{account_id="111122223333",user="bob \"b\"",key="1",access_key_id="0003",status="Inactive"} 4320000.0
# HELP aws_iam_access_key_never_used 1 if the access key has never been used.
# TYPE aws_iam_access_key_never_used gauge
aws_iam_access_key_never_used{account_id="111122223333",user="alice",key="1",access_key_id="0001",status="Active"} 0.0
aws_iam_access_key_never_used{account_id="111122223333",user="alice",key="2",access_key_id="0002",status="Active"} 1.0
aws_iam_access_key_never_used{account_id="111122223333",user="bob \"b\"",key="1",access_key_id="0003",status="Inactive"} 0.0
# HELP aws_iam_access_key_high_risk 1 if the access key is high risk by the configured policy.
# TYPE aws_iam_access_key_high_risk gauge
aws_iam_access_key_high_risk{account_id="111122223333",user="alice",key="1",access_key_id="0001",status="Active"} 1.0
aws_iam_access_key_high_risk{account_id="111122223333",user="alice",key="2",access_key_id="0002",status="Active"} 1.0
aws_iam_access_key_high_risk{account_id="111122223333",user="bob \"b\"",key="1",access_key_id="0003",status="Inactive"} 0.0
# HELP aws_iam_access_key_info Always 1; carries the service and region of the key's last use.
# TYPE aws_iam_access_key_info gauge
aws_iam_access_key_info{account_id="111122223333",user="alice",key="1",access_key_id="0001",status="Active",last_used_service="s3",last_used_region="eu-west-1"} 1
aws_iam_access_key_info{account_id="111122223333",user="alice",key="2",access_key_id="0002",status="Active",last_used_service="",last_used_region=""} 1
aws_iam_access_key_info{account_id="111122223333",user="bob \"b\"",key="1",access_key_id="0003",status="Inactive",last_used_service="s3",last_used_region="eu-west-1"} 1
# HELP aws_iam_user_info Always 1 for every IAM user considered; carries its path and exported tags.
# TYPE aws_iam_user_info gauge
aws_iam_user_info{account_id="111122223333",user="alice",path="/",tag_team="web"} 1
aws_iam_user_info{account_id="111122223333",user="bob \"b\"",path="/ci/",tag_team=""} 1
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
aws_iam_exporter_account_up{account_id="111122223333"} 1.0
# HELP aws_iam_exporter_account_last_success_timestamp_seconds End of the account's latest successful refresh.
# TYPE aws_iam_exporter_account_last_success_timestamp_seconds gauge
aws_iam_exporter_account_last_success_timestamp_seconds{account_id="111122223333"} 1795823940.0
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
        let header = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";
        let report = format!(
            "{header}\n\
<root_account>,arn:aws:iam::111122223333:root,2011-01-01T00:00:00+00:00,not_supported,N/A,not_supported,not_supported,false,TRUE,2026-11-18T00:00:00+00:00,2026-11-27T00:00:00+00:00,us-east-1,ec2,FALSE,2011-05-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A\n\
dup,arn:aws:iam::111122223333:user/dup,2020-01-01T00:00:00+00:00,true,2026-11-27T00:00:00+00:00,N/A,N/A,false,true,2026-11-08T00:00:00+00:00,2026-11-27T00:00:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
dup,arn:aws:iam::111122223333:user/dup,2020-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
two,arn:aws:iam::111122223333:user/ci/two,2020-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-11-18T00:00:00+00:00,2026-11-27T00:00:00+00:00,eu-west-1,sts,true,2026-06-01T00:00:00+00:00,2026-11-20T00:00:00+00:00,eu-west-1,s3,false,N/A,false,N/A\n"
        );
        let data = crate::sources::credential_report::parse(&report).unwrap();
        let store = Arc::new(SnapshotStore::default());
        store.publish(crate::snapshot::Snapshot::default().with_outcomes(&[Outcome {
            previous_id: None,
            result: Ok(data),
            finished: now(),
            duration: Duration::from_secs(1),
        }]));
        let text = Metrics::new(
            Registry::default(),
            Assessor::with_clock(store, Policy::default(), now),
            Labels::default(),
            BUILD,
        )
        .render(Format::Text);
        let expected = include_str!("../tests/data/credential-report-root-and-repeated-user.prom");
        assert_eq!(text, expected);
    }

    #[test]
    fn renders_openmetrics_with_units_and_eof() {
        let m = metrics(Labels::default());
        let text = m.metrics.render(Format::OpenMetrics);
        assert!(text.ends_with("# EOF\n"));
        assert!(text
            .contains("# TYPE aws_iam_access_key_age_seconds gauge\n# UNIT aws_iam_access_key_age_seconds seconds\n"));
        assert!(text.contains(
            "aws_iam_access_key_age_seconds{account_id=\"111122223333\",user=\"alice\",key=\"1\",access_key_id=\"AKIAOLD0000000000001\",status=\"Active\"} 34560000.0\n"
        ));
        assert!(text.contains("aws_iam_user_info{account_id=\"111122223333\",user=\"alice\",path=\"/\"} 1\n"));
    }

    #[test]
    fn content_negotiation_follows_accept() {
        assert_eq!(Format::from_accept(None), Format::Text);
        assert_eq!(
            Format::from_accept(Some("text/plain;version=0.0.4;q=0.5,*/*;q=0.1")),
            Format::Text
        );
        let prometheus = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
        assert_eq!(
            Format::from_accept(Some("APPLICATION/OPENMETRICS-TEXT; version=1.0.0")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_accept(Some("text/plain;q=0.9, application/openmetrics-text;q=0.5")),
            Format::Text
        );
    }

    #[test]
    fn an_account_without_data_only_has_health_series() {
        let store = Arc::new(SnapshotStore::default());
        store.publish(crate::snapshot::Snapshot::default().with_outcomes(&[Outcome {
            previous_id: Some("111122223333".into()),
            result: Err(crate::sources::SourceError::new(
                crate::sources::ErrorReason::AccessDenied,
                "denied",
            )),
            finished: now(),
            duration: Duration::from_secs(1),
        }]));
        let text = Metrics::new(
            Registry::default(),
            Assessor::with_clock(store, Policy::default(), now),
            Labels::default(),
            BUILD,
        )
        .render(Format::Text);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "aws_iam_exporter_account_up{account_id=\"111122223333\"} 0.0",
                "aws_iam_exporter_account_refresh_duration_seconds{account_id=\"111122223333\"} 1.0",
                "aws_iam_exporter_build_info{version=\"1.2.3\",revision=\"abc\",rustc_version=\"1.95.0\"} 1",
            ]
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::policy::Policy;
    use crate::snapshot::Outcome;
    use crate::snapshot::SnapshotStore;
    use crate::sources::AccessKey;
    use crate::sources::{AccountData, KeyStatus};
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
                    .map(|(i, (age_days, active))| AccessKey {
                        user: format!("u{i}"),
                        position: 1,
                        access_key_id: None,
                        status: if *active { KeyStatus::Active } else { KeyStatus::Inactive },
                        created: now - chrono::Duration::days(*age_days),
                        last_used: None,
                        last_used_service: None,
                        last_used_region: None,
                    })
                    .collect(),
                ..AccountData::default()
            };
            let store = Arc::new(SnapshotStore::default());
            store.publish(Snapshot::default().with_outcomes(&[Outcome {
                previous_id: None,
                result: Ok(data),
                finished: now,
                duration: std::time::Duration::ZERO,
            }]));
            fn fixed() -> DateTime<Utc> {
                DateTime::from_timestamp(2_000_000_000, 0).unwrap()
            }
            let build = BuildInfo { version: "v", revision: "r", rustc_version: "c" };
            let text = Metrics::new(Registry::default(), Assessor::with_clock(store, Policy::default(), fixed), Labels::default(), build).render(Format::Text);
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

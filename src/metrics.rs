//! Metrics: a registry that holds the exporter's counters and a custom
//! collector that renders every key, user and account metric from the current
//! snapshot at scrape time (so ages are exact between refreshes).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::config::Labels;
use crate::policy::{Assessment, Policy};
use crate::snapshot::{Snapshot, SnapshotStore};
use crate::sources::{AccountData, KeyStatus};

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

#[derive(Debug, Clone, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct AwsCallLabels {
    service: String,
    operation: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct AwsErrorLabels {
    service: String,
    operation: String,
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct RefreshErrorLabels {
    account_id: String,
    reason: String,
}

/// `aws_iam_exporter_aws_requests_total` and `..._aws_request_errors_total`,
/// handed to the AWS clients (see [`crate::aws`]).
#[derive(Debug, Clone, Default)]
pub struct AwsCallCounters {
    requests: Family<AwsCallLabels, Counter>,
    errors: Family<AwsErrorLabels, Counter>,
}

impl AwsCallCounters {
    pub fn record(&self, service: &str, operation: &str, error_code: Option<&str>) {
        let call = AwsCallLabels {
            service: service.to_string(),
            operation: operation.to_string(),
        };
        self.requests.get_or_create(&call).inc();
        if let Some(code) = error_code {
            let labels = AwsErrorLabels {
                service: call.service,
                operation: call.operation,
                code: code.to_string(),
            };
            self.errors.get_or_create(&labels).inc();
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
    pub aws_calls: AwsCallCounters,
    refresh_errors: Family<RefreshErrorLabels, Counter>,
    /// Size of the previous rendering, to allocate the next one at once.
    last_size: AtomicUsize,
}

impl Metrics {
    pub fn new(store: Arc<SnapshotStore>, policy: Policy, labels: Labels, build: BuildInfo) -> Metrics {
        Metrics::with_clock(store, policy, labels, build, Utc::now)
    }

    /// As [`Metrics::new`], with ages computed against `clock` (for tests and benchmarks).
    pub fn with_clock(
        store: Arc<SnapshotStore>,
        policy: Policy,
        labels: Labels,
        build: BuildInfo,
        clock: fn() -> DateTime<Utc>,
    ) -> Metrics {
        let mut registry = Registry::default();
        let aws_calls = AwsCallCounters::default();
        let refresh_errors = Family::<RefreshErrorLabels, Counter>::default();
        registry.register(
            "aws_iam_exporter_refresh_errors",
            "Failed refreshes of an account, by reason",
            refresh_errors.clone(),
        );
        registry.register(
            "aws_iam_exporter_aws_requests",
            "AWS API calls made, retries included",
            aws_calls.requests.clone(),
        );
        registry.register(
            "aws_iam_exporter_aws_request_errors",
            "AWS API calls that failed, by AWS error code",
            aws_calls.errors.clone(),
        );
        registry.register_collector(Box::new(SnapshotCollector {
            store,
            policy,
            labels,
            build,
            clock,
        }));
        Metrics {
            registry,
            aws_calls,
            refresh_errors,
            last_size: AtomicUsize::new(0),
        }
    }

    pub fn count_refresh_error(&self, account_id: &str, reason: &str) {
        self.refresh_errors
            .get_or_create(&RefreshErrorLabels {
                account_id: account_id.to_string(),
                reason: reason.to_string(),
            })
            .inc();
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
    store: Arc<SnapshotStore>,
    policy: Policy,
    labels: Labels,
    build: BuildInfo,
    clock: fn() -> DateTime<Utc>,
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

/// One account's data with every key assessed at the same instant.
struct Assessed<'a> {
    id: &'a str,
    data: &'a AccountData,
    assessments: Vec<Assessment>,
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let snapshot = self.store.load();
        let now = (self.clock)();
        let assessed: Vec<Assessed> = snapshot
            .accounts
            .iter()
            .filter_map(|(id, state)| state.data.as_deref().map(|data| (id, data)))
            .map(|(id, data)| Assessed {
                id,
                data,
                assessments: data.keys.iter().map(|k| self.policy.assess(k, now)).collect(),
            })
            .collect();
        self.encode_keys(&mut encoder, &assessed)?;
        self.encode_users(&mut encoder, &assessed)?;
        self.encode_accounts(&mut encoder, &assessed)?;
        self.encode_health(&mut encoder, &snapshot)
    }
}

impl SnapshotCollector {
    fn encode_keys(&self, encoder: &mut DescriptorEncoder, accounts: &[Assessed]) -> std::fmt::Result {
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
                for (key, assessment) in account.data.keys.iter().zip(&account.assessments) {
                    if let Some(v) = value(key, assessment) {
                        family
                            .encode_family(&self.key_labels(account.id, key))?
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
                info.encode_family(&(self.key_labels(account.id, key), last_used))?
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

    fn encode_users(&self, encoder: &mut DescriptorEncoder, accounts: &[Assessed]) -> std::fmt::Result {
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
                    ("account_id", account.id),
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

    fn encode_accounts(&self, encoder: &mut DescriptorEncoder, accounts: &[Assessed]) -> std::fmt::Result {
        let mut info = encoder.encode_descriptor(
            "aws_iam_account_info",
            "Always 1; carries the account's name from Organizations, the config or its alias.",
            None,
            MetricType::Gauge,
        )?;
        for account in accounts {
            let labels = [
                ("account_id", account.id),
                ("account_name", account.data.account_name.as_str()),
            ];
            info.encode_family(&labels)?.encode_gauge(&1i64)?;
        }

        let buckets = self.policy.age_buckets.labels();
        let mut by_bucket = encoder.encode_descriptor(
            "aws_iam_access_keys",
            "Access keys by status and age bucket; every bucket is present.",
            None,
            MetricType::Gauge,
        )?;
        for account in accounts {
            for status in [KeyStatus::Active, KeyStatus::Inactive] {
                let mut counts = vec![0i64; buckets.len()];
                for (key, a) in account.data.keys.iter().zip(&account.assessments) {
                    if key.status == status {
                        counts[a.bucket] += 1;
                    }
                }
                for (bucket, count) in buckets.iter().zip(counts) {
                    let labels = [
                        ("account_id", account.id),
                        ("status", status.as_str()),
                        ("age_bucket", bucket.as_str()),
                    ];
                    by_bucket.encode_family(&labels)?.encode_gauge(&count)?;
                }
            }
        }

        type Count<'c> = &'c dyn Fn(&Assessed) -> i64;
        let counts: [(&str, &str, Count); 4] = [
            (
                "aws_iam_access_keys_high_risk",
                "Number of high-risk access keys.",
                &|a| a.assessments.iter().filter(|x| x.high_risk()).count() as i64,
            ),
            ("aws_iam_users", "Number of IAM users considered.", &|a| {
                a.data.users.len() as i64
            }),
            (
                "aws_iam_users_multiple_active_keys",
                "Number of IAM users with two active access keys.",
                &|a| users_with_multiple_active_keys(a.data),
            ),
            (
                "aws_iam_root_access_key_present",
                "1 if the account's root user has an access key.",
                &|a| a.data.root_access_key_present as i64,
            ),
        ];
        for (name, help, count) in counts {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for account in accounts {
                family
                    .encode_family(&AccountLabel { account_id: account.id })?
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

/// IAM users with two active keys; root is not an IAM user.
pub fn users_with_multiple_active_keys(data: &AccountData) -> i64 {
    let mut count = 0;
    let mut run: Option<(&str, u32)> = None;
    // Keys are sorted by user, so a user's keys are adjacent.
    for key in data
        .keys
        .iter()
        .filter(|k| k.status == KeyStatus::Active && !k.is_root())
    {
        run = match run {
            Some((user, n)) if user == key.user => Some((user, n + 1)),
            _ => Some((&key.user, 1)),
        };
        if run.is_some_and(|(_, n)| n == 2) {
            count += 1;
        }
    }
    count
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
    use crate::config::KeyIdLabel;
    use crate::snapshot::Outcome;
    use crate::sources::{AccessKey, User};
    use chrono::TimeZone;
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

    fn metrics(labels: Labels) -> Metrics {
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
        Metrics::with_clock(store, Policy::default(), labels, BUILD, now)
    }

    #[test]
    fn renders_every_metric_in_text_format() {
        let m = metrics(Labels {
            user_tags: vec!["team".into()],
            access_key_id: KeyIdLabel::Last4,
        });
        m.count_refresh_error("111122223333", "throttled");
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
        assert_eq!(m.render(Format::Text), expected);
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
        let text = Metrics::with_clock(store, Policy::default(), Labels::default(), BUILD, now).render(Format::Text);
        let expected = include_str!("../tests/data/credential-report-root-and-repeated-user.prom");
        assert_eq!(text, expected);
    }

    /// Root is not an IAM user, even with two active keys.
    #[test]
    fn root_never_counts_as_a_user_with_two_active_keys() {
        let root = |position| key(crate::sources::ROOT_USER, position, "", KeyStatus::Active, 10, None);
        let data = AccountData {
            keys: vec![root(1), root(2)],
            ..AccountData::default()
        };
        assert_eq!(users_with_multiple_active_keys(&data), 0);
    }

    #[test]
    fn renders_openmetrics_with_units_and_eof() {
        let m = metrics(Labels::default());
        let text = m.render(Format::OpenMetrics);
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
        let text = Metrics::with_clock(store, Policy::default(), Labels::default(), BUILD, now).render(Format::Text);
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
    use crate::snapshot::Outcome;
    use crate::sources::AccessKey;
    use proptest::prelude::*;

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
            let text = Metrics::with_clock(store, Policy::default(), Labels::default(), build, fixed).render(Format::Text);
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

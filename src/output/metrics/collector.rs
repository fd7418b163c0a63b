//! The collector that renders the user, account and exporter families from
//! one snapshot at one instant; the per-key families, nearly all of the
//! exposition, are written from a table (see `keys`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::labels::{AccountInfoLabels, AccountLabel, AccountUserLabels, BucketLabels, BuildLabels, UserLabels};
use super::BuildInfo;
use crate::domain::assess::{AssessedAccount, Assessor};
use crate::domain::disclosure::LabelSettings;
use crate::domain::privilege::Privilege;
use crate::domain::snapshot::Snapshot;
use crate::output::key_series::KeySeriesSet;

/// A per-user fact of the policies: a 1/0 family by user.
struct UserFact {
    metric: &'static str,
    help: &'static str,
    value: fn(Privilege) -> bool,
}

const USER_FACTS: [UserFact; 2] = [
    UserFact {
        metric: "aws_iam_user_admin",
        help: "1 if the IAM user is admin-equivalent by its policies (see docs/metrics.md for the rule).",
        value: |p| p.admin,
    },
    UserFact {
        metric: "aws_iam_user_quarantined",
        help:
            "1 if AWS attached a compromised-key quarantine policy to the IAM user: one of its keys was found exposed.",
        value: |p| p.quarantined,
    },
];

/// What every part of a rendering is rendered with.
#[derive(Debug)]
pub(super) struct RenderContext {
    pub(super) assessor: Assessor,
    pub(super) labels: LabelSettings,
    pub(super) build: BuildInfo,
    pub(super) series: KeySeriesSet,
}

/// The user, account and exporter families of one snapshot at one
/// instant, as a collector to register in a registry of its own for one
/// encoding: they come after the per-key families (see `keys`).
#[derive(Debug)]
pub(super) struct TailCollector {
    pub(super) shared: Arc<RenderContext>,
    pub(super) snapshot: Arc<Snapshot>,
    pub(super) now: DateTime<Utc>,
}

impl Collector for TailCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let this = &self.shared;
        let assessed = this.assessor.assess_at(self.snapshot.clone(), self.now);
        this.encode_users(&mut encoder, &assessed.accounts)?;
        this.encode_accounts(&mut encoder, &assessed.accounts, &assessed.policy.age_buckets)?;
        this.encode_health(&mut encoder, &assessed.snapshot)
    }
}

impl RenderContext {
    fn encode_users(&self, encoder: &mut DescriptorEncoder, accounts: &[AssessedAccount]) -> std::fmt::Result {
        let tag_labels: Vec<String> = self
            .labels
            .user_tags
            .iter()
            .map(|k| LabelSettings::tag_label(k))
            .collect();
        let mut family = encoder.encode_descriptor(
            "aws_iam_user_info",
            "Always 1 for every IAM user considered; carries its path and exported tags.",
            None,
            MetricType::Gauge,
        )?;
        let mut tags: Vec<(&str, &str)> = Vec::with_capacity(tag_labels.len());
        for account in accounts {
            for user in &account.data.users {
                tags.clear();
                for (key, label) in self.labels.user_tags.iter().zip(&tag_labels) {
                    tags.push((label, user.tags.get(key).map_or("", String::as_str)));
                }
                let labels = UserLabels {
                    account_id: &account.id,
                    user: &user.name,
                    path: &user.path,
                    tags: &tags,
                };
                family.encode_family(&labels)?.encode_gauge(&1i64)?;
            }
        }
        for fact in USER_FACTS {
            let mut family = encoder.encode_descriptor(fact.metric, fact.help, None, MetricType::Gauge)?;
            for account in accounts {
                for user in &account.data.users {
                    // No sample for a user whose policies were not read:
                    // 0 would say "not admin", which nobody checked.
                    if let Some(privilege) = user.privilege {
                        let labels = AccountUserLabels {
                            account_id: &account.id,
                            user: &user.name,
                        };
                        family
                            .encode_family(&labels)?
                            .encode_gauge(&((fact.value)(privilege) as i64))?;
                    }
                }
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
            let labels = AccountInfoLabels {
                account_id: &account.id,
                account_name: &account.data.account_name,
            };
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
                    let labels = BucketLabels {
                        account_id: &account.id,
                        status: status.as_str(),
                        age_bucket: bucket,
                    };
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
        type Value<'v> = &'v dyn Fn(&crate::domain::snapshot::AccountState) -> Option<f64>;
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
                    encode_number(family.encode_family(&AccountLabel { account_id: id })?, v)?;
                }
            }
        }
        let mut build = encoder.encode_descriptor(
            "aws_iam_exporter_build_info",
            "Always 1; carries the exporter's version, revision and compiler.",
            None,
            MetricType::Gauge,
        )?;
        let labels = BuildLabels {
            version: self.build.version,
            revision: self.build.revision,
            rustc_version: self.build.rustc_version,
        };
        build.encode_family(&labels)?.encode_gauge(&1i64)?;
        Ok(())
    }
}

/// A number as /metrics writes every number: a whole one as an integer
/// (`1`, not `1.0`), else as prometheus-client writes an `f64` (`1.5`).
pub fn encode_number(mut encoder: MetricEncoder<'_>, value: f64) -> std::fmt::Result {
    // Below 2^53 every whole f64 is an exact i64.
    if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
        encoder.encode_gauge(&(value as i64))
    } else {
        encoder.encode_gauge(&value)
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

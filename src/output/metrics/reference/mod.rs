//! Start reading here: `/metrics` written the obvious way, as the fast path
//! beside it must write it byte for byte.
//!
//! The exposition is the component families (refresh errors, AWS calls, the
//! process), then the per-key families of [`FACTS`], then the user,
//! account and exporter families of [`TailCollector`]. Here each is one loop
//! over the assessed model, handing labels and `f64` values to
//! prometheus-client's encoders, which escape the labels, format the numbers
//! and write the descriptors (with `_seconds`, `# UNIT` and `# EOF` where
//! OpenMetrics wants them). The fast path (`keys.rs`, `body.rs`, `gzip.rs`,
//! `seconds.rs` and the caches of `mod.rs`) writes the per-key lines from a
//! table instead, numbers as integers, keeps what does not change for a
//! snapshot, and stitches gzip from parts compressed apart; the property
//! test in `reference/tests.rs` renders random snapshots both ways, in both
//! formats, with and without gzip, and compares them byte for byte.
//!
//! The user, account and exporter families were always written through the
//! encoders, by [`TailCollector`] (`collector.rs`), so the reference uses
//! it as it is; the names, help and units of the per-key families are
//! declared once, in [`FACTS`] (`key_series.rs`). What the reference restates is how the
//! per-key families are written: which keys, in which order, with which
//! labels and which value.
//!
//! Where the fast path may differ, by design, on input the model rules out:
//! a key's `key` label is its position, 1 or 2 by the model, which the fast
//! path writes from a table of the digits 0 to 9 (and as `9` above it); the
//! random snapshots keep to 1 and 2, so no normalisation is needed.
//!
//! Compiled for tests only: nothing serves it, and a second renderer in the
//! binary would be code kept only for tests.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::collector::{encode_number, TailCollector};
use super::{Format, Metrics};
use crate::domain::assess::{Assessed, Assessment};
use crate::domain::disclosure::LabelSettings;
use crate::domain::key::AccessKey;
use crate::domain::snapshot::Snapshot;
use crate::output::key_series::FACTS;
use crate::output::key_series::{KeySeries, KeySeriesSet};

/// The whole exposition of `metrics` for `snapshot` at `now`, as the fast
/// path's [`Metrics::body`] must send it.
pub(super) fn render(metrics: &Metrics, snapshot: Arc<Snapshot>, now: DateTime<Utc>, format: Format) -> String {
    let context = &metrics.snapshot;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(KeyFamilies {
        assessed: context.assessor.assess_at(snapshot.clone(), now),
        labels: context.labels.clone(),
        series: context.series,
    }));
    registry.register_collector(Box::new(TailCollector {
        shared: context.clone(),
        snapshot,
        now,
    }));
    // The components' registry is the exporter's own; the snapshot's
    // families follow it, and OpenMetrics ends with `# EOF` after both.
    let mut out = String::new();
    let result = match format {
        Format::Text => {
            use prometheus_client::encoding::prometheus_text::encode;
            encode(&mut out, &metrics.components).and_then(|()| encode(&mut out, &registry))
        }
        Format::OpenMetrics => {
            use prometheus_client::encoding::text::{encode, encode_registry};
            encode_registry(&mut out, &metrics.components).and_then(|()| encode(&mut out, &registry))
        }
    };
    result.expect("encoding into memory is infallible");
    out
}

/// The per-key families of one assessed snapshot.
#[derive(Debug)]
struct KeyFamilies {
    assessed: Assessed,
    labels: LabelSettings,
    series: KeySeriesSet,
}

/// What a family says of one key: a gauge, nothing (a key never used has
/// no last use), or the info series, whose value is 1 and whose labels say
/// where the key was last used.
enum Sample<'a> {
    Gauge(f64),
    Absent,
    Info { service: &'a str, region: &'a str },
}

impl Collector for KeyFamilies {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        for family in FACTS.iter().filter(|f| self.series.contains(f.series)) {
            let mut samples =
                encoder.encode_descriptor(family.metric, family.help, family.unit.as_ref(), MetricType::Gauge)?;
            // Accounts by id, keys as the account's data holds them.
            for account in &self.assessed.accounts {
                for (key, assessment) in account.keys() {
                    let position = key.position.to_string();
                    let mut labels = vec![
                        ("account_id", account.id.as_str()),
                        ("user", &*key.user),
                        ("key", &position),
                        (
                            "access_key_id",
                            self.labels.access_key_id.render(key.access_key_id.as_deref()),
                        ),
                        ("status", key.status.as_str()),
                    ];
                    // No key id, no label.
                    labels.retain(|(name, value)| *name != "access_key_id" || !value.is_empty());
                    match sample(family.series, key, assessment) {
                        Sample::Gauge(value) => encode_number(samples.encode_family(&labels)?, value)?,
                        Sample::Absent => {}
                        Sample::Info { service, region } => {
                            labels.extend([("last_used_service", service), ("last_used_region", region)]);
                            samples.encode_family(&labels)?.encode_gauge(&1i64)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The sample of `series` for `key`: timestamps in whole seconds (as the
/// sources give them), the ages and verdicts as the policy assessed them.
fn sample<'a>(series: KeySeries, key: &'a AccessKey, assessment: &Assessment) -> Sample<'a> {
    let flag = |set: bool| Sample::Gauge(if set { 1.0 } else { 0.0 });
    match series {
        KeySeries::Created => Sample::Gauge(key.created.timestamp() as f64),
        KeySeries::LastUsed => key
            .last_used
            .map_or(Sample::Absent, |t| Sample::Gauge(t.timestamp() as f64)),
        KeySeries::Age => Sample::Gauge(assessment.age_seconds),
        KeySeries::Unused => Sample::Gauge(assessment.unused_seconds),
        KeySeries::NeverUsed => flag(assessment.never_used),
        KeySeries::HighRisk => flag(assessment.high_risk()),
        KeySeries::Info => Sample::Info {
            service: key.last_used_service.as_deref().unwrap_or(""),
            region: key.last_used_region.as_deref().unwrap_or(""),
        },
    }
}

#[cfg(test)]
mod tests;

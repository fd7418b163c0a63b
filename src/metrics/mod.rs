//! Metrics: a registry that holds the exporter's counters and a custom
//! collector that renders every key, user and account metric from the current
//! snapshot at scrape time (so ages are exact between refreshes).

use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_client::registry::Registry;

use crate::assess::Assessor;
use crate::key_series::KeySeriesSet;
use crate::labels::Labels;
use collector::SnapshotCollector;

mod collector;
mod labels;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    OpenMetrics,
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

    /// A distinct small number per format, to index per-format caches.
    pub fn slot(self) -> usize {
        match self {
            Format::Text => 0,
            Format::OpenMetrics => 1,
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
    pub fn new(
        mut registry: Registry,
        assessor: Assessor,
        labels: Labels,
        series: KeySeriesSet,
        build: BuildInfo,
    ) -> Metrics {
        registry.register_collector(Box::new(SnapshotCollector {
            assessor,
            labels,
            build,
            series,
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

#[cfg(test)]
mod tests;

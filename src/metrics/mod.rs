//! Metrics: a registry that holds the exporter's counters, and collectors
//! that render every key, user and account metric from the current snapshot
//! at scrape time (so ages are exact between refreshes), in parts so that
//! what does not vary is rendered (and compressed) once.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use prometheus_client::registry::Registry;

use crate::assess::Assessor;
use crate::key_series::KeySeriesSet;
use crate::labels::Labels;
use crate::snapshot::Snapshot;
use collector::{Part, PartCollector, SnapshotCollector};

mod collector;
mod gzip;
mod labels;

pub use gzip::compress;
use gzip::Deflated;

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

/// The component families and the snapshot's, rendered in parts (see
/// [`Body`]): the parts that change only with the snapshot are kept, per
/// format and encoding, until the snapshot or the policy's verdicts change.
#[derive(Debug)]
pub struct Metrics {
    /// The families that components own and register themselves (refresh
    /// errors, AWS calls): rendered at every scrape, they are small.
    components: Registry,
    snapshot: Arc<SnapshotCollector>,
    /// Per format, plain and gzip (`Format::slot() * 2 + gzip`).
    kept: [Mutex<Option<Arc<Kept>>>; 4],
    /// Size of the previous rendering of the ages, to allocate the next at once.
    ages_size: AtomicUsize,
}

/// The parts of a rendering that do not vary with the clock, for one
/// snapshot, one format and one encoding.
#[derive(Debug)]
struct Kept {
    /// Compared by pointer; held so that the pointer is not reused.
    snapshot: Arc<Snapshot>,
    /// The first instant at which a verdict of the policy may change.
    until: Option<DateTime<Utc>>,
    timestamps: Deflated,
    /// The rest, with `# EOF` in OpenMetrics.
    rest: Deflated,
}

/// A rendering as parts to send one after the other: the component families,
/// the timestamps, the ages, the rest. Plain parts concatenate to the
/// exposition; gzip parts concatenate to one gzip stream of it (see
/// [`gzip`]).
#[derive(Debug, Clone, Default)]
pub struct Body {
    pub parts: Vec<Bytes>,
}

impl Body {
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Metrics {
    /// `registry` holds the families that components own and register
    /// themselves (refresh errors, AWS calls); the snapshot's families come
    /// after them, so the exposition keeps that order.
    pub fn new(
        registry: Registry,
        assessor: Assessor,
        labels: Labels,
        series: KeySeriesSet,
        build: BuildInfo,
    ) -> Metrics {
        Metrics {
            components: registry,
            snapshot: Arc::new(SnapshotCollector {
                assessor,
                labels,
                build,
                series,
            }),
            kept: Default::default(),
            ages_size: AtomicUsize::new(0),
        }
    }

    /// The whole exposition as one text (tests, benchmarks, and any caller
    /// that wants it whole): the concatenation of a plain [`Metrics::body`].
    pub fn render(&self, format: Format) -> String {
        let body = self.body(format, false);
        let mut out = Vec::with_capacity(body.len());
        for part in &body.parts {
            out.extend_from_slice(part);
        }
        String::from_utf8(out).expect("the encoders write UTF-8")
    }

    /// The exposition in parts, gzip-compressed or not. The parts that do
    /// not vary with the clock come from the last rendering when it is of
    /// the same snapshot and no verdict of the policy has changed since;
    /// the component families and the ages (when exported) are rendered
    /// now. With neither `age` nor `unused` exported, a scrape renders only
    /// the component families.
    pub fn body(&self, format: Format, gzip: bool) -> Body {
        let (snapshot, now) = self.snapshot.assessor.current();
        let kept = self.kept(format, gzip, &snapshot, now);
        let head = self.encode(format, &self.components, 64 * 1024).into_bytes();
        let mut parts = vec![encode_part(head, gzip), kept.timestamps.clone()];
        if self.snapshot.series.varies_with_clock() {
            let ages = self.render_part(
                Part::Ages,
                format,
                snapshot,
                now,
                self.ages_size.load(Ordering::Relaxed),
            );
            self.ages_size.store(ages.len(), Ordering::Relaxed);
            if gzip {
                parts.extend(gzip::deflate_parallel(ages.as_bytes()));
            } else {
                parts.push(Deflated::plain(ages.into_bytes()));
            }
        }
        parts.push(kept.rest.clone());
        if !gzip {
            return Body {
                parts: parts.into_iter().map(|p| p.data).collect(),
            };
        }
        let trailer = gzip::trailer(&parts);
        let mut body = vec![Bytes::from_static(&gzip::HEADER)];
        body.extend(parts.into_iter().map(|p| p.data));
        body.push(trailer);
        Body { parts: body }
    }

    fn kept(&self, format: Format, gzip: bool, snapshot: &Arc<Snapshot>, now: DateTime<Utc>) -> Arc<Kept> {
        // Scrapes of the same slot wait for one rendering and share it; they
        // run on the blocking pool, where waiting is allowed.
        let mut slot = self.kept[format.slot() * 2 + gzip as usize]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(kept) = slot.as_ref() {
            if Arc::ptr_eq(&kept.snapshot, snapshot) && kept.until.is_none_or(|until| now < until) {
                return kept.clone();
            }
        }
        // The previous parts are dropped first: they may be as large as the new ones.
        let previous_sizes = slot.take().map(|k| (k.timestamps.data.len(), k.rest.data.len()));
        let (timestamps_size, rest_size) = if gzip { (0, 0) } else { previous_sizes.unwrap_or((0, 0)) };
        let (timestamps, rest) = if gzip {
            // Deflated as rendered: the text is never held whole.
            let mut timestamps = gzip::DeflateWriter::new();
            self.render_part_into(Part::Timestamps, format, snapshot.clone(), now, &mut timestamps);
            let mut rest = gzip::DeflateWriter::new();
            self.render_part_into(Part::Rest, format, snapshot.clone(), now, &mut rest);
            if format == Format::OpenMetrics {
                rest.write_str("# EOF\n").expect("deflate into memory");
            }
            (timestamps.finish(), rest.finish())
        } else {
            let timestamps = self.render_part(Part::Timestamps, format, snapshot.clone(), now, timestamps_size);
            let mut rest = self.render_part(Part::Rest, format, snapshot.clone(), now, rest_size);
            if format == Format::OpenMetrics {
                rest.push_str("# EOF\n");
            }
            (
                Deflated::plain(timestamps.into_bytes()),
                Deflated::plain(rest.into_bytes()),
            )
        };
        let kept = Arc::new(Kept {
            snapshot: snapshot.clone(),
            until: self.snapshot.assessor.stable_until(snapshot, now),
            timestamps,
            rest,
        });
        *slot = Some(kept.clone());
        kept
    }

    fn render_part(
        &self,
        part: Part,
        format: Format,
        snapshot: Arc<Snapshot>,
        now: DateTime<Utc>,
        size: usize,
    ) -> String {
        let mut out = String::with_capacity(size + 4096);
        self.render_part_into(part, format, snapshot, now, &mut out);
        out
    }

    fn render_part_into(
        &self,
        part: Part,
        format: Format,
        snapshot: Arc<Snapshot>,
        now: DateTime<Utc>,
        out: &mut impl std::fmt::Write,
    ) {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(PartCollector {
            shared: self.snapshot.clone(),
            snapshot,
            now,
            part,
        }));
        encode_into(format, &registry, out);
    }

    /// The registry's families, without `# EOF`: the caller ends the whole.
    fn encode(&self, format: Format, registry: &Registry, capacity: usize) -> String {
        let mut out = String::with_capacity(capacity);
        encode_into(format, registry, &mut out);
        out
    }
}

fn encode_into(format: Format, registry: &Registry, out: &mut impl std::fmt::Write) {
    let result = match format {
        Format::Text => prometheus_client::encoding::prometheus_text::encode(out, registry),
        Format::OpenMetrics => prometheus_client::encoding::text::encode_registry(out, registry),
    };
    // Writing to memory cannot fail, and no encoder here returns errors.
    result.expect("encoding into memory is infallible");
}

fn encode_part(plain: Vec<u8>, gzip: bool) -> Deflated {
    if gzip {
        gzip::deflate(&plain)
    } else {
        Deflated::plain(plain)
    }
}

#[cfg(test)]
mod tests;

//! Metrics: a registry that holds the exporter's counters, and collectors
//! that render every key, user and account metric from the current snapshot
//! at scrape time (so ages are exact between refreshes), in parts so that
//! what does not vary is rendered (and compressed) once.

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use prometheus_client::registry::Registry;

use crate::domain::assess::Assessor;
use crate::domain::disclosure::LabelSettings;
use crate::domain::snapshot::Snapshot;
use crate::output::key_series::KeySeriesSet;
pub use body::{Body, Piece, Slices};
pub use collector::encode_number;
use collector::{RenderContext, TailCollector};
pub use keys::{Cursor, KeyLines};
use keys::{KeyTable, Section};

mod body;
mod collector;
mod gzip;
mod keys;
mod labels;
#[cfg(test)]
mod reference;
mod seconds;

#[cfg(test)]
pub use gzip::compress;
use gzip::Deflated;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    OpenMetrics,
}

impl Format {
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
/// [`Body`]): what changes only with the snapshot and the policy's verdicts
/// is kept for an [`Epoch`].
#[derive(Debug)]
pub struct Metrics {
    /// The families that components own and register themselves (refresh
    /// errors, AWS calls): rendered at every scrape, they are small.
    components: Registry,
    snapshot: Arc<RenderContext>,
    epoch: Mutex<Option<Arc<Epoch>>>,
}

/// What a rendering keeps while one snapshot lasts and no verdict of the
/// policy changes: the key table, and per format what does not vary, made
/// when a scrape first asks for it. Only the compressed parts and the
/// plain user and account families are kept; the plain per-key lines are
/// written from the table as they are sent.
#[derive(Debug)]
struct Epoch {
    /// Compared by pointer; held so that the pointer is not reused.
    snapshot: Arc<Snapshot>,
    /// The first instant at which a verdict of the policy may change.
    until: Option<DateTime<Utc>>,
    keys: Arc<KeyTable>,
    /// Per format: the user, account and exporter families (and `# EOF`).
    plain_tail: [OnceLock<Bytes>; 2],
    /// Per format and section: the length of the plain per-key lines.
    lengths: [[OnceLock<usize>; 3]; 2],
    /// Per format: the deflated timestamps, and the deflated rest (the
    /// per-key families after the ages, then the tail).
    deflated: [OnceLock<(Deflated, Deflated)>; 2],
}

/// The least size of text worth compressing on a core of its own.
const MIN_PARALLEL: usize = 1 << 20;

impl Metrics {
    /// `registry` holds the families that components own and register
    /// themselves (refresh errors, AWS calls); the snapshot's families come
    /// after them, so the exposition keeps that order.
    pub fn new(
        registry: Registry,
        assessor: Assessor,
        labels: LabelSettings,
        series: KeySeriesSet,
        build: BuildInfo,
    ) -> Metrics {
        Metrics {
            components: registry,
            snapshot: Arc::new(RenderContext {
                assessor,
                labels,
                build,
                series,
            }),
            epoch: Mutex::new(None),
        }
    }

    /// The whole exposition as one text (tests, benchmarks, and any caller
    /// that wants it whole): the concatenation of a plain [`Metrics::body`].
    pub fn render(&self, format: Format) -> String {
        let body = self.body(format, false);
        let mut out = Vec::with_capacity(body.len());
        for part in &body.parts {
            match part {
                Piece::Bytes(bytes) => out.extend_from_slice(bytes),
                Piece::Lines(lines) => lines.cursor().write_all(&mut out),
            }
        }
        String::from_utf8(out).expect("the encoders write UTF-8")
    }

    /// The exposition in pieces, gzip-compressed or not. What does not vary
    /// with the clock comes from the [`Epoch`] of the current snapshot; the
    /// component families and the ages (when exported) are rendered now.
    /// Plain per-key lines are written by the receiver as it sends them.
    pub fn body(&self, format: Format, gzip: bool) -> Body {
        let (snapshot, now) = self.snapshot.assessor.current();
        let epoch = self.epoch(&snapshot, now);
        let series = self.snapshot.series;
        let mut head = String::with_capacity(64 * 1024);
        encode_into(format, &self.components, &mut head);
        if !gzip {
            let lines = |section| {
                let lines = KeyLines::new(epoch.keys.clone(), now, format, series, &[section]);
                // The lengths of the lines that do not vary are measured once.
                match section {
                    Section::Ages => lines,
                    _ => {
                        let len = epoch.lengths[format.slot()][section as usize].get_or_init(|| lines.len());
                        lines.with_len(*len)
                    }
                }
            };
            let tail = epoch.plain_tail[format.slot()].get_or_init(|| {
                let mut tail = String::new();
                self.render_tail(format, &snapshot, now, &mut tail);
                tail.into()
            });
            return Body {
                parts: vec![
                    Piece::Bytes(head.into()),
                    Piece::Lines(lines(Section::Timestamps)),
                    Piece::Lines(lines(Section::Ages)),
                    Piece::Lines(lines(Section::Rest)),
                    Piece::Bytes(tail.clone()),
                ],
            };
        }
        let (timestamps, rest) = epoch.deflated[format.slot()].get_or_init(|| {
            let mut timestamps = gzip::DeflateWriter::new();
            let lines = KeyLines::new(epoch.keys.clone(), now, format, series, &[Section::Timestamps]);
            deflate_lines(&lines, &mut timestamps);
            let mut rest = gzip::DeflateWriter::new();
            let lines = KeyLines::new(epoch.keys.clone(), now, format, series, &[Section::Rest]);
            deflate_lines(&lines, &mut rest);
            self.render_tail(format, &snapshot, now, &mut rest);
            (timestamps.finish(), rest.finish())
        });
        let mut parts = vec![gzip::deflate(head.as_bytes()), timestamps.clone()];
        let ages = KeyLines::new(epoch.keys.clone(), now, format, series, &[Section::Ages]);
        parts.extend(deflate_parallel(&ages));
        parts.push(rest.clone());
        let trailer = gzip::trailer(&parts);
        let mut body = vec![Piece::Bytes(Bytes::from_static(&gzip::HEADER))];
        body.extend(parts.into_iter().map(|p| Piece::Bytes(p.data)));
        body.push(Piece::Bytes(trailer));
        Body { parts: body }
    }

    /// The epoch of `snapshot` at `now`: the last one when it is of the
    /// same snapshot and no verdict of the policy has changed since.
    fn epoch(&self, snapshot: &Arc<Snapshot>, now: DateTime<Utc>) -> Arc<Epoch> {
        // Scrapes wait for one new epoch and share it; they run on the
        // blocking pool, where waiting is allowed.
        let mut slot = self.epoch.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(epoch) = slot.as_ref() {
            if Arc::ptr_eq(&epoch.snapshot, snapshot) && epoch.until.is_none_or(|until| now < until) {
                return epoch.clone();
            }
        }
        // The previous epoch is dropped first: it may be as large as the new one.
        *slot = None;
        let assessed = self.snapshot.assessor.assess_at(snapshot.clone(), now);
        let epoch = Arc::new(Epoch {
            snapshot: snapshot.clone(),
            until: self.snapshot.assessor.stable_until(snapshot, now),
            keys: Arc::new(KeyTable::new(&assessed, &self.snapshot.labels)),
            plain_tail: Default::default(),
            lengths: Default::default(),
            deflated: Default::default(),
        });
        *slot = Some(epoch.clone());
        epoch
    }

    /// The user, account and exporter families (and `# EOF` in OpenMetrics).
    fn render_tail(
        &self,
        format: Format,
        snapshot: &Arc<Snapshot>,
        now: DateTime<Utc>,
        out: &mut impl std::fmt::Write,
    ) {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(TailCollector {
            shared: self.snapshot.clone(),
            snapshot: snapshot.clone(),
            now,
        }));
        encode_into(format, &registry, out);
        if format == Format::OpenMetrics {
            out.write_str("# EOF\n").expect("writing into memory");
        }
    }
}

/// `lines` into `out`, a slice at a time: never held whole as text.
fn deflate_lines(lines: &KeyLines, out: &mut gzip::DeflateWriter) {
    let mut cursor = lines.cursor();
    while out.append(|pending| cursor.fill(pending, gzip::SLICE)) {}
}

/// `lines` deflated as one part per core: the ages are compressed at every
/// scrape, and at 100,000 keys one core would take most of the scrape doing it.
fn deflate_parallel(lines: &KeyLines) -> Vec<Deflated> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parts = (lines.len() / MIN_PARALLEL).clamp(1, threads);
    if parts == 1 {
        let mut out = gzip::DeflateWriter::new();
        deflate_lines(lines, &mut out);
        return vec![out.finish()];
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = lines
            .split(parts)
            .into_iter()
            .map(|part| {
                scope.spawn(move || {
                    let mut out = gzip::DeflateWriter::new();
                    deflate_lines(&part, &mut out);
                    out.finish()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("deflate into memory does not panic"))
            .collect()
    })
}

fn encode_into(format: Format, registry: &Registry, out: &mut impl std::fmt::Write) {
    let result = match format {
        Format::Text => prometheus_client::encoding::prometheus_text::encode(out, registry),
        Format::OpenMetrics => prometheus_client::encoding::text::encode_registry(out, registry),
    };
    // Writing to memory cannot fail, and no encoder here returns errors.
    result.expect("encoding into memory is infallible");
}

#[cfg(test)]
mod tests;

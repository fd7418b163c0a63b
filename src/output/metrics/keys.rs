//! The per-key families, rendered from a table made once per snapshot (and
//! again when a verdict of the policy changes): every key's label set as the
//! encoder writes it, and the policy's verdicts. At 100,000 keys these
//! families are nearly all of the exposition (up to seven samples per key),
//! and a line of theirs is a copied label set and one formatted number: a
//! scrape writes them as it sends them instead of holding them whole, and
//! splits the ages over the cores to compress them.
//!
//! The lines are byte for byte what prometheus-client's encoders write for
//! the same families (the descriptors come from the encoders themselves);
//! the tests compare both.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::seconds::{Value, ValueText};
use super::Format;
use crate::domain::assess::Assessed;
use crate::domain::disclosure::LabelSettings;
use crate::domain::key::{AccessKey, AccountData};
use crate::output::key_series::{KeyFact, KeySeriesSet, KeyValue, Verdict, FACTS};

/// Where the per-key families sit in the exposition: the timestamps, the
/// ages (which change with the clock), the rest. The component families
/// come before them, the user and account families after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Timestamps,
    Ages,
    Rest,
}

impl Section {
    fn of(fact: &KeyFact) -> Section {
        match fact.value {
            KeyValue::Time(_) => Section::Timestamps,
            KeyValue::Since(_) => Section::Ages,
            KeyValue::Verdict(_) | KeyValue::LastUse => Section::Rest,
        }
    }
}

/// `{account_id="",user="",key="",access_key_id="",status=""}`: a label
/// set without its values.
const LABEL_NAMES_SIZE: usize = 57;
const KEY_POSITIONS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Every key of a snapshot, in exposition order (accounts by id, keys as the
/// account's data holds them), with its label set and verdicts.
#[derive(Debug)]
pub(super) struct KeyTable {
    accounts: Vec<Arc<AccountData>>,
    /// The index of each account's first key.
    starts: Vec<usize>,
    /// `{account_id="…",user="…",key="…",access_key_id="…",status="…"}` of
    /// every key, one after the other (without `access_key_id` when empty).
    labels: String,
    /// Where each key's label set ends in `labels`.
    ends: Vec<usize>,
    /// Per key, the bits of the [`Verdict`]s the policy gave it.
    verdicts: Vec<u8>,
}

impl KeyTable {
    pub(super) fn new(assessed: &Assessed, labels: &LabelSettings) -> KeyTable {
        let count: usize = assessed.accounts.iter().map(|a| a.data.keys.len()).sum();
        // Sized before it is written: grown by doubling, the text (a tenth of
        // the exporter's memory at 100,000 keys) would be held twice as it
        // is copied into its next allocation.
        let size: usize = assessed
            .accounts
            .iter()
            .flat_map(|a| a.data.keys.iter().map(|k| (a.id.len(), k)))
            .map(|(id, k)| {
                LABEL_NAMES_SIZE + id + k.user.len() + 1 + k.access_key_id.as_deref().map_or(0, str::len) + 8
            })
            .sum();
        let mut table = KeyTable {
            accounts: Vec::with_capacity(assessed.accounts.len()),
            starts: Vec::with_capacity(assessed.accounts.len()),
            labels: String::with_capacity(size),
            ends: Vec::with_capacity(count),
            verdicts: Vec::with_capacity(count),
        };
        for account in &assessed.accounts {
            table.starts.push(table.ends.len());
            table.accounts.push(account.data.clone());
            for (key, assessment) in account.keys() {
                let values = [
                    ("account_id", account.id.as_str()),
                    ("user", &key.user),
                    ("key", KEY_POSITIONS.get(key.position as usize).copied().unwrap_or("9")),
                    (
                        "access_key_id",
                        labels.access_key_id.render(key.access_key_id.as_deref()),
                    ),
                    ("status", key.status.as_str()),
                ];
                // A source without key ids (a credential report), or
                // `labels.access_key_id: none`, writes no such label: an
                // empty one means the same to Prometheus and costs bytes on
                // every line.
                let written = values
                    .into_iter()
                    .filter(|(name, value)| *name != "access_key_id" || !value.is_empty());
                for (i, (name, value)) in written.enumerate() {
                    table.labels.push_str(if i == 0 { "{" } else { "," });
                    push_label(&mut table.labels, name, value);
                }
                table.labels.push('}');
                table.ends.push(table.labels.len());
                table.verdicts.push(
                    Verdict::ALL
                        .into_iter()
                        .filter(|v| v.of(assessment))
                        .fold(0, |bits, v| bits | v.bit()),
                );
            }
        }
        table.labels.shrink_to_fit();
        table
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn key(&self, i: usize) -> &AccessKey {
        let account = self.starts.partition_point(|&start| start <= i) - 1;
        &self.accounts[account].keys[i - self.starts[account]]
    }

    fn labels(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.labels[start..self.ends[i]]
    }
}

/// `name="value"`, the value escaped as the encoders escape it.
fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    out.push_str(&escaped(value));
    out.push('"');
}

fn escaped(value: &str) -> Cow<'_, str> {
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Some of the per-key families of one table at one instant, in one
/// format: a description, cheap to clone, from which [`Cursor`]s write the
/// lines. The lines are numbered family by family: the descriptor, then one
/// line per key (none for a key without a value); a `KeyLines` covers a
/// range of those numbers, so that one rendering can be split.
#[derive(Debug, Clone)]
pub struct KeyLines {
    table: Arc<KeyTable>,
    now: DateTime<Utc>,
    families: Arc<[Rendered]>,
    from: usize,
    to: usize,
    len: OnceLock<usize>,
}

/// A family as a format writes it: its descriptor, and the name on its samples.
#[derive(Debug)]
struct Rendered {
    fact: &'static KeyFact,
    descriptor: String,
    sample_name: String,
}

impl KeyLines {
    /// The families of `series` in `section`, every key.
    pub(super) fn new(
        table: Arc<KeyTable>,
        now: DateTime<Utc>,
        format: Format,
        series: KeySeriesSet,
        sections: &[Section],
    ) -> KeyLines {
        let families: Arc<[Rendered]> = FACTS
            .iter()
            .filter(|f| series.contains(f.series) && sections.contains(&Section::of(f)))
            .map(|fact| {
                let descriptor = descriptor(fact, format);
                let sample_name = descriptor
                    .lines()
                    .find_map(|l| l.strip_prefix("# TYPE "))
                    .and_then(|l| l.split(' ').next())
                    .unwrap_or(fact.metric)
                    .to_string();
                Rendered {
                    fact,
                    descriptor,
                    sample_name,
                }
            })
            .collect();
        let to = families.len() * (table.len() + 1);
        KeyLines {
            table,
            now,
            families,
            from: 0,
            to,
            len: OnceLock::new(),
        }
    }

    /// These lines, whose length is known to be `len` (an earlier
    /// measure of the same lines).
    pub(super) fn with_len(self, len: usize) -> KeyLines {
        let _ = self.len.set(len);
        self
    }

    /// The length in bytes of the lines, measured once: the number of
    /// bytes a response announces.
    pub fn len(&self) -> usize {
        *self.len.get_or_init(|| self.measure())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// These lines in up to `parts` ranges of about the same number of lines.
    pub(super) fn split(&self, parts: usize) -> Vec<KeyLines> {
        let parts = parts.clamp(1, (self.to - self.from).max(1));
        (0..parts)
            .map(|p| {
                let span = self.to - self.from;
                KeyLines {
                    from: self.from + span * p / parts,
                    to: self.from + span * (p + 1) / parts,
                    len: OnceLock::new(),
                    ..self.clone()
                }
            })
            .collect()
    }

    pub fn cursor(&self) -> Cursor {
        Cursor {
            lines: self.clone(),
            at: self.from,
        }
    }

    fn measure(&self) -> usize {
        let mut number = dtoa::Buffer::new();
        (self.from..self.to)
            .map(|at| self.line(at, &mut number).map_or(0, |line| line.len()))
            .sum()
    }

    /// Line `at`, if there is one.
    fn line<'a>(&'a self, at: usize, number: &'a mut dtoa::Buffer) -> Option<Line<'a>> {
        let keys = self.table.len() + 1;
        let rendered = &self.families[at / keys];
        let Some(i) = (at % keys).checked_sub(1) else {
            return Some(Line::Descriptor(&rendered.descriptor));
        };
        let key = self.table.key(i);
        let value = match rendered.fact.value {
            KeyValue::Time(time) => Value::Millis(time.of(key)?.timestamp().saturating_mul(1000)),
            // As `policy::seconds_since` counts them.
            KeyValue::Since(span) => Value::Millis((self.now - span.start(key)).num_milliseconds().max(0)),
            KeyValue::Verdict(verdict) => Value::Text(if self.table.verdicts[i] & verdict.bit() != 0 {
                "1"
            } else {
                "0"
            }),
            KeyValue::LastUse => {
                return Some(Line::Info(Info {
                    name: &rendered.sample_name,
                    labels: self.table.labels(i),
                    service: escaped(key.last_used_service.as_deref().unwrap_or("")),
                    region: escaped(key.last_used_region.as_deref().unwrap_or("")),
                }))
            }
        };
        Some(Line::Sample {
            name: &rendered.sample_name,
            labels: self.table.labels(i),
            value: value.text(number),
        })
    }
}

enum Line<'a> {
    Descriptor(&'a str),
    Sample {
        name: &'a str,
        labels: &'a str,
        value: ValueText<'a>,
    },
    Info(Info<'a>),
}

const SERVICE: &str = ",last_used_service=\"";
const REGION: &str = "\",last_used_region=\"";
const INFO_END: &str = "\"} 1\n";

/// An `aws_iam_access_key_info` line: the key's labels, reopened for where
/// it was last used; always 1.
struct Info<'a> {
    name: &'a str,
    labels: &'a str,
    service: Cow<'a, str>,
    region: Cow<'a, str>,
}

impl Info<'_> {
    fn pieces(&self) -> [&str; 7] {
        let open = &self.labels[..self.labels.len() - 1];
        [self.name, open, SERVICE, &self.service, REGION, &self.region, INFO_END]
    }
}

impl Line<'_> {
    fn len(&self) -> usize {
        match self {
            Line::Descriptor(text) => text.len(),
            Line::Sample { name, labels, value } => name.len() + labels.len() + value.len() + 2,
            Line::Info(info) => info.pieces().iter().map(|piece| piece.len()).sum(),
        }
    }

    fn write(self, out: &mut Vec<u8>) {
        match self {
            Line::Descriptor(text) => out.extend_from_slice(text.as_bytes()),
            Line::Sample {
                name,
                labels,
                mut value,
            } => {
                for piece in [name, labels, " "] {
                    out.extend_from_slice(piece.as_bytes());
                }
                value.write(out);
                out.push(b'\n');
            }
            Line::Info(info) => {
                for piece in info.pieces() {
                    out.extend_from_slice(piece.as_bytes());
                }
            }
        }
    }
}

/// Writes the lines of a [`KeyLines`] a slice at a time.
#[derive(Debug)]
pub struct Cursor {
    lines: KeyLines,
    at: usize,
}

impl Cursor {
    /// Appends whole lines to `out` until it holds at least `limit` bytes or
    /// the lines are all written; false once they are.
    pub fn fill(&mut self, out: &mut Vec<u8>, limit: usize) -> bool {
        let mut number = dtoa::Buffer::new();
        while self.at < self.lines.to && out.len() < limit {
            if let Some(line) = self.lines.line(self.at, &mut number) {
                line.write(out);
            }
            self.at += 1;
        }
        self.at < self.lines.to
    }

    /// Every line still to write, at once.
    pub(super) fn write_all(mut self, out: &mut Vec<u8>) {
        while self.fill(out, usize::MAX) {}
    }
}

/// A fact's descriptor as `format`'s encoder writes it.
fn descriptor(fact: &'static KeyFact, format: Format) -> String {
    #[derive(Debug)]
    struct Descriptor(&'static KeyFact);
    impl Collector for Descriptor {
        fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
            let fact = self.0;
            encoder.encode_descriptor(fact.metric, fact.help, fact.unit.as_ref(), MetricType::Gauge)?;
            Ok(())
        }
    }
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Descriptor(fact)));
    let mut out = String::new();
    super::encode_into(format, &registry, &mut out);
    out
}

//! The per-key facts, each declared once in [`FACTS`]: the family `/metrics`
//! exports for it (name, help, unit, and how its value is taken from an
//! assessed key), its name in `metrics.key_series`, and the columns it fills
//! in the report's key tables. The metrics' fast path, the series set, the
//! `--metrics.key-series` help and every report format read this table.
//!
//! Which families are exported (`metrics.key_series`): all of them by
//! default, or fewer to cut what the scraping Prometheus holds. The ages are
//! derived in PromQL from the timestamps (`time() - created`), so the lean
//! set `[created, last_used, high_risk]` loses no information but the ages'
//! exactness between scrapes, and halves the series.

use chrono::{DateTime, Utc};
use prometheus_client::registry::Unit;

use crate::domain::assess::Assessment;
use crate::domain::key::AccessKey;

/// One per-key fact; its discriminant is its place in [`FACTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySeries {
    Created,
    LastUsed,
    Age,
    Unused,
    NeverUsed,
    HighRisk,
    Info,
}

/// A per-key fact: its family in `/metrics` and its columns in the report.
#[derive(Debug)]
pub struct KeyFact {
    pub series: KeySeries,
    /// The name in `metrics.key_series` and `--metrics.key-series`.
    pub name: &'static str,
    /// The family's name, before the encoder adds the unit.
    pub metric: &'static str,
    pub help: &'static str,
    pub unit: Option<Unit>,
    pub value: KeyValue,
    pub columns: &'static [Column],
}

/// What a family's sample of a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyValue {
    /// A time of the key, in Unix seconds; no sample when it has none.
    Time(KeyTime),
    /// Seconds from the start of a span to now: these change with the clock.
    Since(Span),
    /// 1 or 0, as the policy judged the key.
    Verdict(Verdict),
    /// Always 1; the key's labels carry where it was last used.
    LastUse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTime {
    Created,
    LastUsed,
}

impl KeyTime {
    pub fn of(self, key: &AccessKey) -> Option<DateTime<Utc>> {
        match self {
            KeyTime::Created => Some(key.created),
            KeyTime::LastUsed => key.last_used,
        }
    }
}

/// A span of a key's life that ends now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Age,
    Unused,
}

impl Span {
    pub fn start(self, key: &AccessKey) -> DateTime<Utc> {
        match self {
            Span::Age => key.created,
            Span::Unused => key.unused_since(),
        }
    }

    /// Whole days, as the policy counted them.
    pub fn days(self, assessment: &Assessment) -> u64 {
        match self {
            Span::Age => assessment.age_days(),
            Span::Unused => assessment.unused_days(),
        }
    }
}

/// A yes or no of the policy about a key; its discriminant numbers its bit
/// among a key's verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    NeverUsed,
    HighRisk,
}

impl Verdict {
    pub const ALL: [Verdict; 2] = [Verdict::NeverUsed, Verdict::HighRisk];

    pub fn of(self, assessment: &Assessment) -> bool {
        match self {
            Verdict::NeverUsed => assessment.never_used,
            Verdict::HighRisk => assessment.high_risk(),
        }
    }

    pub fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A column of the report's key tables, after the key's account, user,
/// position, id and status.
#[derive(Debug)]
pub struct Column {
    /// The header in the text and CSV tables, the field in JSON.
    pub name: &'static str,
    /// Its place among the fact columns of the text, CSV and JSON tables,
    /// which were laid out before the families were.
    pub at: u8,
    pub cell: Cell,
    /// Its title in the HTML tables, and which of them show it.
    pub html: Option<(&'static str, HtmlTables)>,
}

/// What a report cell of a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// A time of the key; "Never" (`null` in JSON) when it has none.
    Time(KeyTime),
    /// Whole days of a span.
    Days(Span),
    LastUsedService,
    LastUsedRegion,
    Verdict(Verdict),
    /// Why the policy judged the key high risk.
    RiskReasons,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HtmlTables {
    /// The high-risk and details tables.
    Both,
    Details,
}

/// Every per-key fact, in exposition order.
pub const FACTS: [KeyFact; 7] = [
    KeyFact {
        series: KeySeries::Created,
        name: "created",
        metric: "aws_iam_access_key_created_timestamp",
        help: "Creation time of the access key, which is its last rotation.",
        unit: Some(Unit::Seconds),
        value: KeyValue::Time(KeyTime::Created),
        columns: &[Column {
            name: "created",
            at: 0,
            cell: Cell::Time(KeyTime::Created),
            html: Some(("Created", HtmlTables::Both)),
        }],
    },
    KeyFact {
        series: KeySeries::LastUsed,
        name: "last_used",
        metric: "aws_iam_access_key_last_used_timestamp",
        help: "Time the access key was last used; absent for a key never used.",
        unit: Some(Unit::Seconds),
        value: KeyValue::Time(KeyTime::LastUsed),
        columns: &[Column {
            name: "last_used",
            at: 2,
            cell: Cell::Time(KeyTime::LastUsed),
            html: Some(("Last used", HtmlTables::Both)),
        }],
    },
    KeyFact {
        series: KeySeries::Age,
        name: "age",
        metric: "aws_iam_access_key_age",
        help: "Time since the access key was created (rotated).",
        unit: Some(Unit::Seconds),
        value: KeyValue::Since(Span::Age),
        columns: &[Column {
            name: "age_days",
            at: 1,
            cell: Cell::Days(Span::Age),
            html: Some(("Age (days)", HtmlTables::Both)),
        }],
    },
    KeyFact {
        series: KeySeries::Unused,
        name: "unused",
        metric: "aws_iam_access_key_unused",
        help: "Time since the access key was last used, or since its creation if never used.",
        unit: Some(Unit::Seconds),
        value: KeyValue::Since(Span::Unused),
        columns: &[Column {
            name: "unused_days",
            at: 3,
            cell: Cell::Days(Span::Unused),
            html: Some(("Unused (days)", HtmlTables::Both)),
        }],
    },
    KeyFact {
        series: KeySeries::NeverUsed,
        name: "never_used",
        metric: "aws_iam_access_key_never_used",
        help: "1 if the access key has never been used.",
        unit: None,
        value: KeyValue::Verdict(Verdict::NeverUsed),
        columns: &[],
    },
    // The HTML tables end with the verdict and its reasons, after the user
    // tags, in a cell of their own (see `report::html`).
    KeyFact {
        series: KeySeries::HighRisk,
        name: "high_risk",
        metric: "aws_iam_access_key_high_risk",
        help: "1 if the access key is high risk by the configured policy.",
        unit: None,
        value: KeyValue::Verdict(Verdict::HighRisk),
        columns: &[
            Column {
                name: "high_risk",
                at: 6,
                cell: Cell::Verdict(Verdict::HighRisk),
                html: None,
            },
            Column {
                name: "risk_reasons",
                at: 7,
                cell: Cell::RiskReasons,
                html: None,
            },
        ],
    },
    KeyFact {
        series: KeySeries::Info,
        name: "info",
        metric: "aws_iam_access_key_info",
        help: "Always 1; carries the service and region of the key's last use.",
        unit: None,
        value: KeyValue::LastUse,
        columns: &[
            Column {
                name: "last_used_service",
                at: 4,
                cell: Cell::LastUsedService,
                html: Some(("Last used service", HtmlTables::Details)),
            },
            Column {
                name: "last_used_region",
                at: 5,
                cell: Cell::LastUsedRegion,
                html: Some(("Last used region", HtmlTables::Details)),
            },
        ],
    },
];

// A fact's series is its place in the table: `KeySeries::fact` indexes by it.
const _: () = {
    let mut i = 0;
    while i < FACTS.len() {
        assert!(FACTS[i].series as usize == i, "FACTS is in KeySeries order");
        i += 1;
    }
};

impl KeySeries {
    /// Every family, in exposition order.
    pub const ALL: [KeySeries; FACTS.len()] = {
        let mut all = [KeySeries::Created; FACTS.len()];
        let mut i = 0;
        while i < FACTS.len() {
            all[i] = FACTS[i].series;
            i += 1;
        }
        all
    };

    pub fn fact(self) -> &'static KeyFact {
        &FACTS[self as usize]
    }

    /// The name in `metrics.key_series` and `--metrics.key-series`.
    pub fn name(self) -> &'static str {
        self.fact().name
    }

    /// Every name `metrics.key_series` accepts, in exposition order:
    /// "created, last_used, …".
    pub fn names() -> String {
        KeySeries::ALL.map(KeySeries::name).join(", ")
    }

    fn from_name(name: &str) -> Option<KeySeries> {
        KeySeries::ALL.into_iter().find(|s| s.name() == name)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The help of `--metrics.key-series`, naming every family and the lean set
/// (without the final stop, as clap prints a one-line doc comment).
pub fn flag_help() -> String {
    format!(
        "Per-key families to export, comma-separated, among {} (default all); `{}` halves what Prometheus holds",
        KeySeries::names(),
        KeySeriesSet::lean().names().join(",")
    )
}

/// The columns of the report's key tables that the facts fill, in their
/// order in the text, CSV and JSON tables, with their index in the order
/// the facts declare them (that of [`columns`]).
pub fn report_columns() -> Vec<(usize, &'static Column)> {
    let mut columns: Vec<(usize, &'static Column)> = columns().enumerate().collect();
    columns.sort_by_key(|(_, c)| c.at);
    columns
}

/// The columns the facts fill, in the order the facts declare them.
pub fn columns() -> impl Iterator<Item = &'static Column> {
    FACTS.iter().flat_map(|f| f.columns)
}

/// A set of per-key families; `Default` is all of them (today's output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySeriesSet(u8);

impl Default for KeySeriesSet {
    fn default() -> KeySeriesSet {
        KeySeriesSet::all()
    }
}

impl KeySeriesSet {
    pub fn all() -> KeySeriesSet {
        KeySeriesSet::of(&KeySeries::ALL)
    }

    /// The lean set the docs recommend at scale.
    pub fn lean() -> KeySeriesSet {
        KeySeriesSet::of(&[KeySeries::Created, KeySeries::LastUsed, KeySeries::HighRisk])
    }

    pub fn of(series: &[KeySeries]) -> KeySeriesSet {
        KeySeriesSet(series.iter().fold(0, |bits, s| bits | s.bit()))
    }

    /// The set the names list; the message names every unknown one and the
    /// accepted names, for the caller to prefix with the field.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<KeySeriesSet, String> {
        let mut bits = 0;
        let mut unknown = Vec::new();
        for name in names {
            match KeySeries::from_name(name.trim()) {
                Some(series) => bits |= series.bit(),
                None => unknown.push(format!("{:?}", name.trim())),
            }
        }
        if unknown.is_empty() {
            Ok(KeySeriesSet(bits))
        } else {
            Err(format!(
                "{} not one of {}",
                match unknown.len() {
                    1 => format!("{} is", unknown[0]),
                    _ => format!("{} are", unknown.join(", ")),
                },
                KeySeries::names()
            ))
        }
    }

    pub fn contains(self, series: KeySeries) -> bool {
        self.0 & series.bit() != 0
    }

    /// The names of its families, in exposition order.
    pub fn names(self) -> Vec<&'static str> {
        KeySeries::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(KeySeries::name)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_to_their_set_and_unknown_names_are_named() {
        assert_eq!(
            KeySeriesSet::parse(["created", " last_used", "high_risk"]),
            Ok(KeySeriesSet::lean())
        );
        assert_eq!(
            KeySeriesSet::parse(KeySeries::ALL.map(KeySeries::name)),
            Ok(KeySeriesSet::all())
        );
        assert_eq!(KeySeriesSet::parse([]), Ok(KeySeriesSet::of(&[])));
        assert_eq!(
            KeySeriesSet::parse(["created", "ages", "risk"]),
            Err(
                "\"ages\", \"risk\" are not one of created, last_used, age, unused, never_used, high_risk, info".into()
            )
        );
    }
}

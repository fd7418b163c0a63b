//! Which per-key families `/metrics` exports (`metrics.key_series`): all of
//! them by default, or fewer to cut what the scraping Prometheus holds. The
//! ages are derived in PromQL from the timestamps (`time() - created`), so
//! the lean set `[created, last_used, high_risk]` loses no information but
//! the ages' exactness between scrapes, and halves the series.

/// One per-key family, in exposition order.
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

impl KeySeries {
    /// Every family, in exposition order.
    pub const ALL: [KeySeries; 7] = [
        KeySeries::Created,
        KeySeries::LastUsed,
        KeySeries::Age,
        KeySeries::Unused,
        KeySeries::NeverUsed,
        KeySeries::HighRisk,
        KeySeries::Info,
    ];

    /// The name in `metrics.key_series` and `--metrics.key-series`.
    pub fn name(self) -> &'static str {
        match self {
            KeySeries::Created => "created",
            KeySeries::LastUsed => "last_used",
            KeySeries::Age => "age",
            KeySeries::Unused => "unused",
            KeySeries::NeverUsed => "never_used",
            KeySeries::HighRisk => "high_risk",
            KeySeries::Info => "info",
        }
    }

    fn from_name(name: &str) -> Option<KeySeries> {
        KeySeries::ALL.into_iter().find(|s| s.name() == name)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
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
            let known: Vec<&str> = KeySeries::ALL.iter().map(|s| s.name()).collect();
            Err(format!(
                "{} not one of {}",
                match unknown.len() {
                    1 => format!("{} is", unknown[0]),
                    _ => format!("{} are", unknown.join(", ")),
                },
                known.join(", ")
            ))
        }
    }

    pub fn contains(self, series: KeySeries) -> bool {
        self.0 & series.bit() != 0
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

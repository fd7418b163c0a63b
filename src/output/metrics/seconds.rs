//! Numbers of seconds as /metrics writes every number (a whole number as an
//! integer, `12`, else dtoa's shortest form, `12.5`; see `encode_number`
//! in `collector.rs`), written faster: most values on /metrics are
//! seconds with at most three decimals (timestamps, ages), and formatting
//! them as integers is several times faster than dtoa, which was a third of
//! a scrape.

/// A value: seconds as a whole number of milliseconds, or a fixed text.
pub(super) enum Value {
    Millis(i64),
    Text(&'static str),
}

/// Below this many milliseconds (2^43: 278 years, or a timestamp before
/// 2248) an `f64` tells apart numbers of seconds a thousandth apart with
/// room to spare, so the shortest form of one with three decimals is those
/// decimals.
const EXACT_MILLIS: i64 = 1 << 53 >> 10;

impl Value {
    /// The value as /metrics writes a number: `12`, `12.5`, `12.345`.
    /// Milliseconds are written as integers are, which is several times
    /// faster than dtoa and, in this range, gives the same text (tested
    /// against dtoa).
    pub(super) fn text(self, number: &mut dtoa::Buffer) -> ValueText<'_> {
        match self {
            Value::Text(text) => ValueText::Text(text),
            Value::Millis(millis) if (0..EXACT_MILLIS).contains(&millis) => {
                ValueText::Millis(itoa::Buffer::new(), millis)
            }
            Value::Millis(millis) => {
                // dtoa writes a whole number below 2^53 with `.0`, which
                // /metrics does not.
                let text = number.format(millis as f64 / 1000.0);
                ValueText::Text(text.strip_suffix(".0").unwrap_or(text))
            }
        }
    }
}

pub(super) enum ValueText<'a> {
    Text(&'a str),
    Millis(itoa::Buffer, i64),
}

impl ValueText<'_> {
    pub(super) fn len(&self) -> usize {
        match self {
            ValueText::Text(text) => text.len(),
            ValueText::Millis(_, millis) => decimal_len(millis / 1000) + fraction_len(millis % 1000),
        }
    }

    pub(super) fn write(&mut self, out: &mut Vec<u8>) {
        match self {
            ValueText::Text(text) => out.extend_from_slice(text.as_bytes()),
            ValueText::Millis(buffer, millis) => {
                out.extend_from_slice(buffer.format(*millis / 1000).as_bytes());
                let fraction = *millis % 1000;
                if fraction != 0 {
                    let digits = [
                        b'.',
                        b'0' + (fraction / 100) as u8,
                        b'0' + (fraction / 10 % 10) as u8,
                        b'0' + (fraction % 10) as u8,
                    ];
                    out.extend_from_slice(&digits[..fraction_len(fraction)]);
                }
            }
        }
    }
}

fn decimal_len(n: i64) -> usize {
    n.checked_ilog10().map_or(1, |digits| digits as usize + 1)
}

/// Nothing for none, else the point and the digits up to the last non-zero one.
fn fraction_len(fraction: i64) -> usize {
    match fraction {
        0 => 0,
        f if f % 100 == 0 => 2,
        f if f % 10 == 0 => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds written as integers give dtoa's text for the same
    /// seconds as an `f64` (without its `.0` for a whole number), over the
    /// whole range where they are used.
    #[test]
    fn milliseconds_are_written_as_dtoa_writes_the_seconds() {
        let mut samples: Vec<i64> = vec![
            0,
            1,
            5,
            10,
            12,
            100,
            120,
            123,
            999,
            1000,
            1001,
            1010,
            1100,
            59_999,
            86_400_000,
            34_560_000_500,
            1_761_264_000_000,
            1_795_737_600_123,
            EXACT_MILLIS - 1,
        ];
        // A linear congruential walk over every magnitude of the range.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..200_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let magnitude = 1i64 << (x >> 58).min(52);
            samples.push((x >> 11) as i64 % magnitude);
        }
        for millis in samples {
            let mut number = dtoa::Buffer::new();
            let mut text = Value::Millis(millis).text(&mut number);
            let mut ours = Vec::new();
            let len = text.len();
            text.write(&mut ours);
            let dtoa_text = dtoa::Buffer::new().format(millis as f64 / 1000.0).to_string();
            let expected = dtoa_text.strip_suffix(".0").unwrap_or(&dtoa_text).to_string();
            assert_eq!(String::from_utf8(ours).unwrap(), expected, "{millis}");
            assert_eq!(len, expected.len(), "{millis}");
        }
        // Out of that range, dtoa itself.
        let mut number = dtoa::Buffer::new();
        let mut out = Vec::new();
        Value::Millis(-1500).text(&mut number).write(&mut out);
        assert_eq!(out, b"-1.5");
    }
}

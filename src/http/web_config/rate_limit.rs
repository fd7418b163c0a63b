//! The exporter-toolkit's `rate_limit: {interval, burst}`: a token bucket
//! over every request but the probes, as Go's `rate.NewLimiter(rate.Every(
//! interval), burst)`: `burst` requests at once, then one per `interval`.

use std::time::{Duration, Instant};

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    /// A Go duration (`1s`, `100ms`, `1m30s`) or, as Go's YAML reads a
    /// bare number, nanoseconds.
    interval: Option<serde_norway::Value>,
    burst: Option<u64>,
}

#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    burst: f64,
    /// Tokens left and when they were counted.
    bucket: std::sync::Mutex<(f64, Instant)>,
}

impl RawRateLimit {
    /// None when `interval` is 0 or absent: the toolkit then has no limiter.
    pub(super) fn check(self) -> Result<Option<RateLimit>, String> {
        let interval = match self.interval {
            None => Duration::ZERO,
            Some(serde_norway::Value::Number(n)) => n
                .as_u64()
                .map(Duration::from_nanos)
                .ok_or_else(|| format!("rate_limit.interval: {n} is not a duration"))?,
            Some(serde_norway::Value::String(s)) => humantime::parse_duration(&s)
                .map_err(|e| format!("rate_limit.interval: {s:?} is not a duration ({e})"))?,
            Some(other) => return Err(format!("rate_limit.interval: {other:?} is not a duration")),
        };
        if interval.is_zero() {
            return Ok(None);
        }
        let burst = self.burst.unwrap_or(0) as f64;
        Ok(Some(RateLimit {
            interval,
            burst,
            bucket: std::sync::Mutex::new((burst, Instant::now())),
        }))
    }
}

impl RateLimit {
    /// Takes a token if there is one.
    pub fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, since) = *bucket;
        let earned = now.saturating_duration_since(since).as_secs_f64() / self.interval.as_secs_f64();
        let tokens = (tokens + earned).min(self.burst);
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            true
        } else {
            *bucket = (tokens, now);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(yaml: &str) -> Result<Option<RateLimit>, String> {
        serde_norway::from_str::<RawRateLimit>(yaml).unwrap().check()
    }

    #[test]
    fn burst_then_one_per_interval() {
        let limit = limit("{interval: 1s, burst: 2}").unwrap().unwrap();
        let start = limit.bucket.lock().unwrap().1;
        assert!(limit.allow_at(start));
        assert!(limit.allow_at(start));
        assert!(!limit.allow_at(start + Duration::from_millis(500)));
        assert!(limit.allow_at(start + Duration::from_millis(1000)));
        assert!(!limit.allow_at(start + Duration::from_millis(1100)));
        // Never more than the burst saved up.
        let later = start + Duration::from_secs(60);
        assert!(limit.allow_at(later) && limit.allow_at(later) && !limit.allow_at(later));
    }

    #[test]
    fn a_zero_interval_is_no_limit_and_bad_ones_are_named() {
        assert!(limit("{burst: 3}").unwrap().is_none());
        assert!(limit("{interval: 0}").unwrap().is_none());
        assert!(limit("{interval: 1000000000, burst: 1}").unwrap().is_some());
        assert!(limit("{interval: soon}")
            .unwrap_err()
            .starts_with("rate_limit.interval: \"soon\""));
        // Go's limiter with a zero burst allows nothing.
        assert!(!limit("{interval: 1s}").unwrap().unwrap().allow());
    }
}

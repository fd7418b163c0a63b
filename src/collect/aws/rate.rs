//! A polite client: the rate of calls the exporter allows itself for one
//! account. Unlimited until AWS throttles (an unthrottled read is as fast as
//! the concurrency allows), or `aws.max_requests_per_second` when set; on a
//! throttled answer it is cut (from the rate of the last second when it was
//! unlimited) to 0.7, and each answered call wins a little back, so that the
//! exporter stops draining a budget that the account's other callers share
//! and returns to speed once they are done. Calls are spaced evenly at the
//! allowed rate. The cut is to 0.7 of the rate, as in the SDK's own CUBIC
//! limiter, not a half: a half left a shared 5-calls-a-second budget a
//! third unused (a read of 60 users took 2.2 times what the rate allows).
//! Pure but for [`RequestRate::wait`]: the clock is passed in.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The rate never falls below this: a read must end within its deadline.
pub const MIN_RATE: f64 = 0.5;
/// What each answered call gives back, in calls a second: at 5 calls a
/// second, 1 more every 2 seconds.
const STEP: f64 = 0.1;
/// What a throttled answer leaves of the rate.
const CUT: f64 = 0.7;
/// Answers that come within this of a cut are of calls sent before it: they
/// do not cut again.
const CUT_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct RequestRate {
    cap: Option<f64>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// `None`: no limit.
    allowed: Option<f64>,
    /// When the next call may start.
    next: Option<Instant>,
    /// Starts of the calls of the last second.
    recent: VecDeque<Instant>,
    last_cut: Option<Instant>,
}

impl RequestRate {
    /// `cap`: `aws.max_requests_per_second`, the most ever allowed.
    pub fn new(cap: Option<f64>) -> RequestRate {
        RequestRate {
            cap,
            state: Mutex::new(State {
                allowed: cap,
                next: None,
                recent: VecDeque::new(),
                last_cut: None,
            }),
        }
    }

    pub fn cap(&self) -> Option<f64> {
        self.cap
    }

    /// Calls a second allowed now; `None`: no limit.
    pub fn allowed(&self) -> Option<f64> {
        self.state.lock().map(|s| s.allowed).unwrap_or(self.cap)
    }

    /// Takes the next slot for a call starting at `now`, and says how long
    /// to wait for it.
    pub fn reserve(&self, now: Instant) -> Duration {
        let Ok(mut state) = self.state.lock() else {
            return Duration::ZERO;
        };
        while state
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            state.recent.pop_front();
        }
        state.recent.push_back(now);
        let Some(rate) = state.allowed else {
            return Duration::ZERO;
        };
        let start = state.next.map_or(now, |next| next.max(now));
        state.next = Some(start + Duration::from_secs_f64(1.0 / rate));
        start - now
    }

    /// AWS throttled a call answered at `now`.
    pub fn throttled(&self, now: Instant) {
        let Ok(mut state) = self.state.lock() else { return };
        if state.last_cut.is_some_and(|cut| now.duration_since(cut) < CUT_EVERY) {
            return;
        }
        let from = state.allowed.unwrap_or(state.recent.len() as f64);
        state.allowed = Some((from * CUT).max(MIN_RATE));
        state.last_cut = Some(now);
    }

    /// AWS answered a call without throttling it.
    pub fn answered(&self) {
        let Ok(mut state) = self.state.lock() else { return };
        if let Some(rate) = state.allowed {
            let more = rate + STEP;
            state.allowed = Some(self.cap.map_or(more, |cap| more.min(cap)));
        }
    }

    /// Waits for the next slot.
    pub async fn wait(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The shortest time the API source can read an account of `users` users
/// and `keys` keys at `rate` calls a second: a `ListAccessKeys` a user, a
/// `GetAccessKeyLastUsed` a key, a page of authorization details per 1,000
/// users and the account's 3 calls.
pub fn api_read_at(users: usize, keys: usize, rate: f64) -> Duration {
    let calls = users + keys + users.div_ceil(1000).max(1) + 3;
    Duration::from_secs_f64(calls as f64 / rate.max(MIN_RATE))
}

/// The most users of one key each that the API source can read within
/// `interval` at `rate` calls a second: the inverse of [`api_read_at`], for
/// `check-config`, which knows the rate and the interval but no user count.
pub fn api_users_within(interval: Duration, rate: f64) -> usize {
    let fits = |users: usize| api_read_at(users, users, rate) <= interval;
    if !fits(0) {
        return 0;
    }
    // Each user costs at least 2 calls: the answer is below calls / 2.
    let (mut fitting, mut over) = (0, (interval.as_secs_f64() * rate.max(MIN_RATE)) as usize / 2 + 1);
    while over - fitting > 1 {
        let mid = fitting + (over - fitting) / 2;
        if fits(mid) {
            fitting = mid;
        } else {
            over = mid;
        }
    }
    fitting
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_within_an_interval_are_the_inverse_of_the_read_time() {
        let interval = Duration::from_secs(30 * 60);
        let users = api_users_within(interval, 5.0);
        // 9,000 calls: 2 a user, 5 pages of details, 3 for the account.
        assert_eq!(users, 4_496);
        assert!(api_read_at(users, users, 5.0) <= interval);
        assert!(api_read_at(users + 1, users + 1, 5.0) > interval);
        assert_eq!(api_users_within(Duration::from_secs(1), 0.5), 0);
    }

    /// The figures of docs/configuration.md's "IAM rate limits" table.
    #[test]
    fn a_read_takes_its_calls_over_the_rate() {
        assert_eq!(api_read_at(1_000, 1_000, 5.0).as_secs(), 400);
        assert_eq!(api_read_at(10_000, 10_000, 10.0).as_secs(), 2_001);
        assert_eq!(api_read_at(50_000, 50_000, 20.0).as_secs(), 5_002);
    }

    fn at(start: Instant, millis: u64) -> Instant {
        start + Duration::from_millis(millis)
    }

    #[test]
    fn without_a_cap_or_a_throttle_nothing_waits() {
        let rate = RequestRate::new(None);
        let t = Instant::now();
        for i in 0..100 {
            assert_eq!(rate.reserve(at(t, i)), Duration::ZERO);
        }
        assert_eq!(rate.allowed(), None);
    }

    #[test]
    fn a_cap_spaces_the_calls_evenly() {
        let rate = RequestRate::new(Some(4.0));
        let t = Instant::now();
        let waits: Vec<u64> = (0..4).map(|_| rate.reserve(t).as_millis() as u64).collect();
        assert_eq!(waits, [0, 250, 500, 750]);
        // Answers never raise it above the cap.
        for _ in 0..100 {
            rate.answered();
        }
        assert_eq!(rate.allowed(), Some(4.0));
    }

    /// The first throttle cuts the rate of the last second; throttles of
    /// the calls already in flight do not cut again; answers win it back.
    #[test]
    fn a_throttle_cuts_the_rate_and_answers_win_it_back() {
        let rate = RequestRate::new(None);
        let t = Instant::now();
        for i in 0..20 {
            rate.reserve(at(t, i * 40));
        }
        let close = |wanted: f64| (rate.allowed().unwrap() - wanted).abs() < 1e-9;
        rate.throttled(at(t, 800));
        assert!(close(14.0), "{:?}", rate.allowed());
        rate.throttled(at(t, 900));
        assert!(close(14.0), "within a second of the cut");
        rate.throttled(at(t, 1_900));
        assert!(close(9.8), "{:?}", rate.allowed());
        for _ in 0..10 {
            rate.answered();
        }
        assert!(close(10.8), "{:?}", rate.allowed());
        for i in 0..100 {
            rate.throttled(at(t, 3_000 + i * 1_000));
        }
        assert_eq!(rate.allowed(), Some(MIN_RATE));
    }
}

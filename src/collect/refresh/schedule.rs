//! When each account is read: at its own phase within the interval, at most
//! `max_concurrent_accounts` at once, never twice at the same time, and a
//! newly discovered account at once; a source that can tell that it changed
//! (a report file) is also looked at between its due reads, and its interval
//! counts from its last read instead of a phase. A read that fails is tried
//! again after a backoff (30 s, doubling, jittered, at most the interval),
//! not a whole interval later, and the account is back on its phase once a
//! read succeeds. Pure over `Instant`s (and the jitter a caller draws), so
//! the rules are tested without AWS and without waiting.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::collect::sources::Occasion;
use crate::domain::accounts::{self, Target};

/// The wait after an account's first failed read; doubled after each
/// further one, up to the interval.
pub const FIRST_RETRY: Duration = Duration::from_secs(30);

/// How long to wait before trying again after `failures` failed reads in a
/// row: `FIRST_RETRY` doubled for each failure after the first, at most
/// `interval`, then jittered down to half of that by `jitter` (0 to 1), so
/// that accounts that failed together (a shared throttle, an outage) do not
/// come back together.
pub fn retry_after(failures: u32, interval: Duration, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    let full = FIRST_RETRY.saturating_mul(1 << doublings).min(interval);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[derive(Debug)]
pub struct Schedule {
    /// Where the phases count from.
    origin: Instant,
    interval: Duration,
    max_concurrent: usize,
    /// When each account is next due; busy accounts keep their entry.
    due: HashMap<String, Instant>,
    /// Accounts being read.
    busy: BTreeSet<String>,
    next_discovery: Instant,
    /// For a source looked at between due reads: how often, and when each
    /// account is next looked at.
    looks: Option<(Duration, HashMap<String, Instant>)>,
    /// Failed reads in a row, of the accounts whose latest read failed.
    failures: HashMap<String, u32>,
}

impl Schedule {
    /// Every target due at its phase after `start`, or, looked at every
    /// `looks_every`, one interval after `start` (the first refresh has just
    /// read it); the next discovery one interval after it.
    pub fn new(
        start: Instant,
        interval: Duration,
        max_concurrent: usize,
        targets: &[Target],
        looks_every: Option<Duration>,
    ) -> Schedule {
        let first = |t: &Target| match looks_every {
            Some(_) => start + interval,
            None => start + phase(&t.account_id, interval),
        };
        Schedule {
            origin: start,
            interval,
            max_concurrent: max_concurrent.max(1),
            due: targets.iter().map(|t| (t.account_id.clone(), first(t))).collect(),
            busy: BTreeSet::new(),
            next_discovery: start + interval,
            looks: looks_every.map(|every| {
                let looks = targets.iter().map(|t| (t.account_id.clone(), start + every)).collect();
                (every, looks)
            }),
            failures: HashMap::new(),
        }
    }

    pub fn discovery_due(&self, now: Instant) -> bool {
        now >= self.next_discovery
    }

    /// After a discovery at `now` found `targets`: an account not known
    /// before is due at once (then on its phase), one no longer listed
    /// leaves the schedule.
    pub fn discovered(&mut self, now: Instant, targets: &[Target]) {
        let ids: BTreeSet<&str> = targets.iter().map(|t| t.account_id.as_str()).collect();
        self.due.retain(|id, _| ids.contains(id.as_str()));
        self.failures.retain(|id, _| ids.contains(id.as_str()));
        if let Some((_, looks)) = &mut self.looks {
            looks.retain(|id, _| ids.contains(id.as_str()));
        }
        for id in ids {
            self.due.entry(id.to_string()).or_insert(now);
        }
        self.next_discovery = now + self.interval;
    }

    /// The targets to start at `now`, with why: due, or to be looked at;
    /// not being read, as many as there are free slots, in `targets` order.
    /// Each is marked busy. A due account is due again one interval after
    /// its slot, but never sooner than half an interval from now, so that a
    /// late start does not bring two reads together; one that is looked at
    /// stays due until a read of it publishes (see [`Schedule::finished`]).
    pub fn start_due(&mut self, now: Instant, targets: &[Target]) -> Vec<(Target, Occasion)> {
        let free = self.max_concurrent.saturating_sub(self.busy.len());
        let started: Vec<(Target, Occasion)> = targets
            .iter()
            .filter(|t| !self.busy.contains(&t.account_id))
            .filter_map(|t| Some((t.clone(), self.occasion(&t.account_id, now)?)))
            .take(free)
            .collect();
        for (target, occasion) in &started {
            if *occasion == Occasion::Due && self.looks.is_none() {
                let next = self.due.get(&target.account_id).copied().unwrap_or(now) + self.interval;
                self.due
                    .insert(target.account_id.clone(), next.max(now + self.interval / 2));
            }
            self.busy.insert(target.account_id.clone());
        }
        started
    }

    fn occasion(&self, account_id: &str, now: Instant) -> Option<Occasion> {
        if self.due.get(account_id).is_some_and(|d| *d <= now) {
            return Some(Occasion::Due);
        }
        let (_, looks) = self.looks.as_ref()?;
        looks
            .get(account_id)
            .is_none_or(|l| *l <= now)
            .then_some(Occasion::Look)
    }

    /// A read of `account_id` finished at `now`; `published`: it had
    /// something new. A source that is looked at is next looked at one look
    /// later, and due one interval after its last published read, however
    /// that read came about: a version read because it changed is fresh.
    pub fn finished(&mut self, account_id: &str, now: Instant, published: bool) {
        self.busy.remove(account_id);
        if let Some((every, looks)) = &mut self.looks {
            looks.insert(account_id.to_string(), now + *every);
            if published {
                self.due.insert(account_id.to_string(), now + self.interval);
            }
        }
    }

    /// The read of `account_id` that finished at `now` failed: it is due
    /// again after [`retry_after`] (`jitter`: 0 to 1, drawn by the caller),
    /// or at its regular time if that comes sooner. Returns when.
    pub fn failed(&mut self, account_id: &str, now: Instant, jitter: f64) -> Instant {
        let failures = self.failures.entry(account_id.to_string()).or_insert(0);
        *failures = failures.saturating_add(1);
        let retry = now + retry_after(*failures, self.interval, jitter);
        let due = self.due.entry(account_id.to_string()).or_insert(retry);
        *due = (*due).min(retry);
        *due
    }

    /// The read of `account_id` that finished at `now` succeeded: after
    /// failures, back on its phase, at least half an interval from now as
    /// after any due read.
    pub fn succeeded(&mut self, account_id: &str, now: Instant) {
        if self.failures.remove(account_id).is_none() || self.looks.is_some() {
            return;
        }
        let slot = self.origin + phase(account_id, self.interval);
        let earliest = now + self.interval / 2;
        let behind = earliest.saturating_duration_since(slot).as_nanos();
        let step = self.interval.as_nanos().max(1);
        let steps = behind.div_ceil(step).min(u32::MAX as u128) as u32;
        self.due.insert(account_id.to_string(), slot + self.interval * steps);
    }

    /// Failed reads in a row of `account_id`; 0 after a success.
    pub fn failures(&self, account_id: &str) -> u32 {
        self.failures.get(account_id).copied().unwrap_or(0)
    }

    /// When something is next to do, unless a read finishes first.
    pub fn next_wake(&self) -> Instant {
        let looks = self.looks.iter().flat_map(|(_, looks)| looks);
        self.due
            .iter()
            .chain(looks)
            .filter(|(id, _)| !self.busy.contains(*id))
            .map(|(_, at)| *at)
            .chain([self.next_discovery])
            .min()
            .unwrap_or(self.next_discovery)
    }
}

/// A stable offset of the account within the interval, so that refreshes
/// spread over it instead of bursting at its start, and an account keeps its
/// slot when others come and go.
pub fn phase(account_id: &str, interval: Duration) -> Duration {
    let slots = interval.as_millis().max(1) as u64;
    let hash = accounts::shard_of(account_id, u32::MAX) as u64;
    Duration::from_millis(hash % slots)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(1800);

    fn targets(ids: &[&str]) -> Vec<Target> {
        ids.iter()
            .map(|id| Target {
                account_id: id.to_string(),
                name: None,
                role: None,
            })
            .collect()
    }

    fn ids(started: &[(Target, Occasion)]) -> Vec<&str> {
        started.iter().map(|(t, _)| t.account_id.as_str()).collect()
    }

    const A: &str = "111111111111";
    const B: &str = "222222222222";
    const C: &str = "333333333333";

    #[test]
    fn accounts_start_at_their_phase_and_again_one_interval_later() {
        let start = Instant::now();
        let all = targets(&[A]);
        let mut schedule = Schedule::new(start, INTERVAL, 4, &all, None);
        let at = start + phase(A, INTERVAL);
        assert_eq!(schedule.next_wake(), at);
        if at > start {
            assert!(schedule.start_due(at - Duration::from_millis(1), &all).is_empty());
        }
        assert_eq!(ids(&schedule.start_due(at, &all)), [A]);
        // Busy: not due again, not what the loop wakes for.
        assert!(schedule.start_due(at + INTERVAL * 3, &all).is_empty());
        assert_eq!(schedule.next_wake(), start + INTERVAL, "the next discovery");
        schedule.finished(A, start, true);
        assert_eq!(schedule.next_wake(), (at + INTERVAL).min(start + INTERVAL));
        assert_eq!(ids(&schedule.start_due(at + INTERVAL, &all)), [A]);
    }

    #[test]
    fn a_late_start_is_followed_by_at_least_half_an_interval() {
        let start = Instant::now();
        let all = targets(&[A]);
        let mut schedule = Schedule::new(start, INTERVAL, 1, &all, None);
        let late = start + phase(A, INTERVAL) + INTERVAL - Duration::from_secs(1);
        assert_eq!(ids(&schedule.start_due(late, &all)), [A]);
        schedule.finished(A, start, true);
        assert!(schedule
            .start_due(late + INTERVAL / 2 - Duration::from_secs(1), &all)
            .is_empty());
        assert_eq!(ids(&schedule.start_due(late + INTERVAL / 2, &all)), [A]);
    }

    #[test]
    fn at_most_max_concurrent_accounts_are_read_at_once() {
        let start = Instant::now();
        let all = targets(&[A, B, C]);
        let mut schedule = Schedule::new(start, INTERVAL, 2, &all, None);
        let now = start + INTERVAL;
        assert_eq!(ids(&schedule.start_due(now, &all)), [A, B]);
        assert!(schedule.start_due(now, &all).is_empty(), "no free slot");
        schedule.finished(B, start, true);
        assert_eq!(ids(&schedule.start_due(now, &all)), [C]);
    }

    #[test]
    fn discovery_adds_accounts_at_once_and_drops_the_gone() {
        let start = Instant::now();
        let before = targets(&[A, B]);
        let mut schedule = Schedule::new(start, INTERVAL, 4, &before, None);
        assert!(!schedule.discovery_due(start + INTERVAL - Duration::from_millis(1)));
        let now = start + INTERVAL;
        assert!(schedule.discovery_due(now));
        // A is being read when discovery drops it.
        let _ = schedule.start_due(now, &targets(&[A]));
        let after = targets(&[C]);
        schedule.discovered(now, &after);
        assert!(!schedule.discovery_due(now));
        assert_eq!(schedule.next_wake(), now, "C is due at once");
        assert_eq!(ids(&schedule.start_due(now, &after)), [C]);
        schedule.finished(A, start, true);
        schedule.finished(C, start, true);
        assert!(schedule.start_due(now + INTERVAL * 10, &targets(&[A, B])).is_empty());
        assert_eq!(
            schedule.next_wake(),
            now + INTERVAL,
            "C's next read and the next discovery"
        );
    }

    /// A report file: due one interval after its last published read, looked
    /// at every look in between, and due at once again after a due read
    /// that found nothing to take (the file was being written).
    #[test]
    fn a_watched_source_is_looked_at_and_due_an_interval_after_its_last_read() {
        let look = Duration::from_secs(2);
        let start = Instant::now();
        let all = targets(&[""]);
        let mut schedule = Schedule::new(start, INTERVAL, 1, &all, Some(look));
        assert_eq!(schedule.next_wake(), start + look);
        assert!(schedule
            .start_due(start + look - Duration::from_millis(1), &all)
            .is_empty());
        let started = schedule.start_due(start + look, &all);
        assert_eq!(started[0].1, Occasion::Look);
        assert!(schedule.start_due(start + INTERVAL, &all).is_empty(), "busy");
        // The look found the file changed and published it.
        let read = start + look + Duration::from_millis(300);
        schedule.finished("", read, true);
        assert_eq!(schedule.next_wake(), read + look);
        assert_eq!(schedule.start_due(read + INTERVAL - look, &all)[0].1, Occasion::Look);
        schedule.finished("", read + INTERVAL - look, false);
        assert!(schedule.discovery_due(read + INTERVAL - look));
        schedule.discovered(read + INTERVAL - look, &all);
        let due = schedule.start_due(read + INTERVAL, &all);
        assert_eq!(
            due[0].1,
            Occasion::Due,
            "an interval after the read, not after the start"
        );
        // Nothing taken: due again at once.
        schedule.finished("", read + INTERVAL, false);
        assert_eq!(schedule.next_wake(), read + INTERVAL);
        assert_eq!(schedule.start_due(read + INTERVAL, &all)[0].1, Occasion::Due);
        schedule.finished("", read + INTERVAL + look, true);
        assert_eq!(schedule.next_wake(), read + INTERVAL + look * 2);
        assert_eq!(schedule.start_due(read + INTERVAL * 2 + look, &all)[0].1, Occasion::Due);
    }

    #[test]
    fn the_retry_wait_doubles_from_30s_up_to_the_interval_with_jitter() {
        let s = Duration::from_secs;
        assert_eq!(retry_after(1, INTERVAL, 1.0), s(30));
        assert_eq!(retry_after(1, INTERVAL, 0.0), s(15), "jitter takes off at most half");
        assert_eq!(retry_after(2, INTERVAL, 1.0), s(60));
        assert_eq!(retry_after(3, INTERVAL, 1.0), s(120));
        assert_eq!(retry_after(7, INTERVAL, 1.0), INTERVAL, "30 s x 64 is capped");
        assert_eq!(retry_after(u32::MAX, INTERVAL, 1.0), INTERVAL);
        assert_eq!(retry_after(1, s(10), 1.0), s(10), "never more than the interval");
        assert_eq!(retry_after(2, INTERVAL, 0.5), s(45));
    }

    /// A failed account is tried again after the backoff, not an interval
    /// later, again and again with longer waits, and back on its phase once
    /// a read succeeds.
    #[test]
    fn a_failed_account_is_retried_soon_and_back_on_its_phase_after_success() {
        let start = Instant::now();
        let all = targets(&[A, B]);
        let mut schedule = Schedule::new(start, INTERVAL, 4, &all, None);
        let at = start + phase(A, INTERVAL);
        assert_eq!(ids(&schedule.start_due(at, &targets(&[A]))), [A]);
        let done = at + Duration::from_secs(5);
        schedule.finished(A, done, true);
        let retry = schedule.failed(A, done, 1.0);
        assert_eq!(retry, done + Duration::from_secs(30));
        assert_eq!(schedule.failures(A), 1);
        assert!(schedule.next_wake() <= retry);
        assert!(schedule
            .start_due(retry - Duration::from_millis(1), &targets(&[A]))
            .is_empty());
        assert_eq!(ids(&schedule.start_due(retry, &targets(&[A]))), [A]);
        // The second failure waits twice as long.
        schedule.finished(A, retry, true);
        let again = schedule.failed(A, retry, 1.0);
        assert_eq!(again, retry + Duration::from_secs(60));
        assert_eq!(ids(&schedule.start_due(again, &targets(&[A]))), [A]);
        // Success: due at its phase again, the first slot at least half an
        // interval away.
        let ok = again + Duration::from_secs(1);
        schedule.finished(A, ok, true);
        schedule.succeeded(A, ok);
        assert_eq!(schedule.failures(A), 0);
        let next = at + INTERVAL;
        assert!(next >= ok + INTERVAL / 2);
        assert!(schedule
            .start_due(next - Duration::from_millis(1), &targets(&[A]))
            .is_empty());
        assert_eq!(ids(&schedule.start_due(next, &targets(&[A]))), [A]);
        // B never failed: untouched.
        assert_eq!(schedule.failures(B), 0);
    }

    /// Failing before its phase (the first refresh at start): the retry
    /// comes first, and a regular time that is sooner than the retry stays.
    #[test]
    fn a_retry_never_postpones_a_sooner_regular_read() {
        let start = Instant::now();
        let all = targets(&[A]);
        let mut schedule = Schedule::new(start, INTERVAL, 4, &all, None);
        let regular = start + phase(A, INTERVAL);
        let retry = schedule.failed(A, start, 1.0);
        assert_eq!(retry, regular.min(start + Duration::from_secs(30)));
        // Many failures later the wait is the interval, but the due time
        // stays the sooner one.
        for _ in 0..10 {
            schedule.failed(A, start, 1.0);
        }
        assert!(schedule.next_wake() <= start + Duration::from_secs(30));
    }

    #[test]
    fn phases_spread_accounts_over_the_interval_and_stay_put() {
        let ids: Vec<String> = (0..200u64)
            .map(|i| format!("{:012}", 200_000_000_000 + i * 104_729))
            .collect();
        let phases: Vec<Duration> = ids.iter().map(|id| phase(id, INTERVAL)).collect();
        assert!(phases.iter().all(|p| *p < INTERVAL));
        assert_eq!(
            phases,
            ids.iter().map(|id| phase(id, INTERVAL)).collect::<Vec<_>>(),
            "stable"
        );
        // Every tenth of the interval gets some accounts: no burst at its start.
        let mut tenths = [0usize; 10];
        for p in &phases {
            tenths[(p.as_secs_f64() / INTERVAL.as_secs_f64() * 10.0) as usize] += 1;
        }
        assert!(tenths.iter().all(|n| (8..=35).contains(n)), "{tenths:?}");
    }
}

//! When each account is read: at its own phase within the interval, at most
//! `max_concurrent_accounts` at once, never twice at the same time, and a
//! newly discovered account at once. Pure over `Instant`s, so the rules are
//! tested without AWS and without waiting.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::domain::accounts::{self, Target};

#[derive(Debug)]
pub struct Schedule {
    interval: Duration,
    max_concurrent: usize,
    /// When each account is next due; busy accounts keep their entry.
    due: HashMap<String, Instant>,
    /// Accounts being read.
    busy: BTreeSet<String>,
    next_discovery: Instant,
}

impl Schedule {
    /// Every target due at its phase after `start`; the next discovery one
    /// interval after it.
    pub fn new(start: Instant, interval: Duration, max_concurrent: usize, targets: &[Target]) -> Schedule {
        Schedule {
            interval,
            max_concurrent: max_concurrent.max(1),
            due: targets
                .iter()
                .map(|t| (t.account_id.clone(), start + phase(&t.account_id, interval)))
                .collect(),
            busy: BTreeSet::new(),
            next_discovery: start + interval,
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
        for id in ids {
            self.due.entry(id.to_string()).or_insert(now);
        }
        self.next_discovery = now + self.interval;
    }

    /// The targets to start at `now`: due, not being read, as many as there
    /// are free slots, in `targets` order. Each is marked busy and due again
    /// one interval after its slot, but never sooner than half an interval
    /// from now, so that a late start does not bring two reads together.
    pub fn start_due(&mut self, now: Instant, targets: &[Target]) -> Vec<Target> {
        let free = self.max_concurrent.saturating_sub(self.busy.len());
        let due: Vec<Target> = targets
            .iter()
            .filter(|t| !self.busy.contains(&t.account_id) && self.due.get(&t.account_id).is_some_and(|d| *d <= now))
            .take(free)
            .cloned()
            .collect();
        for target in &due {
            let next = self.due.get(&target.account_id).copied().unwrap_or(now) + self.interval;
            self.due
                .insert(target.account_id.clone(), next.max(now + self.interval / 2));
            self.busy.insert(target.account_id.clone());
        }
        due
    }

    pub fn finished(&mut self, account_id: &str) {
        self.busy.remove(account_id);
    }

    /// When something is next to do, unless a read finishes first.
    pub fn next_wake(&self) -> Instant {
        self.due
            .iter()
            .filter(|(id, _)| !self.busy.contains(*id))
            .map(|(_, due)| *due)
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

    fn ids(targets: &[Target]) -> Vec<&str> {
        targets.iter().map(|t| t.account_id.as_str()).collect()
    }

    const A: &str = "111111111111";
    const B: &str = "222222222222";
    const C: &str = "333333333333";

    #[test]
    fn accounts_start_at_their_phase_and_again_one_interval_later() {
        let start = Instant::now();
        let all = targets(&[A]);
        let mut schedule = Schedule::new(start, INTERVAL, 4, &all);
        let at = start + phase(A, INTERVAL);
        assert_eq!(schedule.next_wake(), at);
        if at > start {
            assert!(schedule.start_due(at - Duration::from_millis(1), &all).is_empty());
        }
        assert_eq!(ids(&schedule.start_due(at, &all)), [A]);
        // Busy: not due again, not what the loop wakes for.
        assert!(schedule.start_due(at + INTERVAL * 3, &all).is_empty());
        assert_eq!(schedule.next_wake(), start + INTERVAL, "the next discovery");
        schedule.finished(A);
        assert_eq!(schedule.next_wake(), (at + INTERVAL).min(start + INTERVAL));
        assert_eq!(ids(&schedule.start_due(at + INTERVAL, &all)), [A]);
    }

    #[test]
    fn a_late_start_is_followed_by_at_least_half_an_interval() {
        let start = Instant::now();
        let all = targets(&[A]);
        let mut schedule = Schedule::new(start, INTERVAL, 1, &all);
        let late = start + phase(A, INTERVAL) + INTERVAL - Duration::from_secs(1);
        assert_eq!(ids(&schedule.start_due(late, &all)), [A]);
        schedule.finished(A);
        assert!(schedule
            .start_due(late + INTERVAL / 2 - Duration::from_secs(1), &all)
            .is_empty());
        assert_eq!(ids(&schedule.start_due(late + INTERVAL / 2, &all)), [A]);
    }

    #[test]
    fn at_most_max_concurrent_accounts_are_read_at_once() {
        let start = Instant::now();
        let all = targets(&[A, B, C]);
        let mut schedule = Schedule::new(start, INTERVAL, 2, &all);
        let now = start + INTERVAL;
        assert_eq!(ids(&schedule.start_due(now, &all)), [A, B]);
        assert!(schedule.start_due(now, &all).is_empty(), "no free slot");
        schedule.finished(B);
        assert_eq!(ids(&schedule.start_due(now, &all)), [C]);
    }

    #[test]
    fn discovery_adds_accounts_at_once_and_drops_the_gone() {
        let start = Instant::now();
        let before = targets(&[A, B]);
        let mut schedule = Schedule::new(start, INTERVAL, 4, &before);
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
        schedule.finished(A);
        schedule.finished(C);
        assert!(schedule.start_due(now + INTERVAL * 10, &targets(&[A, B])).is_empty());
        assert_eq!(
            schedule.next_wake(),
            now + INTERVAL,
            "C's next read and the next discovery"
        );
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

//! The breaker between this process and the store: it opens after [`FAILURES_TO_OPEN`] operations in a row failed
//! (not on one slow reply: a stall shorter than a few deadlines leaves it closed), keeps the store unasked for the
//! cooldown, then lets one probe through (half-open) while the other callers keep failing fast; the probe's success
//! closes it, its failure opens it for another cooldown. Releases and cancels never go through an open breaker: they
//! wait in the pending queue (`super::pending`), replayed once the store answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Operations in a row that must fail before the breaker opens. One failure is a slow reply or a dead pooled
/// connection more often than an outage; three in a row (each up to a deadline) is an outage.
pub(crate) const FAILURES_TO_OPEN: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Operations go through; `failures` in a row so far.
    Closed { failures: u32 },
    /// Operations fail fast until `until`.
    Open { until: Instant },
    /// One probe went through at `since`; the others fail fast until it ends.
    HalfOpen { since: Instant },
}

pub struct Breaker {
    cooldown: Duration,
    /// The longest a probe can take (the store deadline): a probe not heard of after twice this lets another through.
    probe_time: Duration,
    state: Mutex<State>,
    openings: AtomicU64,
}

impl Breaker {
    pub fn new(cooldown: Duration, probe_time: Duration) -> Self {
        Breaker { cooldown, probe_time, state: Mutex::new(State::Closed { failures: 0 }), openings: AtomicU64::new(0) }
    }

    /// Whether an operation may go to the store now; if not, how long until the breaker will let one through.
    /// After the cooldown the first caller is let through as the probe.
    pub fn admit(&self, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock();
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } if now < until => Err(until - now),
            State::HalfOpen { since } if now < since + self.probe_time * 2 => Err(since + self.probe_time - now),
            State::Open { .. } | State::HalfOpen { .. } => {
                *state = State::HalfOpen { since: now };
                Ok(())
            }
        }
    }

    /// The store answered. True when that ends an outage (a failure or more before it): what was kept for the
    /// store's return is due.
    pub fn succeeded(&self) -> bool {
        let mut state = self.state.lock();
        let recovered = *state != State::Closed { failures: 0 };
        *state = State::Closed { failures: 0 };
        recovered
    }

    /// An operation failed (not answered within the deadline, or the connection broke).
    pub fn failed(&self, now: Instant) {
        let mut state = self.state.lock();
        let open = match *state {
            State::Closed { failures } if failures + 1 < FAILURES_TO_OPEN => {
                *state = State::Closed { failures: failures + 1 };
                false
            }
            State::Closed { .. } | State::HalfOpen { .. } => true,
            // An operation that started before the breaker opened: it stays open as it is.
            State::Open { .. } => false,
        };
        if open {
            *state = State::Open { until: now + self.cooldown };
            self.openings.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How long callers are kept from the store from `now` (zero when closed, or when a probe may go).
    pub fn wait(&self, now: Instant) -> Duration {
        match *self.state.lock() {
            State::Closed { .. } => Duration::ZERO,
            State::Open { until } => until.saturating_duration_since(now),
            State::HalfOpen { since } => (since + self.probe_time).saturating_duration_since(now),
        }
    }

    /// Open or half-open: the store is not asked by every caller.
    pub fn is_open(&self) -> bool {
        !matches!(*self.state.lock(), State::Closed { .. })
    }

    pub fn openings(&self) -> u64 {
        self.openings.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_millis(1_000);
    const PROBE: Duration = Duration::from_millis(250);

    fn breaker() -> (Breaker, Instant) {
        (Breaker::new(COOLDOWN, PROBE), Instant::now())
    }

    #[test]
    fn opens_only_after_failures_in_a_row() {
        let (b, t) = breaker();
        for _ in 1..FAILURES_TO_OPEN {
            b.failed(t);
            assert_eq!(b.admit(t), Ok(()), "fewer than {FAILURES_TO_OPEN} failures keep it closed");
        }
        assert!(b.succeeded(), "a success after failures is a recovery");
        for _ in 1..FAILURES_TO_OPEN {
            b.failed(t);
        }
        assert_eq!(b.admit(t), Ok(()), "a success in between starts the count again");
        b.failed(t);
        assert!(b.is_open());
        assert_eq!(b.admit(t), Err(COOLDOWN));
        assert_eq!(b.wait(t + COOLDOWN / 4), COOLDOWN * 3 / 4);
        assert_eq!(b.openings(), 1);
    }

    #[test]
    fn after_the_cooldown_one_probe_goes_and_the_others_fail_fast_until_it_ends() {
        let (b, t) = breaker();
        for _ in 0..FAILURES_TO_OPEN {
            b.failed(t);
        }
        let after = t + COOLDOWN;
        assert_eq!(b.admit(after), Ok(()), "the probe");
        assert_eq!(b.admit(after), Err(PROBE), "the others wait for the probe");
        b.failed(after);
        assert_eq!(b.admit(after), Err(COOLDOWN), "a failed probe opens it for another cooldown");
        assert_eq!(b.openings(), 2);
        assert_eq!(b.admit(after + COOLDOWN), Ok(()), "the next probe");
        assert!(b.succeeded());
        assert_eq!(b.admit(after + COOLDOWN), Ok(()));
        assert!(!b.is_open());
        assert!(!b.succeeded(), "a success with no failure before it is no recovery");
    }

    #[test]
    fn a_probe_never_heard_of_lets_another_through() {
        let (b, t) = breaker();
        for _ in 0..FAILURES_TO_OPEN {
            b.failed(t);
        }
        assert_eq!(b.admit(t + COOLDOWN), Ok(()));
        assert!(b.admit(t + COOLDOWN + PROBE).is_err());
        assert_eq!(b.admit(t + COOLDOWN + PROBE * 2), Ok(()), "the first probe's caller vanished");
    }

    #[test]
    fn a_late_failure_does_not_extend_an_open_breaker() {
        let (b, t) = breaker();
        for _ in 0..FAILURES_TO_OPEN {
            b.failed(t);
        }
        b.failed(t + COOLDOWN / 2);
        assert_eq!(b.admit(t + COOLDOWN), Ok(()));
        assert_eq!(b.openings(), 1);
    }
}

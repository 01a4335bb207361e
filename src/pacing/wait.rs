//! The one wait policy: after a refusal, give up, or sleep how long before asking again. The blocking wait
//! (`Limiter::acquire_wait`), the bounded step the bindings call (`Limiter::acquire_until`) and every binding's async
//! path follow it; nothing else decides when to give up.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::clock::Clock;
use super::types::{Permit, Refusal};
use crate::vocab::Reason;

/// On a manual clock time moves only by `advance`/`set_now`, which wake waiters; they re-ask this often regardless.
pub const MANUAL_RECHECK_MS: u64 = 50;
/// When a backend cannot see every release (other processes share its state), a concurrency wait re-asks this often.
pub const SHARED_RELEASE_POLL_MS: u64 = 25;
/// Stands for "no deadline".
pub const NO_DEADLINE: u64 = u64::MAX;

/// One step of a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Granted(Permit),
    /// Not yet: ask again after `sleep_ms` (sooner if woken by a release on this limiter).
    AskAgain {
        sleep_ms: u64,
        refusal: Refusal,
    },
    /// The deadline has passed, or the wait certainly ends after it.
    GiveUp(Refusal),
}

/// What to do after `refusal` at `now`, with `deadline` on the same clock. A wait that certainly ends after the
/// deadline gives up at once, except for concurrency, where a release may come sooner than the permits' expiry.
pub fn after_refusal(refusal: Refusal, now: u64, deadline: u64, clock: Clock, sees_every_release: bool) -> Step {
    let remaining = deadline.saturating_sub(now);
    let concurrency = refusal.reason == Reason::Concurrency;
    if remaining == 0 || (refusal.wait_ms > remaining && !concurrency) {
        return Step::GiveUp(refusal);
    }
    let mut sleep_ms = match clock {
        Clock::Monotonic => refusal.wait_ms.min(remaining).max(1),
        Clock::Manual => MANUAL_RECHECK_MS,
    };
    if concurrency && !sees_every_release {
        sleep_ms = sleep_ms.min(SHARED_RELEASE_POLL_MS);
    }
    Step::AskAgain { sleep_ms, refusal }
}

/// `now + timeout_ms` on the limiter's clock, saturating ([`NO_DEADLINE`] never passes).
pub fn deadline(now: u64, timeout_ms: u64) -> u64 {
    now.saturating_add(timeout_ms)
}

/// Threads blocked in a wait on one limiter: woken when capacity may have been freed here (a release, a cancel, a
/// clock move, new limits), or for good by `interrupt`.
#[derive(Default)]
pub(crate) struct Waiters {
    generation: Mutex<u64>,
    signal: Condvar,
    /// Threads inside a wait; with none, a release signals nobody.
    count: AtomicUsize,
    interrupted: AtomicBool,
}

/// Counts a thread in while it waits.
pub(crate) struct Waiting<'a>(&'a Waiters);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Waiters {
    pub fn enter(&self) -> Waiting<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        Waiting(self)
    }

    pub fn wake(&self) {
        // SeqCst pairs with `enter`: either the waiter sees our change, or we see it waiting.
        if self.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        *self.generation.lock() += 1;
        self.signal.notify_all();
    }

    /// Ends every wait, now and later.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        *self.generation.lock() += 1;
        self.signal.notify_all();
    }

    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    pub fn generation(&self) -> u64 {
        *self.generation.lock()
    }

    /// Sleeps up to `ms`, or until woken after `generation` was read.
    pub fn sleep(&self, generation: u64, ms: u64) {
        let mut current = self.generation.lock();
        if *current == generation && !self.is_interrupted() {
            self.signal.wait_for(&mut current, Duration::from_millis(ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(wait_ms: u64, reason: Reason) -> Refusal {
        Refusal::new(wait_ms, reason)
    }

    #[test]
    fn gives_up_only_when_the_wait_certainly_ends_too_late() {
        let minute = refusal(5_000, Reason::Minute);
        assert_eq!(after_refusal(minute, 0, 4_999, Clock::Monotonic, true), Step::GiveUp(minute));
        assert_eq!(
            after_refusal(minute, 0, 5_000, Clock::Monotonic, true),
            Step::AskAgain { sleep_ms: 5_000, refusal: minute }
        );
        assert_eq!(after_refusal(minute, 10, 10, Clock::Monotonic, true), Step::GiveUp(minute), "deadline reached");
        let busy = refusal(60_000, Reason::Concurrency);
        assert_eq!(
            after_refusal(busy, 0, 1_000, Clock::Monotonic, true),
            Step::AskAgain { sleep_ms: 1_000, refusal: busy },
            "a release may come before the permits expire"
        );
    }

    #[test]
    fn sleeps_by_clock_and_backend() {
        let busy = refusal(60_000, Reason::Concurrency);
        assert_eq!(
            after_refusal(busy, 0, NO_DEADLINE, Clock::Monotonic, false),
            Step::AskAgain { sleep_ms: SHARED_RELEASE_POLL_MS, refusal: busy },
            "releases elsewhere signal nobody here"
        );
        let day = refusal(3_600_000, Reason::Day);
        assert_eq!(
            after_refusal(day, 0, NO_DEADLINE, Clock::Manual, true),
            Step::AskAgain { sleep_ms: MANUAL_RECHECK_MS, refusal: day }
        );
        assert_eq!(deadline(5, u64::MAX), NO_DEADLINE);
    }
}

//! The one wait policy: after a refusal, give up, or sleep how long before asking again. The blocking wait
//! (`Limiter::acquire_wait`), the bounded step the bindings call (`Limiter::acquire_until`) and every binding's async
//! path follow it; nothing else decides when to give up.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::clock::Clock;
use super::types::{Permit, Refusal};
use crate::vocab::Reason;

/// On a manual clock time moves only by `advance`/`set_now`, which wake waiters; they re-ask this often regardless.
pub const MANUAL_RECHECK_MS: u64 = 50;
/// A concurrency refusal that no release here can end early (the caller does not block in the library, or other
/// processes share the state) asks again after about this long, jittered by ±50 %.
pub const CONCURRENCY_POLL_MS: u64 = 25;
/// The same poll under its earlier name (it served shared stores only).
#[deprecated(note = "the poll serves every concurrency wait no release wakes: CONCURRENCY_POLL_MS")]
pub const SHARED_RELEASE_POLL_MS: u64 = CONCURRENCY_POLL_MS;
/// Tenants whose turns a limiter keeps before it forgets those already past.
const SHARED_POLL_TENANTS: usize = 64;
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

/// How a waiter refused for concurrency learns that a slot may be free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// A release on this limiter wakes it: it blocks in the library on a backend that sees every release.
    OnRelease,
    /// Only by asking again, after this many milliseconds (the limiter spaces these polls out between its waiters).
    Poll(u64),
}

/// [`after_refusal_with`] for a caller that blocks in the library: a release wakes it when the backend sees every
/// release, else it polls every [`CONCURRENCY_POLL_MS`] (unjittered; the limiter's own waits use
/// [`after_refusal_with`] and space their polls out).
pub fn after_refusal(refusal: Refusal, now: u64, deadline: u64, clock: Clock, sees_every_release: bool) -> Step {
    let wakeup = if sees_every_release { Wakeup::OnRelease } else { Wakeup::Poll(CONCURRENCY_POLL_MS) };
    after_refusal_with(refusal, now, deadline, clock, wakeup)
}

/// What to do after `refusal` at `now`, with `deadline` on the same clock. A wait that certainly ends after the
/// deadline gives up at once, except for concurrency, where a release may come sooner than the permits' expiry:
/// such a wait sleeps until the expiry when a release will wake it, and otherwise asks again after `wakeup`'s poll.
pub fn after_refusal_with(refusal: Refusal, now: u64, deadline: u64, clock: Clock, wakeup: Wakeup) -> Step {
    let remaining = deadline.saturating_sub(now);
    let concurrency = refusal.reason == Reason::Concurrency;
    if remaining == 0 || (refusal.wait_ms > remaining && !concurrency) {
        return Step::GiveUp(refusal);
    }
    let mut sleep_ms = match clock {
        Clock::Monotonic => refusal.wait_ms.min(remaining).max(1),
        Clock::Manual => MANUAL_RECHECK_MS,
    };
    if let (true, Wakeup::Poll(poll_ms)) = (concurrency, wakeup) {
        sleep_ms = sleep_ms.min(poll_ms.max(1));
    }
    Step::AskAgain { sleep_ms, refusal }
}

/// `ms` scaled by a random factor in [0.5, 1.5), so that waiters started together do not ask together.
fn jittered(ms: u64) -> u64 {
    static SEED: AtomicU64 = AtomicU64::new(0);
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    let mut x = SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        ^ (START.elapsed().as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32);
    // splitmix64's finaliser: every input bit moves every output bit.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    ms / 2 + x % ms.max(1)
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
    /// When this process's next re-ask of a shared store after a concurrency refusal is due, by tenant (see
    /// [`Waiters::concurrency_poll`]).
    next_shared_poll: Mutex<HashMap<String, Instant>>,
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

    /// A release on a shared store frees one slot: it wakes one waiter of this process, not all of them (each
    /// would ask the store, and all but one be refused again). Waiters that miss it ask again at their turn
    /// (see [`Waiters::concurrency_poll`]), as they do for a release in another process.
    pub fn wake_one(&self) {
        if self.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        let _held = self.generation.lock();
        self.signal.notify_one();
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

    /// How a waiter refused for concurrency learns of a free slot. Blocking in the library on a backend that sees
    /// every release, the release wakes it. A caller that does not block (async code; `max_block` zero) polls
    /// every [`CONCURRENCY_POLL_MS`], jittered. On a shared store the re-asks of this limiter's waiters for one
    /// tenant take turns: each gets the tenant's next free turn, one [`CONCURRENCY_POLL_MS`] (jittered) after the
    /// previous, so N waiters for a tenant ask the store about as often as one (a freed slot is still seen within a
    /// turn), not N times as often; waiters for other tenants (other slots) keep their own turns.
    pub fn concurrency_poll(&self, tenant: &str, blocking: bool, sees_every_release: bool) -> Wakeup {
        if sees_every_release {
            return if blocking { Wakeup::OnRelease } else { Wakeup::Poll(jittered(CONCURRENCY_POLL_MS)) };
        }
        let now = Instant::now();
        let mut turns = self.next_shared_poll.lock();
        if turns.len() >= SHARED_POLL_TENANTS && !turns.contains_key(tenant) {
            turns.retain(|_, at| *at > now); // turns already past matter no more
        }
        let next = turns.get(tenant).copied().filter(|&at| at > now).unwrap_or(now);
        let turn = next + Duration::from_millis(jittered(CONCURRENCY_POLL_MS));
        turns.insert(tenant.to_owned(), turn);
        Wakeup::Poll(u64::try_from((turn - now).as_millis()).unwrap_or(u64::MAX))
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
        let woken = Wakeup::OnRelease;
        assert_eq!(after_refusal_with(minute, 0, 4_999, Clock::Monotonic, woken), Step::GiveUp(minute));
        assert_eq!(
            after_refusal_with(minute, 0, 5_000, Clock::Monotonic, woken),
            Step::AskAgain { sleep_ms: 5_000, refusal: minute }
        );
        assert_eq!(
            after_refusal_with(minute, 10, 10, Clock::Monotonic, woken),
            Step::GiveUp(minute),
            "deadline reached"
        );
        let busy = refusal(60_000, Reason::Concurrency);
        assert_eq!(
            after_refusal_with(busy, 0, 1_000, Clock::Monotonic, woken),
            Step::AskAgain { sleep_ms: 1_000, refusal: busy },
            "a release may come before the permits expire"
        );
    }

    #[test]
    fn concurrency_waits_that_no_release_wakes_poll() {
        let busy = refusal(120_000, Reason::Concurrency);
        assert_eq!(
            after_refusal_with(busy, 0, NO_DEADLINE, Clock::Monotonic, Wakeup::Poll(30)),
            Step::AskAgain { sleep_ms: 30, refusal: busy },
            "not the permits' expiry: nothing would wake a caller that sleeps on its own"
        );
        assert_eq!(
            after_refusal_with(busy, 0, 10, Clock::Monotonic, Wakeup::Poll(30)),
            Step::AskAgain { sleep_ms: 10, refusal: busy },
            "nor past the deadline"
        );
        let minute = refusal(5_000, Reason::Minute);
        assert_eq!(
            after_refusal_with(minute, 0, NO_DEADLINE, Clock::Monotonic, Wakeup::Poll(30)),
            Step::AskAgain { sleep_ms: 5_000, refusal: minute },
            "a window's wait is exact: no poll"
        );
        let day = refusal(3_600_000, Reason::Day);
        assert_eq!(
            after_refusal_with(day, 0, NO_DEADLINE, Clock::Manual, Wakeup::OnRelease),
            Step::AskAgain { sleep_ms: MANUAL_RECHECK_MS, refusal: day }
        );
        assert_eq!(deadline(5, u64::MAX), NO_DEADLINE);
    }

    #[test]
    fn non_blocking_callers_poll_with_jitter_on_every_backend() {
        let waiters = Waiters::default();
        assert_eq!(
            waiters.concurrency_poll("t", true, true),
            Wakeup::OnRelease,
            "a release here wakes a blocked waiter"
        );
        let polls: Vec<u64> = (0..200)
            .map(|_| match waiters.concurrency_poll("t", false, true) {
                Wakeup::Poll(ms) => ms,
                Wakeup::OnRelease => panic!("an async caller is not woken by the library"),
            })
            .collect();
        let (lo, hi) = (CONCURRENCY_POLL_MS / 2, CONCURRENCY_POLL_MS * 3 / 2);
        assert!(polls.iter().all(|&ms| (lo..hi).contains(&ms)), "{polls:?}");
        assert!(polls.iter().any(|&ms| ms != polls[0]), "jittered: {polls:?}");
    }

    #[test]
    fn waiters_on_a_shared_store_take_turns() {
        let waiters = Waiters::default();
        // Twenty waiters refused at once: each asks again one turn after the previous, not all after one poll.
        let mut polls: Vec<u64> = (0..20)
            .map(|_| match waiters.concurrency_poll("t", true, false) {
                Wakeup::Poll(ms) => ms,
                Wakeup::OnRelease => panic!("a release elsewhere wakes nobody here"),
            })
            .collect();
        polls.sort_unstable();
        let spread = polls[19] - polls[0];
        assert!(spread >= 19 * CONCURRENCY_POLL_MS / 2, "turns spread over the waiters: {polls:?}");
        assert!(polls[0] <= CONCURRENCY_POLL_MS * 3 / 2, "the first asks within one turn: {polls:?}");
    }

    #[test]
    fn waiters_for_other_tenants_keep_their_own_turns() {
        let waiters = Waiters::default();
        let poll = |tenant: &str| match waiters.concurrency_poll(tenant, true, false) {
            Wakeup::Poll(ms) => ms,
            Wakeup::OnRelease => panic!("a release elsewhere wakes nobody here"),
        };
        for _ in 0..10 {
            poll("busy");
        }
        // Ten turns are taken for "busy"; another tenant's first waiter asks within one turn.
        assert!(poll("other") <= CONCURRENCY_POLL_MS * 3 / 2);
        assert!(poll("busy") >= 10 * CONCURRENCY_POLL_MS / 2);
        // Many tenants: once their turns are past, they are forgotten.
        for i in 0..SHARED_POLL_TENANTS {
            poll(&format!("t{i}"));
        }
        std::thread::sleep(Duration::from_millis(20 * CONCURRENCY_POLL_MS)); // past every turn above (11 for "busy")
        poll("late");
        assert_eq!(waiters.next_shared_poll.lock().len(), 1, "only the new turn is kept");
    }

    #[test]
    fn a_release_on_a_shared_store_wakes_one_waiter() {
        let waiters = std::sync::Arc::new(Waiters::default());
        let (woke, woken) = std::sync::mpsc::channel();
        let sleepers: Vec<_> = (0..2)
            .map(|_| {
                let (waiters, woke) = (waiters.clone(), woke.clone());
                std::thread::spawn(move || {
                    let _waiting = waiters.enter();
                    waiters.sleep(waiters.generation(), 60_000);
                    woke.send(()).unwrap();
                })
            })
            .collect();
        // A wake_one before a sleeper is in its wait is lost (it would have asked again at its turn): repeat it
        // until one wakes.
        let one = (0..40).any(|_| {
            waiters.wake_one();
            woken.recv_timeout(Duration::from_millis(500)).is_ok()
        });
        assert!(one, "one waiter woken");
        assert!(woken.recv_timeout(Duration::from_millis(300)).is_err(), "the other sleeps on");
        waiters.wake();
        woken.recv_timeout(Duration::from_secs(10)).expect("a wake reaches every waiter");
        sleepers.into_iter().for_each(|t| t.join().unwrap());
    }

    #[test]
    fn the_earlier_signature_keeps_its_meaning() {
        let busy = refusal(120_000, Reason::Concurrency);
        for (sees, wakeup) in [(true, Wakeup::OnRelease), (false, Wakeup::Poll(CONCURRENCY_POLL_MS))] {
            for clock in [Clock::Monotonic, Clock::Manual] {
                assert_eq!(
                    after_refusal(busy, 0, NO_DEADLINE, clock, sees),
                    after_refusal_with(busy, 0, NO_DEADLINE, clock, wakeup)
                );
            }
        }
        assert_eq!(
            after_refusal(busy, 0, NO_DEADLINE, Clock::Monotonic, false),
            Step::AskAgain { sleep_ms: CONCURRENCY_POLL_MS, refusal: busy }
        );
    }
}

//! What a limiter decided, waited for and was told, counted once here for every caller and binding (design.md
//! "Watching it"). The counters are per limiter, relaxed atomics bumped by the [`super::Limiter`] façade: no lock
//! and no allocation on the hot path, one `fetch_add` per decision. A reading ([`Stats`]) takes each figure on its
//! own, so one taken during traffic may see a decision in `granted` before the wait it ended; every figure only grows
//! (except the store's gauges), which is all a metrics backend needs.
//!
//! Store figures (operations, failures by kind, the breaker, replays pending) come from the backend
//! ([`super::Backend::store_stats`]); a backend that keeps its state in this process has none.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::types::Decision;
use super::types::Feedback;
use crate::vocab::{Category, FailurePolicy, RateLimitProblem, Reason, StoreFailureKind};

/// One slot per code of a vocabulary, from 0 to its highest (code 0 is "none" where the vocabulary has it).
macro_rules! slots {
    ($vocabulary:ty) => {{
        let all = <$vocabulary>::ALL;
        let (mut i, mut highest) = (0, 0);
        while i < all.len() {
            if all[i].code() > highest {
                highest = all[i].code();
            }
            i += 1;
        }
        highest as usize + 1
    }};
}

/// Slots of [`Stats::refused`]: one per [`Reason`] code (slot 0 stays 0).
pub const REASON_SLOTS: usize = slots!(Reason);
/// Slots of [`Stats::fallbacks`]: one per [`FailurePolicy`] code (slot 0 stays 0).
pub const FAILURE_POLICY_SLOTS: usize = slots!(FailurePolicy);
/// Slots of [`Stats::responses`]: one per [`Category`] code.
pub const CATEGORY_SLOTS: usize = slots!(Category);
/// Slots of [`Stats::rate_limited`]: one per [`RateLimitProblem`] code (slot 0 stays 0: a 429 naming no problem
/// counts as `unknown`, as its block does).
pub const RATE_LIMIT_PROBLEM_SLOTS: usize = slots!(RateLimitProblem);
/// Slots of [`StoreStats::failures`]: one per [`StoreFailureKind`] code (slot 0 stays 0).
pub const STORE_FAILURE_KIND_SLOTS: usize = slots!(StoreFailureKind);

/// Upper bounds (inclusive, ms) of the wait-duration buckets, chosen for Xero's limits: ≤ 10 ms and ≤ 100 ms are a
/// concurrency slot freed by a release; ≤ 1 s and ≤ 10 s short waits on the minute windows; ≤ 65 s a full minute
/// window (60 s with the default 0.5 s margin, or a minute Retry-After with its jitter); ≤ 10 min the server's longer
/// blocks (an offline organisation's 5 minutes, an outage); beyond, day-limit waits. The last bucket has no bound.
pub const WAIT_BUCKET_BOUNDS_MS: [u64; 6] = [10, 100, 1_000, 10_000, 65_000, 600_000];
/// Wait-duration buckets: one per bound, and one for longer waits.
pub const WAIT_BUCKETS: usize = WAIT_BUCKET_BOUNDS_MS.len() + 1;

/// The bucket a wait of `ms` falls in.
fn wait_bucket(ms: u64) -> usize {
    WAIT_BUCKET_BOUNDS_MS.iter().position(|&bound| ms <= bound).unwrap_or(WAIT_BUCKET_BOUNDS_MS.len())
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitEnd {
    Granted,
    /// The deadline passed, or the wait certainly ended after it.
    GaveUp,
    /// `interrupt` ended it, or an error did (the store refused, too many tenants).
    Interrupted,
}

/// Waits: an `acquire_wait`, or the steps of one stepped wait, whose first answer was a refusal. A wait is counted
/// when it starts; its length (on the limiter's clock, from that first refusal) when it ends. A stepped wait its
/// caller abandons (a cancelled task) never ends: `started` minus the ended ones is waits in progress or abandoned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitStats {
    pub started: u64,
    pub granted: u64,
    pub gave_up: u64,
    pub interrupted: u64,
    /// The ended waits' lengths added up (ms).
    pub total_ms: u64,
    /// Ended waits per bucket of [`WAIT_BUCKET_BOUNDS_MS`] (not cumulative; the last has no upper bound).
    pub buckets: [u64; WAIT_BUCKETS],
}

impl WaitStats {
    /// Waits that ended, however.
    pub fn ended(&self) -> u64 {
        self.granted + self.gave_up + self.interrupted
    }
}

/// The shared store's figures, from the backend. A backend without a store reports [`StoreStats::NONE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreStats {
    /// Whether the limiter keeps its state in a shared store (the other figures are its).
    pub shared: bool,
    /// Operations sent to the store (each script run; a retry is another).
    pub operations: u64,
    /// Failed attempts by [`StoreFailureKind`] code (an operation retried on a fresh connection after a dead
    /// pooled one counts its first attempt here, though it succeeded).
    pub failures: [u64; STORE_FAILURE_KIND_SLOTS],
    /// Times the breaker opened (the store unasked for a cooldown; the failure policy decides meanwhile).
    pub breaker_openings: u64,
    /// Whether the breaker is open now.
    pub breaker_open: bool,
    /// Releases, cancels and timed-out acquires the store has not confirmed, to replay when it answers (a gauge).
    pub replays_pending: u64,
}

impl StoreStats {
    /// No store: state lives in this process.
    pub const NONE: StoreStats = StoreStats {
        shared: false,
        operations: 0,
        failures: [0; STORE_FAILURE_KIND_SLOTS],
        breaker_openings: 0,
        breaker_open: false,
        replays_pending: 0,
    };

    pub fn failures_of(&self, kind: StoreFailureKind) -> u64 {
        self.failures[kind.code() as usize]
    }
}

impl Default for StoreStats {
    fn default() -> Self {
        StoreStats::NONE
    }
}

/// A limiter's statistics since it was made. Arrays are indexed by the vocabulary's C codes; `*_of` read them by
/// value.
///
/// Decisions are `acquire`'s answers, and each wait's: its first answer (granted at once, or the refusal that
/// started it) and, when granted after waiting, the grant; a wait's re-asks in between are not decisions. So
/// `granted` is exactly the permits handed out, and `refused` the refusals callers were told of. `peek` and
/// `reserve` decide nothing and are not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub granted: u64,
    /// Refusals by [`Reason`] code.
    pub refused: [u64; REASON_SLOTS],
    /// Decisions (granted or refused) made by the failure policy because the store could not, by [`FailurePolicy`]
    /// code.
    pub fallbacks: [u64; FAILURE_POLICY_SLOTS],
    pub waits: WaitStats,
    /// Responses observed (`observe`), by [`Category`] code.
    pub responses: [u64; CATEGORY_SLOTS],
    /// Observed 429s by [`RateLimitProblem`] code.
    pub rate_limited: [u64; RATE_LIMIT_PROBLEM_SLOTS],
    pub store: StoreStats,
}

impl Stats {
    pub fn refused_for(&self, reason: Reason) -> u64 {
        self.refused[reason.code() as usize]
    }

    pub fn refused_total(&self) -> u64 {
        self.refused.iter().sum()
    }

    pub fn fallbacks_by(&self, policy: FailurePolicy) -> u64 {
        self.fallbacks[policy.code() as usize]
    }

    pub fn responses_of(&self, category: Category) -> u64 {
        self.responses[category.code() as usize]
    }

    pub fn rate_limited_by(&self, problem: RateLimitProblem) -> u64 {
        self.rate_limited[problem.code() as usize]
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

fn read<const N: usize>(counters: &[AtomicU64; N]) -> [u64; N] {
    std::array::from_fn(|i| counters[i].load(Relaxed))
}

/// The live counters of one limiter.
#[derive(Default)]
pub(crate) struct Counters {
    granted: AtomicU64,
    refused: [AtomicU64; REASON_SLOTS],
    fallbacks: [AtomicU64; FAILURE_POLICY_SLOTS],
    waits_started: AtomicU64,
    waits_granted: AtomicU64,
    waits_gave_up: AtomicU64,
    waits_interrupted: AtomicU64,
    wait_ms_total: AtomicU64,
    wait_buckets: [AtomicU64; WAIT_BUCKETS],
    responses: [AtomicU64; CATEGORY_SLOTS],
    rate_limited: [AtomicU64; RATE_LIMIT_PROBLEM_SLOTS],
}

impl Counters {
    pub fn decision(&self, decision: &Decision) {
        let fallback = match decision {
            Decision::Granted(permit) => {
                add(&self.granted, 1);
                permit.fallback
            }
            Decision::Refused(refusal) => {
                add(&self.refused[refusal.reason.code() as usize], 1);
                refusal.fallback
            }
        };
        if let Some(policy) = fallback {
            add(&self.fallbacks[policy.code() as usize], 1);
        }
    }

    pub fn observed(&self, feedback: &Feedback) {
        add(&self.responses[feedback.category.code() as usize], 1);
        if feedback.category == Category::RateLimited {
            let problem = feedback.rate_limit_problem.unwrap_or(RateLimitProblem::Unknown);
            add(&self.rate_limited[problem.code() as usize], 1);
        }
    }

    pub fn wait_started(&self) {
        add(&self.waits_started, 1);
    }

    pub fn wait_ended(&self, end: WaitEnd, waited_ms: u64) {
        let outcome = match end {
            WaitEnd::Granted => &self.waits_granted,
            WaitEnd::GaveUp => &self.waits_gave_up,
            WaitEnd::Interrupted => &self.waits_interrupted,
        };
        add(outcome, 1);
        add(&self.wait_ms_total, waited_ms);
        add(&self.wait_buckets[wait_bucket(waited_ms)], 1);
    }

    pub fn read(&self, store: StoreStats) -> Stats {
        let load = |counter: &AtomicU64| counter.load(Relaxed);
        Stats {
            granted: load(&self.granted),
            refused: read(&self.refused),
            fallbacks: read(&self.fallbacks),
            waits: WaitStats {
                started: load(&self.waits_started),
                granted: load(&self.waits_granted),
                gave_up: load(&self.waits_gave_up),
                interrupted: load(&self.waits_interrupted),
                total_ms: load(&self.wait_ms_total),
                buckets: read(&self.wait_buckets),
            },
            responses: read(&self.responses),
            rate_limited: read(&self.rate_limited),
            store,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pacing::{Permit, Refusal};

    #[test]
    fn waits_fall_in_the_bucket_whose_bound_they_reach() {
        let cases = [(0, 0), (10, 0), (11, 1), (1_000, 2), (60_500, 4), (65_000, 4), (65_001, 5), (43_200_000, 6)];
        for (ms, bucket) in cases {
            assert_eq!(wait_bucket(ms), bucket, "{ms} ms");
        }
    }

    #[test]
    fn slots_cover_every_code_of_their_vocabulary() {
        assert_eq!(REASON_SLOTS, Reason::StoreUnavailable.code() as usize + 1);
        assert_eq!(CATEGORY_SLOTS, Category::PayloadTooLarge.code() as usize + 1);
        assert_eq!(FAILURE_POLICY_SLOTS, 4);
        assert_eq!(RATE_LIMIT_PROBLEM_SLOTS, 6);
        assert_eq!(STORE_FAILURE_KIND_SLOTS, 5);
    }

    #[test]
    fn decisions_count_by_result_reason_and_fallback() {
        let counters = Counters::default();
        counters.decision(&Decision::Granted(Permit::new(1)));
        counters.decision(&Decision::Granted(Permit { id: 0, fallback: Some(FailurePolicy::Open) }));
        counters.decision(&Decision::Refused(Refusal::new(5, Reason::Day)));
        let closed = Refusal { fallback: Some(FailurePolicy::Closed), ..Refusal::new(1_000, Reason::StoreUnavailable) };
        counters.decision(&Decision::Refused(closed));
        let stats = counters.read(StoreStats::NONE);
        assert_eq!(stats.granted, 2);
        assert_eq!((stats.refused_for(Reason::Day), stats.refused_for(Reason::StoreUnavailable)), (1, 1));
        assert_eq!(stats.refused_total(), 2);
        assert_eq!(stats.fallbacks_by(FailurePolicy::Open), 1);
        assert_eq!(stats.fallbacks_by(FailurePolicy::Closed), 1);
        assert_eq!(stats.fallbacks_by(FailurePolicy::Local), 0);
    }
}

//! The retry policy for repeated failures: capped exponential backoff with additive jitter, never shorter than
//! the server's wait, and never sleeping through a day limit beyond a configurable cap. It reads a
//! [`Classification`]; it never changes the classification table.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};

use crate::classify::Classification;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries allowed after the first attempt (attempt numbers 1..=max_retries retry; more gives up).
    pub max_retries: u32,
    /// The first backoff; it doubles with each attempt.
    pub base_ms: u64,
    /// The exponential part never exceeds this.
    pub max_backoff_ms: u64,
    /// Up to this much random time is added, so many clients do not retry in step.
    pub jitter_ms: u64,
    /// A wait longer than this (a day limit's hours, say) is not slept through: give up instead.
    pub max_wait_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_retries: 5, base_ms: 500, max_backoff_ms: 30_000, jitter_ms: 250, max_wait_ms: 300_000 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// The classification's action is not `retry`.
    NotRetryable,
    /// `attempt` exceeds the policy's `max_retries`.
    AttemptsExhausted,
    /// The wait needed (e.g. until a day limit resets) is longer than the policy's `max_wait_ms`.
    WaitTooLong { wait_ms: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backoff {
    RetryAfter { wait_ms: u64 },
    GiveUp(GiveUp),
}

/// Decides whether retry number `attempt` (1 for the first retry) should happen, and after how long.
pub fn backoff(classification: &Classification, attempt: u32, policy: &RetryPolicy) -> Backoff {
    backoff_from_parts(classification.retryable(), classification.recommended_wait_ms, attempt, policy)
}

/// [`backoff`] from the two fields it reads (the C struct carries them).
pub fn backoff_from_parts(
    retryable: bool,
    recommended_wait_ms: Option<u64>,
    attempt: u32,
    policy: &RetryPolicy,
) -> Backoff {
    let jitter = if policy.jitter_ms == 0 { 0 } else { random_u64() % (policy.jitter_ms + 1) };
    backoff_with_jitter(retryable, recommended_wait_ms, attempt, policy, jitter)
}

/// [`backoff`] with the jitter chosen by the caller: deterministic, and the form the C ABI uses.
pub fn backoff_with_jitter(
    retryable: bool,
    recommended_wait_ms: Option<u64>,
    attempt: u32,
    policy: &RetryPolicy,
    jitter_ms: u64,
) -> Backoff {
    if !retryable {
        return Backoff::GiveUp(GiveUp::NotRetryable);
    }
    if attempt > policy.max_retries {
        return Backoff::GiveUp(GiveUp::AttemptsExhausted);
    }
    let doublings = attempt.saturating_sub(1).min(63);
    let exponential = policy.base_ms.saturating_mul(1u64 << doublings).min(policy.max_backoff_ms);
    let wait_ms = exponential.saturating_add(jitter_ms.min(policy.jitter_ms)).max(recommended_wait_ms.unwrap_or(0));
    if wait_ms > policy.max_wait_ms {
        return Backoff::GiveUp(GiveUp::WaitTooLong { wait_ms });
    }
    Backoff::RetryAfter { wait_ms }
}

/// A fast per-thread random number; seeded from the standard library's random hasher keys.
fn random_u64() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()) | 1);
    }
    STATE.with(|state| {
        // xorshift64*: plenty for jitter.
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy =
        RetryPolicy { max_retries: 4, base_ms: 100, max_backoff_ms: 1_000, jitter_ms: 50, max_wait_ms: 10_000 };

    #[test]
    fn exponential_capped_with_jitter_and_never_below_server_wait() {
        let waits: Vec<_> = (1..=4).map(|a| backoff_with_jitter(true, Some(0), a, &POLICY, 7)).collect();
        let expected = [107, 207, 407, 807].map(|wait_ms| Backoff::RetryAfter { wait_ms });
        assert_eq!(waits, expected);
        assert_eq!(
            backoff_with_jitter(true, None, 4, &RetryPolicy { max_backoff_ms: 300, ..POLICY }, 0),
            Backoff::RetryAfter { wait_ms: 300 }
        );
        assert_eq!(backoff_with_jitter(true, Some(5_000), 1, &POLICY, 10), Backoff::RetryAfter { wait_ms: 5_000 });
        assert_eq!(
            backoff_with_jitter(true, Some(0), 1, &POLICY, 10_000),
            Backoff::RetryAfter { wait_ms: 150 },
            "jitter is capped"
        );
    }

    #[test]
    fn gives_up_when_it_should() {
        assert_eq!(backoff_with_jitter(false, None, 1, &POLICY, 0), Backoff::GiveUp(GiveUp::NotRetryable));
        assert_eq!(backoff_with_jitter(true, Some(0), 5, &POLICY, 0), Backoff::GiveUp(GiveUp::AttemptsExhausted));
        assert_eq!(
            backoff_with_jitter(true, Some(3_600_000), 1, &POLICY, 0),
            Backoff::GiveUp(GiveUp::WaitTooLong { wait_ms: 3_600_000 })
        );
    }

    #[test]
    fn random_jitter_stays_in_range() {
        let nonce_used = crate::classify(401, &[], b"oauth_problem=nonce_used", std::time::SystemTime::UNIX_EPOCH);
        assert_eq!(nonce_used.recommended_wait_ms, Some(0));
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            let Backoff::RetryAfter { wait_ms } = backoff(&nonce_used, 2, &POLICY) else {
                panic!("nonce_used retries")
            };
            assert!((200..=250).contains(&wait_ms), "{wait_ms}");
            seen.insert(wait_ms);
        }
        assert!(seen.len() > 10, "jitter varies: {seen:?}");
    }
}

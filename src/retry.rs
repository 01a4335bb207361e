//! The retry policy for repeated failures: capped exponential backoff or the server's wait, whichever is longer,
//! plus a bounded random jitter, and never sleeping through a day limit beyond a configurable cap; and whether a
//! request may be
//! resent at all (xero-reference §8): a write that the server may have carried out is resent only with an
//! Idempotency-Key. It reads a [`Classification`]; it never changes the classification table.

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
    /// A random 0..=jitter_ms is added to every wait, the server's too, so clients told the same Retry-After do not
    /// resend in the same instant.
    pub jitter_ms: u64,
    /// A wait longer than this (a day limit's hours, say) is not slept through: give up instead. The jitter never
    /// causes a give-up and never takes a wait past this.
    pub max_wait_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_retries: 5, base_ms: 500, max_backoff_ms: 30_000, jitter_ms: 250, max_wait_ms: 300_000 }
    }
}

pub use crate::vocab::GiveUp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backoff {
    RetryAfter {
        wait_ms: u64,
    },
    /// Why not; `wait_ms` is the wait that was too long for [`GiveUp::WaitTooLong`], else 0.
    GiveUp {
        reason: GiveUp,
        wait_ms: u64,
    },
}

impl Backoff {
    const fn give_up(reason: GiveUp) -> Self {
        Backoff::GiveUp { reason, wait_ms: 0 }
    }
}

/// The request an outcome answers, as far as resending it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The HTTP method (`GET`, `POST`, …; compared without regard to case).
    pub method: &'a str,
    /// Whether it carries an `Idempotency-Key` header, which makes a resend of a write safe.
    pub has_idempotency_key: bool,
}

/// Whether a request with this method is a write: one [`resend`] never sends again after an outcome the server may
/// have carried out unless it carries an `Idempotency-Key`, so guards give it one before the first attempt. GET,
/// HEAD, OPTIONS and DELETE change nothing twice; every other method (POST, PUT, PATCH, or one this table does not
/// know) is treated as a write.
pub fn is_write(method: &str) -> bool {
    !["GET", "HEAD", "OPTIONS", "DELETE"].iter().any(|m| method.eq_ignore_ascii_case(m))
}

/// What became of one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered (the facts of its classification that resending depends on).
    Response { retryable: bool, recommended_wait_ms: Option<u64>, may_have_been_processed: bool },
    /// Nothing reached the server: connection refused, DNS failure, TLS handshake failure, a connect timeout.
    NotSent,
    /// The request was sent and no answer came: a read timeout, a reset connection.
    NoResponse,
}

impl From<&Classification> for Outcome {
    fn from(c: &Classification) -> Self {
        Outcome::Response {
            retryable: c.retryable(),
            recommended_wait_ms: c.recommended_wait_ms,
            may_have_been_processed: c.may_have_been_processed(),
        }
    }
}

/// Decides whether retry number `attempt` (1 for the first retry) of `request` should be sent after `outcome`, and
/// after how long (xero-reference §8): not-processed outcomes and failures before sending are resent; an outcome the
/// server may have carried out is resent for an idempotent method, or a write with an Idempotency-Key, and never
/// for a write without one (`GiveUp::UnsafeToResend`: hand the outcome to the caller). Then the backoff applies.
pub fn resend(request: &Request<'_>, outcome: &Outcome, attempt: u32, policy: &RetryPolicy) -> Backoff {
    let (retryable, recommended_wait_ms, maybe_processed) = match *outcome {
        Outcome::Response { retryable, recommended_wait_ms, may_have_been_processed } => {
            (retryable, recommended_wait_ms, may_have_been_processed)
        }
        Outcome::NotSent => (true, None, false),
        Outcome::NoResponse => (true, None, true),
    };
    if retryable && maybe_processed && is_write(request.method) && !request.has_idempotency_key {
        return Backoff::give_up(GiveUp::UnsafeToResend);
    }
    backoff_from_parts(retryable, recommended_wait_ms, attempt, policy)
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
    let jitter = match policy.jitter_ms.checked_add(1) {
        Some(choices) => random_u64() % choices,
        None => random_u64(),
    };
    backoff_with_jitter(retryable, recommended_wait_ms, attempt, policy, jitter)
}

/// [`backoff`] with the jitter chosen by the caller (capped at the policy's `jitter_ms`): deterministic. The wait is
/// `max(exponential backoff, recommended wait) + jitter`. Whether to give up is decided before the jitter is added,
/// on the wait the server or the backoff needs (that is the `wait_ms` of [`GiveUp::WaitTooLong`]); the jitter then
/// takes the wait no further than `max_wait_ms`, so a wait within `jitter_ms` of the cap gets only what fits.
pub fn backoff_with_jitter(
    retryable: bool,
    recommended_wait_ms: Option<u64>,
    attempt: u32,
    policy: &RetryPolicy,
    jitter_ms: u64,
) -> Backoff {
    if !retryable {
        return Backoff::give_up(GiveUp::NotRetryable);
    }
    if attempt > policy.max_retries {
        return Backoff::give_up(GiveUp::AttemptsExhausted);
    }
    let doublings = attempt.saturating_sub(1).min(63);
    let exponential = policy.base_ms.saturating_mul(1u64 << doublings).min(policy.max_backoff_ms);
    let needed = exponential.max(recommended_wait_ms.unwrap_or(0));
    if needed > policy.max_wait_ms {
        return Backoff::GiveUp { reason: GiveUp::WaitTooLong, wait_ms: needed };
    }
    Backoff::RetryAfter { wait_ms: needed.saturating_add(jitter_ms.min(policy.jitter_ms)).min(policy.max_wait_ms) }
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
        assert_eq!(backoff_with_jitter(true, Some(5_000), 1, &POLICY, 10), Backoff::RetryAfter { wait_ms: 5_010 });
        assert_eq!(
            backoff_with_jitter(true, Some(0), 1, &POLICY, 10_000),
            Backoff::RetryAfter { wait_ms: 150 },
            "jitter is capped"
        );
    }

    #[test]
    fn the_jitter_is_added_to_the_servers_wait_and_bounded() {
        let policy = RetryPolicy::default();
        let after_37_s = |jitter| backoff_with_jitter(true, Some(37_000), 1, &policy, jitter);
        assert_eq!(after_37_s(0), Backoff::RetryAfter { wait_ms: 37_000 });
        assert_eq!(after_37_s(1), Backoff::RetryAfter { wait_ms: 37_001 });
        assert_eq!(after_37_s(250), Backoff::RetryAfter { wait_ms: 37_250 });
        assert_eq!(after_37_s(u64::MAX), Backoff::RetryAfter { wait_ms: 37_250 }, "at most jitter_ms");
        // A backoff longer than the server's wait takes the jitter on top of itself.
        assert_eq!(backoff_with_jitter(true, Some(100), 2, &POLICY, 30), Backoff::RetryAfter { wait_ms: 230 });
        // Near the cap the jitter fits under max_wait_ms; it never turns a wait into a give-up.
        let cap = POLICY.max_wait_ms;
        assert_eq!(backoff_with_jitter(true, Some(cap - 20), 1, &POLICY, 50), Backoff::RetryAfter { wait_ms: cap });
        assert_eq!(backoff_with_jitter(true, Some(cap), 1, &POLICY, 50), Backoff::RetryAfter { wait_ms: cap });
        assert_eq!(
            backoff_with_jitter(true, Some(cap + 1), 1, &POLICY, 0),
            Backoff::GiveUp { reason: GiveUp::WaitTooLong, wait_ms: cap + 1 },
            "the give-up names the wait needed, without jitter"
        );
        // The largest jitter bound draws from the whole range without overflowing.
        let whole_range = RetryPolicy { jitter_ms: u64::MAX, max_wait_ms: u64::MAX, ..POLICY };
        assert!(matches!(backoff_from_parts(true, Some(0), 1, &whole_range), Backoff::RetryAfter { .. }));
    }

    /// Workers told the same Retry-After resend spread over [Retry-After, Retry-After + jitter_ms], not in step.
    #[test]
    fn a_hundred_workers_after_the_same_429_do_not_resend_in_the_same_millisecond() {
        let at = std::time::SystemTime::UNIX_EPOCH;
        let limited = crate::classify(429, &[("Retry-After", "37"), ("X-Rate-Limit-Problem", "minute")], b"", at);
        let outcome = Outcome::from(&limited);
        let request = Request { method: "POST", has_idempotency_key: false };
        let waits: Vec<u64> = std::thread::scope(|scope| {
            let workers: Vec<_> =
                (0..100).map(|_| scope.spawn(|| resend(&request, &outcome, 1, &RetryPolicy::default()))).collect();
            workers
                .into_iter()
                .map(|worker| match worker.join().expect("a worker") {
                    Backoff::RetryAfter { wait_ms } => wait_ms,
                    other => panic!("a 429 is resent: {other:?}"),
                })
                .collect()
        });
        assert!(waits.iter().all(|wait| (37_000..=37_250).contains(wait)), "{waits:?}");
        let instants: std::collections::BTreeSet<u64> = waits.iter().copied().collect();
        // 100 draws from 251 milliseconds give ~82 distinct ones; 50 or fewer would mean the jitter is broken.
        assert!(instants.len() > 50, "{} distinct instants: {waits:?}", instants.len());
    }

    #[test]
    fn gives_up_when_it_should() {
        assert_eq!(backoff_with_jitter(false, None, 1, &POLICY, 0), Backoff::give_up(GiveUp::NotRetryable));
        assert_eq!(backoff_with_jitter(true, Some(0), 5, &POLICY, 0), Backoff::give_up(GiveUp::AttemptsExhausted));
        assert_eq!(
            backoff_with_jitter(true, Some(3_600_000), 1, &POLICY, 0),
            Backoff::GiveUp { reason: GiveUp::WaitTooLong, wait_ms: 3_600_000 }
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

    /// xero-reference §8, row by row, against real classifications.
    #[test]
    fn resend_follows_the_safe_retry_table() {
        let at = std::time::SystemTime::UNIX_EPOCH;
        let response = |status: u16, body: &str| Outcome::from(&crate::classify(status, &[], body.as_bytes(), at));
        let limited = Outcome::from(&crate::classify(429, &[("Retry-After", "3")], b"", at));
        let methods = ["GET", "head", "OPTIONS", "DELETE", "POST", "PUT", "PATCH"];
        let policy = RetryPolicy { jitter_ms: 0, ..RetryPolicy::default() };
        let decide = |method: &str, key: bool, outcome: &Outcome| {
            resend(&Request { method, has_idempotency_key: key }, outcome, 1, &policy)
        };
        let not_processed = [
            limited,
            response(503, "oauth_problem=rate%20limit%20exceeded"),
            response(503, "The Organisation is offline"),
            response(503, "The Xero API is currently offline for maintenance"),
            response(401, "oauth_problem=nonce_used"),
            Outcome::NotSent,
        ];
        for outcome in &not_processed {
            for method in methods {
                for key in [false, true] {
                    assert!(
                        matches!(decide(method, key, outcome), Backoff::RetryAfter { .. }),
                        "{method} key={key} {outcome:?}: resent, the server did nothing"
                    );
                }
            }
        }
        let maybe_processed =
            [response(500, ""), response(502, ""), response(504, ""), response(599, ""), Outcome::NoResponse];
        for outcome in &maybe_processed {
            for method in methods {
                let write = matches!(method, "POST" | "PUT" | "PATCH");
                let without_key = decide(method, false, outcome);
                if write {
                    assert_eq!(without_key, Backoff::give_up(GiveUp::UnsafeToResend), "{method} {outcome:?}");
                } else {
                    assert!(matches!(without_key, Backoff::RetryAfter { .. }), "{method} {outcome:?}");
                }
                assert!(matches!(decide(method, true, outcome), Backoff::RetryAfter { .. }), "{method} with a key");
            }
        }
        assert_eq!(decide("POST", true, &limited), Backoff::RetryAfter { wait_ms: 3_000 }, "the server's wait holds");
        assert_eq!(
            decide("PROPFIND", false, &response(500, "")),
            Backoff::give_up(GiveUp::UnsafeToResend),
            "an unknown method is treated as a write"
        );
        assert_eq!(decide("GET", false, &response(400, "")), Backoff::give_up(GiveUp::NotRetryable));
        let exhausted = resend(&Request { method: "GET", has_idempotency_key: false }, &Outcome::NotSent, 9, &policy);
        assert_eq!(exhausted, Backoff::give_up(GiveUp::AttemptsExhausted));
    }
}

//! xeroguard: classify Xero API responses and pace calls so an app never trips Xero's rate limits.
//!
//! The Rust API is [`classify()`], [`classify_raw()`], [`backoff()`] and the pacing [`Limiter`]. The C ABI in
//! [`ffi`] (header `include/xeroguard.h`) exposes the same to C, Python and .NET. The contract is
//! `shared/xero-reference.md`; see the README for the vocabulary and the decisions made where it is silent.

// Every `unsafe` block lives in the C ABI (src/ffi); the rest of the crate is safe Rust, and the compiler holds it to it.
#![deny(unsafe_code)]

pub mod classify;
#[allow(unsafe_code)]
pub mod ffi;
pub mod pacing;
pub mod retry;
mod vocab;

pub use classify::{Classification, RawError, classify, classify_raw};
pub use pacing::{Clock, Decision, Limiter, Limits, Permit};
pub use retry::{Backoff, GiveUp, Outcome, Request, RetryPolicy, backoff, is_write, resend};
pub use vocab::{
    Action, AuthProblem, Category, FailurePolicy, RateLimitProblem, Reason, StoreFailureKind, human_duration,
    refusal_in_words,
};

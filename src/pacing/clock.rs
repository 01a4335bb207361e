//! The limiter's clock: the system's monotonic clock, or a manual one that tests move. Milliseconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::types::PacingError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The system's monotonic clock, from the limiter's creation.
    Monotonic,
    /// Time moves only when told (`advance`, `set_now`): for tests.
    Manual,
}

pub(crate) struct ClockSource {
    kind: Clock,
    origin: Instant,
    manual_now: AtomicU64,
}

impl ClockSource {
    pub fn new(kind: Clock) -> Self {
        ClockSource { kind, origin: Instant::now(), manual_now: AtomicU64::new(0) }
    }

    pub fn kind(&self) -> Clock {
        self.kind
    }

    pub fn now(&self) -> u64 {
        match self.kind {
            Clock::Manual => self.manual_now.load(Ordering::Acquire),
            Clock::Monotonic => u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Moves a manual clock forward; returns the new reading.
    pub fn advance(&self, ms: u64) -> Result<u64, PacingError> {
        self.require_manual()?;
        let before = self.manual_now.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| Some(t.saturating_add(ms)));
        Ok(before.unwrap_or_else(|t| t).saturating_add(ms))
    }

    /// Sets a manual clock; it never moves backwards.
    pub fn set_now(&self, now: u64) -> Result<(), PacingError> {
        self.require_manual()?;
        self.manual_now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| (now >= current).then_some(now))
            .map(drop)
            .map_err(|_| PacingError::ClockBackwards)
    }

    fn require_manual(&self) -> Result<(), PacingError> {
        match self.kind {
            Clock::Manual => Ok(()),
            Clock::Monotonic => Err(PacingError::NotManualClock),
        }
    }
}

/// Time never runs backwards for shared state: each lock keeps the latest instant its holders used, and an operation
/// decides at no earlier instant than that, read while it holds the lock. (An instant fixed before taking the lock
/// could be older than one a previous holder already pruned a window to, and admit a call too many.)
pub(crate) fn later(floor: &mut u64, now: u64) -> u64 {
    *floor = (*floor).max(now);
    *floor
}

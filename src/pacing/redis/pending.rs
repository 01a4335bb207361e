//! What the store must still be told: releases and cancels that met an outage (or an open breaker), and the permits
//! of acquires whose reply never came (the acquire may have run, or may still run: its request can sit in the
//! server's buffers through a stall). Each waits here, in order, and is replayed as soon as the store answers again;
//! the caller was answered at once (a release never fails for an outage).
//!
//! Bounded: a replay takes at most [`REPLAY_BATCH`] permits (one HDEL) and [`REPLAY_CANCELS`] cancels, so one caller
//! does not pay for a long queue; an entry whose permit or booking has expired in the store anyway is dropped; the
//! queue keeps at most [`MAX_PENDING`] entries (the oldest, which expire first, go).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Permits given back per replay: one HDEL of this many fields.
pub(crate) const REPLAY_BATCH: usize = 64;
/// Cancels replayed per replay (each a script run).
pub(crate) const REPLAY_CANCELS: usize = 2;
/// The most entries kept (about 100 bytes each).
pub(crate) const MAX_PENDING: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pending {
    /// A permit to give back (an HDEL of its field). `passes` HDELs are still due: 1 for a granted permit; 2 for
    /// the permit of an acquire whose reply never came, the second sent after the first was answered, by when the
    /// server has read everything sent to it before.
    Permit { id: u64, passes: u8, until: u64 },
    /// A booking to free, named by its reservation (see `Protocol::cancel`).
    Cancel { tenant: Arc<str>, reservation: u64, until: u64 },
}

impl Pending {
    /// When the store forgets it on its own (on the caller's clock): replaying it later is pointless.
    fn until(&self) -> u64 {
        match self {
            Pending::Permit { until, .. } | Pending::Cancel { until, .. } => *until,
        }
    }
}

/// The entries one replay takes; what it does not finish goes back with [`PendingQueue::put_back`].
#[derive(Debug, Default)]
pub struct Batch {
    /// Permits and the passes still due for each (this one included).
    pub permits: Vec<(u64, u8, u64)>,
    pub cancels: Vec<(Arc<str>, u64, u64)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.permits.is_empty() && self.cancels.is_empty()
    }
}

#[derive(Default)]
pub struct PendingQueue {
    entries: Mutex<VecDeque<Pending>>,
    /// The entries' count, read without the lock on every call.
    len: AtomicUsize,
}

impl PendingQueue {
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn push(&self, entry: Pending) {
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_PENDING {
            entries.pop_front();
        }
        entries.push_back(entry);
        self.len.store(entries.len(), Ordering::Relaxed);
    }

    /// Takes the oldest entries for one replay, dropping those past their `until` at `now`.
    pub fn take(&self, now: u64) -> Batch {
        let mut entries = self.entries.lock();
        entries.retain(|e| e.until() > now);
        let mut batch = Batch::default();
        let mut kept = VecDeque::new();
        while let Some(entry) = entries.pop_front() {
            match entry {
                Pending::Permit { id, passes, until } if batch.permits.len() < REPLAY_BATCH => {
                    batch.permits.push((id, passes, until));
                }
                Pending::Cancel { tenant, reservation, until } if batch.cancels.len() < REPLAY_CANCELS => {
                    batch.cancels.push((tenant, reservation, until));
                }
                other => kept.push_back(other),
            }
            if batch.permits.len() == REPLAY_BATCH && batch.cancels.len() == REPLAY_CANCELS {
                break;
            }
        }
        kept.append(&mut entries);
        *entries = kept;
        self.len.store(entries.len(), Ordering::Relaxed);
        batch
    }

    /// Puts back, ahead of the others and in their order, what a replay did not finish: permits whose HDEL failed
    /// (`sent` false) or that have passes left, and the cancels given (those the store did not confirm).
    pub fn put_back(&self, batch: Batch, sent: bool) {
        let mut entries = self.entries.lock();
        let permits = batch
            .permits
            .into_iter()
            .filter_map(|(id, passes, until)| {
                let passes = if sent { passes - 1 } else { passes };
                (passes > 0).then_some(Pending::Permit { id, passes, until })
            })
            .collect::<Vec<_>>();
        let cancels = batch.cancels.into_iter().map(|(tenant, reservation, until)| Pending::Cancel {
            tenant,
            reservation,
            until,
        });
        for entry in permits.into_iter().chain(cancels).rev() {
            entries.push_front(entry);
        }
        while entries.len() > MAX_PENDING {
            entries.pop_front();
        }
        self.len.store(entries.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permit(id: u64, passes: u8) -> Pending {
        Pending::Permit { id, passes, until: 1_000 }
    }

    #[test]
    fn a_replay_takes_a_bounded_batch_in_order() {
        let q = PendingQueue::default();
        for id in 1..=100 {
            q.push(permit(id, 1));
        }
        q.push(Pending::Cancel { tenant: "t".into(), reservation: 5, until: 1_000 });
        let batch = q.take(0);
        assert_eq!(batch.permits.iter().map(|p| p.0).collect::<Vec<_>>(), (1..=64).collect::<Vec<_>>());
        assert_eq!(batch.cancels.len(), 1, "a cancel behind the first permits is taken too");
        assert_eq!(q.len(), 36);
        q.put_back(Batch { cancels: vec![], ..batch }, true);
        assert_eq!(q.len(), 36, "one pass was all they needed, the cancel was confirmed");
        assert_eq!(q.take(0).permits[0].0, 65);
    }

    #[test]
    fn a_failed_replay_goes_back_first_and_an_unconfirmed_acquire_needs_two_passes() {
        let q = PendingQueue::default();
        q.push(permit(1, 2));
        q.push(permit(2, 1));
        let first = q.take(0);
        q.push(permit(3, 1));
        q.put_back(first, false);
        let again = q.take(0);
        assert_eq!(again.permits, [(1, 2, 1_000), (2, 1, 1_000), (3, 1, 1_000)], "nothing lost, order kept");
        q.put_back(again, true);
        assert_eq!(q.take(0).permits, [(1, 1, 1_000)], "the unconfirmed acquire's second pass");
    }

    #[test]
    fn expired_entries_are_dropped_and_the_queue_is_bounded() {
        let q = PendingQueue::default();
        q.push(Pending::Permit { id: 1, passes: 1, until: 10 });
        q.push(Pending::Cancel { tenant: "t".into(), reservation: 5, until: 10 });
        assert!(q.take(10).is_empty(), "the store forgot them on its own");
        for id in 0..MAX_PENDING as u64 + 5 {
            q.push(permit(id, 1));
        }
        assert_eq!(q.len(), MAX_PENDING);
        assert_eq!(q.take(0).permits[0].0, 5, "the oldest went");
    }
}

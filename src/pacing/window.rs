//! One exact rolling window: the admitted calls' timestamps, sorted. A call at `t` fits when, counting it, no
//! window of `span` milliseconds holds more than `limit` calls. Reservations can put entries in the future, so
//! the check covers every window that contains `t`, not only the one ending at `t`.

use std::collections::VecDeque;

#[derive(Debug, Default, Clone)]
pub(crate) struct Window {
    times: VecDeque<u64>,
}

impl Window {
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Forgets calls that no window containing an instant ≥ `now` can hold.
    pub fn prune(&mut self, now: u64, span: u64) {
        while self.times.front().is_some_and(|&e| e.saturating_add(span) <= now) {
            self.times.pop_front();
        }
    }

    /// The element of the sorted sequence with `t` inserted at position `p`.
    fn with_inserted(&self, t: u64, p: usize, i: usize) -> u64 {
        match i.cmp(&p) {
            std::cmp::Ordering::Less => self.times[i],
            std::cmp::Ordering::Equal => t,
            std::cmp::Ordering::Greater => self.times[i - 1],
        }
    }

    /// Whether a call at `t` keeps every window within `limit` (0 means unlimited).
    pub fn admits(&self, t: u64, limit: usize, span: u64) -> bool {
        let n = self.times.len();
        if limit == 0 || n < limit {
            return true;
        }
        // Violation iff some run of limit+1 consecutive calls (one of them `t`) spans less than `span`.
        let p = self.times.partition_point(|&e| e <= t);
        let first_run = p.saturating_sub(limit);
        let last_run = p.min(n - limit);
        (first_run..=last_run).all(|j| self.with_inserted(t, p, j + limit) - self.with_inserted(t, p, j) >= span)
    }

    /// The earliest instant ≥ `t` at which a call fits.
    pub fn earliest(&self, t: u64, limit: usize, span: u64) -> u64 {
        let n = self.times.len();
        if limit == 0 || n < limit {
            return t;
        }
        // Calls at or before `t` alone push the answer to at least this.
        let p = self.times.partition_point(|&e| e <= t);
        let floor = if p >= limit { t.max(self.times[p - limit].saturating_add(span)) } else { t };
        if p == n {
            return floor; // nothing booked in the future: the common case, O(log n)
        }
        if self.admits(floor, limit, span) {
            return floor;
        }
        // Fitness changes only where a call leaves a window (e + span) or where `t` passes a booked call (e).
        let mut leaving = self.times.iter().map(|&e| e.saturating_add(span)).filter(|&c| c > floor).peekable();
        let mut passing = self.times.iter().copied().filter(|&c| c > floor).peekable();
        loop {
            let candidate = match (leaving.peek(), passing.peek()) {
                (Some(&a), Some(&b)) if a <= b => leaving.next(),
                (_, Some(_)) => passing.next(),
                (Some(_), None) => leaving.next(),
                (None, None) => None,
            };
            let Some(candidate) = candidate else {
                return self.times.back().map_or(floor, |&last| last.saturating_add(span));
            };
            if self.admits(candidate, limit, span) {
                return candidate;
            }
        }
    }

    /// Records a call at `t`. Of the calls at or before `now`, only the newest `cap` are kept: an older one
    /// cannot decide any admission once `cap` newer calls exist (only recorded or phantom calls get there).
    pub fn insert(&mut self, t: u64, cap: usize, now: u64) {
        if cap == 0 {
            return;
        }
        if self.times.len() == self.times.capacity() && self.times.len() < cap {
            // Grow towards the limit, never past it: a full day window holds exactly `cap` calls.
            let target = (self.times.len() * 2).max(4).min(cap);
            self.times.reserve_exact(target - self.times.len());
        }
        if self.times.back().is_none_or(|&last| last <= t) {
            self.times.push_back(t); // the common case: calls arrive in time order
        } else {
            let p = self.times.partition_point(|&e| e <= t);
            self.times.insert(p, t);
        }
        if self.times.len() > cap {
            let past = self.times.partition_point(|&e| e <= now);
            self.times.drain(..past.saturating_sub(cap));
        }
    }

    /// Removes one call recorded at `t`; false when there is none.
    pub fn remove(&mut self, t: u64) -> bool {
        let p = self.times.partition_point(|&e| e < t);
        if self.times.get(p) == Some(&t) {
            self.times.remove(p);
            true
        } else {
            false
        }
    }

    /// Calls in the window ending at `now`: (now − span, now].
    pub fn count_at(&self, now: u64, span: u64) -> usize {
        let upto_now = self.times.partition_point(|&e| e <= now);
        let expired = match now.checked_sub(span) {
            Some(edge) => self.times.partition_point(|&e| e <= edge),
            None => 0,
        };
        upto_now - expired
    }

    /// Calls booked after `now` (reservations).
    pub fn booked_after(&self, now: u64) -> usize {
        self.times.len() - self.times.partition_point(|&e| e <= now)
    }

    /// Bytes this window holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.times.capacity() * std::mem::size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The brute-force definition: does any window (s − span, s] hold more than `limit` calls?
    fn exceeded(times: &[u64], limit: usize, span: u64) -> bool {
        times.iter().any(|&s| times.iter().filter(|&&e| e <= s && e + span > s).count() > limit)
    }

    #[test]
    fn earliest_is_exact_against_brute_force_with_future_entries() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..400 {
            let limit = 1 + next(4) as usize;
            let span = 1 + next(20);
            let mut w = Window::default();
            let mut all = Vec::new();
            for _ in 0..(next(12)) {
                let t = next(60);
                let at = w.earliest(t, limit, span);
                assert!(at >= t);
                for probe in t..at {
                    let mut with = all.clone();
                    with.push(probe);
                    assert!(
                        exceeded(&with, limit, span),
                        "refused {probe} but it fits: {all:?} limit {limit} span {span}"
                    );
                }
                let mut with = all.clone();
                with.push(at);
                assert!(!exceeded(&with, limit, span), "admitted {at} over the limit: {all:?}");
                assert!(w.admits(at, limit, span));
                w.insert(at, usize::MAX, 0);
                all = with;
            }
        }
    }

    #[test]
    fn counts_prune_and_remove() {
        let mut w = Window::default();
        for t in [0, 10, 20, 30] {
            w.insert(t, usize::MAX, 0);
        }
        assert_eq!(w.count_at(30, 25), 3);
        assert_eq!(w.booked_after(15), 2);
        assert!(w.remove(20) && !w.remove(20));
        w.prune(40, 25);
        assert_eq!(w.len(), 1);
        w.insert(50, 1, 50);
        assert_eq!(w.len(), 1, "capped to the newest");
        w.insert(90, 1, 50);
        assert_eq!(w.len(), 2, "future bookings are never dropped");
    }
}

"""A limiter's statistics (xg_limiter_stats) as a frozen `Stats`, and what the binding logs on the `xeroguard`
logger: waits (DEBUG), the failure policy deciding while the shared store is out of reach (WARNING once per
outage, then a count) and the store's breaker (INFO).

The library counts everything once; the binding only reads the figures, and learns of an outage from what the
library says: a decision's `fallback` (set while the failure policy decides) and the stats' breaker state.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from types import MappingProxyType
from typing import Any, Mapping, Optional, Sequence, Tuple

from . import _native as n
from ._vocabulary import CATEGORY, FAILURE_POLICY, RATE_LIMIT_PROBLEM, REASON, STORE_FAILURE_KIND, Codes

log = logging.getLogger("xeroguard")


def _by_word(codes: "Codes[Any]", counts: Sequence[int]) -> Mapping[str, int]:
    """Counts indexed by code, keyed by the vocabulary's words (codes this package does not know are left out)."""
    return MappingProxyType({member.value: int(counts[code]) for code, member in sorted(codes.by_code.items())
                             if member is not None and code < len(counts)})


@dataclasses.dataclass(frozen=True)
class Stats:
    """What a limiter decided, waited for and was told since it was made (xg_limiter_stats; the C names, with
    seconds for milliseconds). Mappings are keyed by vocabulary words and hold every word, zero counts included.

    Decisions are `acquire`'s answers and each wait's first answer and final grant, not the re-asks in between:
    `granted` is exactly the permits handed out, `refused` (by reason) the refusals callers were told of. `peek` and
    `reserve` are not counted. A wait (`acquire_wait`, `permit`, `permit_async`, a guard's wait) whose first answer
    was a refusal counts in `waits_started`; when it ends, in `waits_granted`, `waits_given_up` (the timeout) or
    `waits_interrupted` (`interrupt()` or an error), with its length in `wait_seconds_total` and `wait_buckets`. A
    wait abandoned by its caller (a cancelled task, Ctrl-C) never ends. `fallbacks` counts the decisions a failure
    policy made because the shared store could not; `shared` and the `store_*`/breaker figures describe the store
    (all zero for a limiter of this process)."""

    granted: int
    refused: Mapping[str, int]
    fallbacks: Mapping[str, int]
    waits_started: int
    waits_granted: int
    waits_given_up: int
    waits_interrupted: int
    wait_seconds_total: float
    #: Each bucket's upper bound in seconds (inclusive; the last is `math.inf`).
    wait_bucket_le: Tuple[float, ...]
    #: Ended waits per bucket (not cumulative).
    wait_buckets: Tuple[int, ...]
    responses: Mapping[str, int]
    rate_limited: Mapping[str, int]
    shared: bool
    breaker_open: bool
    store_operations: int
    store_failures: Mapping[str, int]
    breaker_openings: int
    replays_pending: int

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    @property
    def waits_ended(self) -> int:
        return self.waits_granted + self.waits_given_up + self.waits_interrupted

    @classmethod
    def _from_c(cls, s: n.XgStats) -> "Stats":
        return cls(
            granted=int(s.granted),
            refused=_by_word(REASON, s.refused),
            fallbacks=_by_word(FAILURE_POLICY, s.fallbacks),
            waits_started=int(s.waits_started),
            waits_granted=int(s.waits_granted),
            waits_given_up=int(s.waits_given_up),
            waits_interrupted=int(s.waits_interrupted),
            wait_seconds_total=s.wait_ms_total / 1000,
            wait_bucket_le=tuple(math.inf if ms == n.XG_NO_DEADLINE else ms / 1000 for ms in s.wait_bucket_le_ms),
            wait_buckets=tuple(int(count) for count in s.wait_buckets),
            responses=_by_word(CATEGORY, s.responses),
            rate_limited=_by_word(RATE_LIMIT_PROBLEM, s.rate_limited),
            shared=s.shared == 1,
            breaker_open=s.breaker_open == 1,
            store_operations=int(s.store_operations),
            store_failures=_by_word(STORE_FAILURE_KIND, s.store_failures),
            breaker_openings=int(s.breaker_openings),
            replays_pending=int(s.replays_pending),
        )


def tenant_for_log(t: bytes) -> str:
    return t.decode("utf-8", "replace") if t else "(tenantless)"


def wait_started(t: bytes, reason: Any, wait_ms: int) -> None:
    if log.isEnabledFor(logging.DEBUG):
        words = n.refusal_words(REASON.code(reason), wait_ms) if reason is not None else "refused"
        log.debug("xeroguard: tenant %s waits for a permit: %s", tenant_for_log(t), words)


def wait_ended(t: bytes, how: str, reason: Any, waited_ms: int) -> None:
    """`how`: granted, gave up, interrupted, or what ended it; `reason`: the refusal that started the wait."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug("xeroguard: tenant %s waited %s for a permit (%s): %s", tenant_for_log(t),
                  n.duration_words(waited_ms), reason if reason is not None else "refused", how)


class _Outage:
    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.started = time.monotonic()
        self.reminded = self.started
        self.decisions = 1


class Watch:
    """One limiter's log of outages and of its breaker. `outage` is read without the lock on every decision (a
    plain attribute read); everything else happens only while the failure policy decides or at its end."""

    #: While an outage lasts, how often it is recalled (WARNING, with the count so far).
    REMIND_SECONDS = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.outage: Optional[_Outage] = None
        self._breaker_open = False
        self._breaker_openings = 0

    def decided(self, fallback: Any) -> bool:
        """A decision's `fallback` (None: the store decided). Returns True when an outage began or ended, so the
        caller reads the stats (and the breaker's state with them)."""
        now = time.monotonic()
        with self._lock:
            outage = self.outage
            if fallback is None:
                if outage is None:
                    return False
                self.outage = None
                log.info("xeroguard: the shared store answers again after %s; meanwhile the %s failure policy "
                         "made %d decisions", n.duration_words(int((now - outage.started) * 1000)), outage.policy,
                         outage.decisions)
                return True
            if outage is None:
                self.outage = _Outage(fallback)
                log.warning("xeroguard: the shared store cannot be reached: the %s failure policy decides until it "
                            "answers (logged once; a count follows)", fallback)
                return True
            outage.decisions += 1
            if now - outage.reminded >= self.REMIND_SECONDS:
                outage.reminded = now
                log.warning("xeroguard: the shared store is still out of reach after %s: %d decisions by the %s "
                            "failure policy so far", n.duration_words(int((now - outage.started) * 1000)),
                            outage.decisions, outage.policy)
            return False

    def saw(self, stats: Stats) -> None:
        """Logs the breaker's changes since the last reading."""
        with self._lock:
            was_open, openings = self._breaker_open, self._breaker_openings
            self._breaker_open, self._breaker_openings = stats.breaker_open, stats.breaker_openings
        opened = stats.breaker_openings - openings
        if stats.breaker_open and not was_open:
            log.info("xeroguard: the store's breaker is open (opened %d times so far): the failure policy decides "
                     "until it closes", stats.breaker_openings)
        elif was_open and not stats.breaker_open:
            log.info("xeroguard: the store's breaker is closed: the store decides again")
        elif opened > 0:
            log.info("xeroguard: the store's breaker opened %d times since the last reading (now %s)", opened,
                     "open" if stats.breaker_open else "closed")

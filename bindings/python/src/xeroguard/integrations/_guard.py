"""The loop every integration shares: wait for a permit, send, classify, observe, release, maybe retry.

Whether to retry and how long to wait are the library's answers (classify + backoff); this only follows them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Mapping, Optional, Tuple, TypeVar, Union

from .._args import TENANTLESS, Seconds, seconds_to_ms
from .._classify import Classification, RetryPolicy, backoff, classify
from .._limiter import Limiter

log = logging.getLogger("xeroguard")

R = TypeVar("R")
# What one attempt gives back: the result to hand to the caller, and (status, headers, body) to classify.
Attempt = Tuple[R, Tuple[int, Any, bytes]]
Retries = Union[RetryPolicy, int, None]

TENANT_HEADER = "xero-tenant-id"


def resolve_policy(retries: Retries) -> RetryPolicy:
    """A RetryPolicy, or an int (max retries with the other defaults), or None for the defaults."""
    if retries is None:
        return RetryPolicy()
    if isinstance(retries, RetryPolicy):
        return retries
    if isinstance(retries, int) and not isinstance(retries, bool):
        return RetryPolicy(max_retries=retries)  # range-checked there (ValueError)
    raise TypeError("retries must be a RetryPolicy, an int or None, not %s" % type(retries).__name__)


def tenant_of(headers: Optional[Mapping[Any, Any]]) -> str:
    """The Xero-Tenant-Id request header. A request without one (e.g. /connections) is a tenantless call,
    so this answers TENANTLESS for it."""
    if not headers:
        return TENANTLESS
    for name, value in headers.items():
        key = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        if key.lower() == TENANT_HEADER:
            return value.decode("utf-8") if isinstance(value, bytes) else str(value)
    return TENANTLESS


class Guard:
    """Shared settings: the limiter, the retry policy, and how long to wait for a permit (seconds, or a
    timedelta).

    The permit wait defaults to the policy's `max_wait`, so a day limit is never slept through beyond
    that cap: the limiter refuses at once with PermitTimeout when its wait is certainly longer.
    """

    def __init__(self, limiter: Limiter, retries: Retries = None, permit_timeout: Optional[Seconds] = None) -> None:
        if not isinstance(limiter, Limiter):
            raise TypeError("limiter must be a xeroguard.Limiter")
        self.limiter = limiter
        self.policy = resolve_policy(retries)
        # Checked here, so a bad value fails when the client is set up rather than on its first request.
        self.permit_timeout_ms = (self.policy.max_wait_ms if permit_timeout is None
                                  else seconds_to_ms(permit_timeout, "permit_timeout"))
        self.permit_timeout = self.permit_timeout_ms / 1000

    def run(self, tenant: str, attempt: Callable[[], Attempt[R]], discard: Callable[[R], None] = lambda r: None,
            sleep: Callable[[float], None] = time.sleep) -> R:
        n = 0
        while True:
            with self.limiter.permit(tenant, timeout_ms=self.permit_timeout_ms) as permit:
                result, (status, headers, body) = attempt()
                c = classify(status, headers, body)
                # Observed before the permit goes back, so the next waiter sees the server's view.
                permit.observe(c)
            wait = self._next_wait(c, n + 1)
            if wait is None:
                return result
            n += 1
            discard(result)
            sleep(wait)

    async def run_async(self, tenant: str, attempt: Callable[[], Awaitable[Attempt[R]]],
                        discard: Callable[[R], Awaitable[None]]) -> R:
        n = 0
        while True:
            async with self.limiter.permit_async(tenant, timeout_ms=self.permit_timeout_ms) as permit:
                result, (status, headers, body) = await attempt()
                c = classify(status, headers, body)
                permit.observe(c)
            wait = self._next_wait(c, n + 1)
            if wait is None:
                return result
            n += 1
            await discard(result)
            await asyncio.sleep(wait)

    def _next_wait(self, c: Classification, attempt: int) -> Optional[float]:
        """Seconds to wait before retry `attempt`, or None to hand the response to the caller."""
        if not c.retryable:
            return None
        d = backoff(c, attempt, self.policy)
        if not d.retry:
            log.info("xeroguard: not retrying %d %s: %s (wait %d ms)", c.status, c.category,
                     d.give_up if d.give_up else "?", d.wait_ms)
            return None
        log.debug("xeroguard: retry %d after %d ms (%d %s)", attempt, d.wait_ms, c.status, c.category)
        return d.wait

"""Limiter.stats(), the xeroguard logger (waits, outages, the breaker) and the Prometheus collector."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import threading
import time
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import xeroguard
from xeroguard import Limiter, LimiterInterrupted, Limits, Stats
from xeroguard._stats import Watch
from xeroguard.integrations.prometheus import XeroguardCollector, register
from redis_server import RedisServer

T = "4f8a2a1e-0000-4000-8000-000000000001"


@pytest.fixture
def limiter() -> Iterator[Limiter]:
    with Limiter(Limits.exact(), clock="manual") as lim:
        yield lim


def fill_minute(limiter: Limiter, tenant: str = T) -> None:
    for _ in range(60):
        limiter.record(tenant)


def wait_until(condition: Any, timeout: float = 5.0) -> None:
    """Polls for another thread's progress (its first step), never for a window: the clock is manual."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def debug_lines(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.name == "xeroguard" and r.levelno == logging.DEBUG]


def test_a_new_limiter_has_every_word_at_zero(limiter: Limiter) -> None:
    s = limiter.stats()
    assert s.granted == 0 and s.refused_total == 0 and s.waits_started == s.waits_ended == 0
    assert set(s.refused) == {r.value for r in xeroguard.Reason}
    assert set(s.responses) == {c.value for c in xeroguard.Category}
    assert set(s.rate_limited) == {p.value for p in xeroguard.RateLimitProblem}
    assert set(s.fallbacks) == {p.value for p in xeroguard.FailurePolicy}
    assert set(s.store_failures) == {k.value for k in xeroguard.StoreFailureKind}
    assert s.wait_bucket_le == (0.01, 0.1, 1.0, 10.0, 65.0, 600.0, math.inf)
    assert len(s.wait_buckets) == len(s.wait_bucket_le) and not any(s.wait_buckets)
    assert not s.shared and not s.breaker_open and s.store_operations == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.granted = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.refused["minute"] = 3  # type: ignore[index]


def test_decisions_responses_and_429s_are_counted(limiter: Limiter) -> None:
    for _ in range(60):
        limiter.release(limiter.acquire(T))
    assert not limiter.acquire(T).granted
    limiter.peek(T)  # not a decision
    limiter.observe(T, b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nX-Rate-Limit-Problem: day\r\n\r\n")
    limiter.observe("other", b"HTTP/1.1 200 OK\r\n\r\n{}")
    s = limiter.stats()
    assert (s.granted, s.refused["minute"], s.refused_total) == (60, 1, 1)
    assert (s.responses["rate_limited"], s.responses["success"], sum(s.responses.values())) == (1, 1, 2)
    assert (s.rate_limited["day"], sum(s.rate_limited.values())) == (1, 1)


def test_an_async_wait_is_counted_once_and_logged(limiter: Limiter, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="xeroguard")
    fill_minute(limiter)

    async def main() -> xeroguard.Decision:
        async def wait() -> xeroguard.Decision:
            async with limiter.permit_async(T, 120) as permit:
                return permit.decision

        task = asyncio.ensure_future(wait())
        while limiter.stats().waits_started == 0:
            await asyncio.sleep(0.001)
        limiter.advance(30)
        await asyncio.sleep(0.01)  # a few steps at 30 s: re-asks, not decisions
        limiter.advance(30)
        return await task

    assert asyncio.run(main()).granted
    s = limiter.stats()
    assert (s.waits_started, s.waits_granted, s.waits_ended) == (1, 1, 1)
    assert (s.granted, s.refused["minute"], s.wait_seconds_total) == (1, 1, 60.0)
    assert s.wait_buckets[s.wait_bucket_le.index(65.0)] == 1 and sum(s.wait_buckets) == 1
    assert debug_lines(caplog) == [
        "xeroguard: tenant %s waits for a permit: minute limit: next call in 1 min" % T,
        "xeroguard: tenant %s waited 1 min for a permit (minute): granted" % T,
    ]


def test_a_blocking_wait_that_gives_up_or_is_interrupted_says_so(limiter: Limiter,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="xeroguard")
    fill_minute(limiter)
    assert not limiter.acquire_wait(T, timeout=1).granted  # the minute frees in 60 s: at once
    assert debug_lines(caplog)[-1] == "xeroguard: tenant %s waited 0 ms for a permit (minute): gave up at once" % T

    errors: List[BaseException] = []

    def wait_forever() -> None:
        try:
            limiter.acquire_wait(T)
        except BaseException as e:  # noqa: B902 - handed to the test thread
            errors.append(e)

    waiter = threading.Thread(target=wait_forever)
    waiter.start()
    wait_until(lambda: limiter.stats().waits_started == 2)
    limiter.advance(2.5)
    limiter.interrupt()
    waiter.join(10)
    assert len(errors) == 1 and isinstance(errors[0], LimiterInterrupted)
    s = limiter.stats()
    assert (s.waits_started, s.waits_given_up, s.waits_interrupted, s.waits_granted) == (2, 1, 1, 0)
    assert s.wait_seconds_total == 2.5
    assert debug_lines(caplog)[-1] == "xeroguard: tenant %s waited 2.5 s for a permit (minute): interrupted" % T


def test_waits_are_not_logged_unless_debug_is_on(limiter: Limiter, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="xeroguard")
    fill_minute(limiter)
    assert not limiter.acquire_wait(T, timeout=1).granted
    assert debug_lines(caplog) == [] and limiter.stats().waits_given_up == 1


def warnings_and_infos(caplog: pytest.LogCaptureFixture) -> List[Tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records
            if r.name == "xeroguard" and r.levelno >= logging.INFO]


def test_an_outage_is_logged_once_then_counted(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="xeroguard")
    with Limiter(Limits.exact(), redis_url=redis_server.url, key_prefix="py-stats-outage", on_store_error="open",
                 deadline=0.2, breaker_cooldown=0.05) as limiter:
        limiter.release(limiter.acquire(T))
        redis_server.kill()
        decisions = [limiter.acquire(T) for _ in range(5)]
        assert {d.fallback for d in decisions} == {xeroguard.FailurePolicy.OPEN}
        # The outage once, and the breaker's opening when a reading of the stats saw it (3 failures in a row).
        logged = warnings_and_infos(caplog)
        assert logged[0] == (logging.WARNING, "xeroguard: the shared store cannot be reached: the open failure "
                                              "policy decides until it answers (logged once; a count follows)")
        assert all(m.startswith("xeroguard: the store's breaker is open") for _, m in logged[1:]), logged
        limiter._watch.REMIND_SECONDS = 0.0  # type: ignore[misc]  # every later fallback recalls the count
        limiter.acquire(T)
        assert warnings_and_infos(caplog)[-1][1].endswith(": 6 decisions by the open failure policy so far")
        s = limiter.stats()
        assert (s.fallbacks["open"], s.granted) == (6, 7)

        limiter._watch.REMIND_SECONDS = 60.0  # type: ignore[misc]  # no reminders while it comes back
        redis_server.restart()
        before = len(warnings_and_infos(caplog))
        wait_until(lambda: limiter.acquire(T).fallback is None)  # once the breaker's cooldown has passed
        # The end of the outage, and the breaker's closing (or its openings since the last reading) as the stats
        # read at that moment show it.
        after = warnings_and_infos(caplog)[before:]
        ends = [m for level, m in after if m.startswith("xeroguard: the shared store answers again after ")]
        assert len(ends) == 1, after
        assert ends[0].endswith("meanwhile the open failure policy made %d decisions"
                                % limiter.stats().fallbacks["open"])
        assert all(level == logging.INFO for level, _ in after), after
        assert all(m in ends or m.startswith("xeroguard: the store's breaker ") for _, m in after), after


def stats_with(**figures: Any) -> Stats:
    base = Limiter(clock="manual")
    try:
        return dataclasses.replace(base.stats(), **figures)
    finally:
        base.close()


def test_the_breaker_is_logged_when_the_stats_show_it_changed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="xeroguard")
    watch = Watch()
    watch.saw(stats_with(shared=True))
    watch.saw(stats_with(shared=True, breaker_open=True, breaker_openings=1))
    watch.saw(stats_with(shared=True, breaker_open=True, breaker_openings=1))  # no change: nothing
    watch.saw(stats_with(shared=True, breaker_open=False, breaker_openings=1))
    watch.saw(stats_with(shared=True, breaker_open=False, breaker_openings=4))
    assert [m for _, m in warnings_and_infos(caplog)] == [
        "xeroguard: the store's breaker is open (opened 1 times so far): the failure policy decides until it closes",
        "xeroguard: the store's breaker is closed: the store decides again",
        "xeroguard: the store's breaker opened 3 times since the last reading (now closed)",
    ]


def scrape(registry: CollectorRegistry) -> Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]:
    """Every sample of the exposition: (name, sorted labels) -> value."""
    text = generate_latest(registry).decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_the_prometheus_collector_exposes_the_stats(limiter: Limiter) -> None:
    registry = CollectorRegistry()
    register(limiter, registry=registry)
    fill_minute(limiter)
    assert not limiter.acquire(T).granted
    assert not limiter.acquire_wait(T, timeout=1).granted
    limiter.release(limiter.acquire("other"))
    limiter.observe(T, b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nX-Rate-Limit-Problem: minute\r\n\r\n")
    samples = scrape(registry)
    assert samples[("xeroguard_decisions_total", (("reason", ""), ("result", "granted")))] == 1
    assert samples[("xeroguard_decisions_total", (("reason", "minute"), ("result", "refused")))] == 2
    assert samples[("xeroguard_decisions_total", (("reason", "day"), ("result", "refused")))] == 0
    assert samples[("xeroguard_waits_started_total", ())] == 1
    assert samples[("xeroguard_waits_total", (("outcome", "given_up"),))] == 1
    assert samples[("xeroguard_wait_seconds_bucket", (("le", "0.01"),))] == 1
    assert samples[("xeroguard_wait_seconds_bucket", (("le", "+Inf"),))] == 1
    assert samples[("xeroguard_wait_seconds_count", ())] == 1
    assert samples[("xeroguard_wait_seconds_sum", ())] == 0
    assert samples[("xeroguard_responses_total", (("category", "rate_limited"),))] == 1
    assert samples[("xeroguard_rate_limited_total", (("problem", "minute"),))] == 1
    assert samples[("xeroguard_store_fallbacks_total", (("policy", "open"),))] == 0
    assert not any("tenant" in dict(labels) for _, labels in samples), "no tenant label by default"
    assert not any(name.startswith(("xeroguard_store_operations", "xeroguard_breaker")) for name, _ in samples), \
        "store figures only for a limiter with a store"
    with pytest.raises(ValueError):
        register(limiter, registry=registry)  # the same names twice in one registry


def test_named_limiters_and_named_tenants(limiter: Limiter) -> None:
    registry = CollectorRegistry()
    with Limiter(clock="manual") as second:
        registry.register(XeroguardCollector({"app": limiter, "reports": second}, tenants=[T]))
        limiter.release(limiter.acquire(T))
        for _ in range(59):
            limiter.record(T)
        permit = second.acquire(T)
        samples = scrape(registry)
        second.release(permit)
    granted = (("limiter", "app"), ("reason", ""), ("result", "granted"))
    assert samples[("xeroguard_decisions_total", granted)] == 1
    assert samples[("xeroguard_decisions_total", (("limiter", "reports"),) + granted[1:])] == 1
    assert samples[("xeroguard_tenant_calls", (("limiter", "app"), ("tenant", T), ("window", "minute")))] == 60
    assert samples[("xeroguard_tenant_remaining", (("limiter", "app"), ("tenant", T), ("window", "minute")))] == 0
    assert samples[("xeroguard_tenant_wait_seconds", (("limiter", "app"), ("tenant", T)))] == 60.0
    assert samples[("xeroguard_tenant_in_flight", (("limiter", "reports"), ("tenant", T)))] == 1
    with pytest.raises(TypeError):
        XeroguardCollector({"app": object()})  # type: ignore[dict-item]

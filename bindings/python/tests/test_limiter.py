"""Limiter behaviour on a manual clock, permits as context managers, handle lifetime, threads."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from typing import List

import pytest

import xeroguard
from xeroguard import Limiter, Limits, Reason, TenantLimits, WindowLimit

T = "4f8a2a1e-0000-4000-8000-000000000001"


@pytest.fixture
def limiter() -> Limiter:
    with Limiter(clock="manual") as lim:
        yield lim


def test_default_limits_are_the_librarys() -> None:
    d = Limits()
    assert d == Limits.default()
    assert d.tenant_minute == WindowLimit(60, window=60, margin=0.5)
    assert d.tenant_day == WindowLimit(5000, window_ms=86_400_000, margin_ms=60_000)
    assert (d.tenant_concurrency, d.permit_timeout_ms) == (5, 120_000)
    assert Limits.exact().tenant_minute.margin_ms == 0


def test_sixty_a_minute_then_refused_until_the_window_moves(limiter: Limiter) -> None:
    for _ in range(60):
        d = limiter.acquire(T)
        assert d.granted and d.permit != 0
        limiter.release(d)
    refused = limiter.acquire(T)
    assert not refused.granted and refused.permit == 0
    assert refused.reason is Reason.MINUTE
    assert refused.wait_ms == 60_500  # window + margin, from the calls at t=0
    assert limiter.peek(T) == refused  # peek answers the same and takes nothing
    limiter.advance(60.499)
    assert limiter.peek(T).wait_ms == 1 and not limiter.acquire(T).granted
    limiter.advance(ms=1)
    assert limiter.now() == 60_500
    p = limiter.peek(T)
    assert p.granted and p.permit == 0
    assert limiter.acquire(T).granted
    # Other tenants have their own windows.
    assert limiter.acquire("other").granted


def test_peek_takes_nothing(limiter: Limiter) -> None:
    for _ in range(100):
        assert limiter.peek(T).granted
    assert limiter.snapshot(T)["minute"]["count"] == 0


def test_record_counts_calls_made_elsewhere(limiter: Limiter) -> None:
    for _ in range(61):
        limiter.record(T)
    s = limiter.snapshot(T)
    # The minute window keeps only its newest `limit` calls, so its count saturates; the day has room.
    assert s["minute"]["count"] == 60 and s["minute"]["remaining"] == 0
    assert s["day"]["count"] == 61
    assert s["wait_reason"] == "minute" and s["wait_ms"] > 0


def test_concurrency_permits(limiter: Limiter) -> None:
    held = [limiter.acquire(T) for _ in range(5)]
    assert all(d.granted for d in held)
    sixth = limiter.acquire(T)
    assert not sixth.granted and sixth.reason is Reason.CONCURRENCY
    limiter.release(held.pop())
    assert limiter.acquire(T).granted
    with pytest.raises(xeroguard.UnknownPermitError):
        limiter.release(123456789)
    limiter.release(0)  # tenantless permits are 0: a no-op


def test_reserve_and_cancel(limiter: Limiter) -> None:
    for _ in range(60):
        limiter.release(limiter.acquire(T))
    r = limiter.reserve(T)
    assert r.at_ms == 60_500 and r.wait_ms == 60_500
    assert limiter.snapshot(T)["minute"]["booked"] == 1
    limiter.cancel(r)
    assert limiter.snapshot(T)["minute"]["booked"] == 0
    with pytest.raises(xeroguard.UnknownReservationError):
        limiter.cancel(r)
    # Booked slots are taken first come, first served: 60 at 60.5 s, the next one later.
    slots = [limiter.reserve(T) for _ in range(61)]
    assert [s.at_ms for s in slots[:60]] == [60_500] * 60
    assert slots[60].at_ms > 60_500


def test_observed_429_blocks_the_tenant(limiter: Limiter) -> None:
    c = xeroguard.classify(429, {"X-Rate-Limit-Problem": "minute", "Retry-After": "20"})
    limiter.observe(T, c)
    d = limiter.acquire(T)
    assert not d.granted and d.wait_ms == 20_000 and d.reason is Reason.RETRY_AFTER
    assert limiter.acquire("other").granted  # a minute breach blocks only its tenant
    limiter.advance(20)
    assert limiter.acquire(T).granted


def test_observed_raw_app_minute_429_blocks_everyone(limiter: Limiter) -> None:
    raw = b"HTTP/1.1 429 Too Many Requests\r\nX-Rate-Limit-Problem: appminute\r\nRetry-After: 7\r\n\r\n"
    limiter.observe(T, raw)
    for tenant in (T, "other", ""):
        d = limiter.acquire(tenant)
        assert not d.granted and d.wait_ms == 7000, tenant


def test_observed_remaining_headers_raise_usage(limiter: Limiter) -> None:
    limiter.observe(T, xeroguard.classify(200, {"X-MinLimit-Remaining": "1", "X-DayLimit-Remaining": "4000"}))
    s = limiter.snapshot(T)
    assert s["minute"]["count"] == 59 and s["day"]["count"] == 1000
    assert limiter.acquire(T).granted
    assert limiter.acquire(T).reason is Reason.MINUTE


def test_observed_offline_organisation(limiter: Limiter) -> None:
    limiter.observe(T, xeroguard.classify(503, {}, b"The Organisation is offline"))
    d = limiter.acquire(T)
    assert not d.granted and d.reason is Reason.ORGANISATION_OFFLINE and d.wait_ms == 300_000


def test_tenant_limits(limiter: Limiter) -> None:
    limiter.set_tenant_limits(T, TenantLimits(minute_limit=60, day_limit=3, concurrency=5))
    for _ in range(3):
        limiter.release(limiter.acquire(T))
    assert limiter.acquire(T).reason is Reason.DAY
    limiter.set_tenant_limits(T, None)
    assert limiter.acquire(T).granted


def test_manual_clock_only_operations() -> None:
    with Limiter() as mono:
        with pytest.raises(xeroguard.WrongClockError) as e:
            mono.advance(1)
        assert "xg_limiter_advance_ms" in e.value.message
    with Limiter(clock="manual") as manual:
        manual.set_now(ms=10)
        with pytest.raises(xeroguard.InvalidArgumentError):
            manual.set_now(ms=5)
    with pytest.raises(ValueError):
        Limiter(clock="sundial")


def test_invalid_input_is_reported() -> None:
    with Limiter(clock="manual") as lim:
        with pytest.raises(xeroguard.TooLargeError):
            lim.acquire("x" * 257)
        with pytest.raises(xeroguard.InvalidUtf8Error):
            lim.acquire(b"\xff")
        with pytest.raises(TypeError):
            lim.acquire(42)  # type: ignore[arg-type]
    with pytest.raises(xeroguard.InvalidArgumentError, match="window_ms"):
        Limiter(Limits(tenant_minute=WindowLimit(10, window=0)))
    with Limiter(Limits(max_tenants=1), clock="manual") as capped:
        assert capped.acquire("a").granted
        with pytest.raises(xeroguard.TooManyTenantsError):
            capped.acquire("b")


def test_permit_releases_on_exit_and_on_exceptions(limiter: Limiter) -> None:
    with limiter.permit(T) as p:
        assert limiter.snapshot(T)["in_flight"] == 1
    assert p.released and limiter.snapshot(T)["in_flight"] == 0
    with pytest.raises(RuntimeError):
        with limiter.permit(T):
            raise RuntimeError("the call failed")
    assert limiter.snapshot(T)["in_flight"] == 0
    assert limiter.snapshot(T)["minute"]["count"] == 2


def test_an_expired_permit_exits_quietly() -> None:
    with Limiter(Limits(permit_timeout_ms=1000), clock="manual") as lim:
        with lim.permit(T) as p:
            lim.advance(1.001)  # the call outlived its permit: the slot is already free
            assert lim.snapshot(T)["in_flight"] == 0
        assert p.released
        with pytest.raises(xeroguard.UnknownPermitError):
            lim.release(p.id)


def test_permit_timeout_is_clear(limiter: Limiter) -> None:
    for _ in range(60):
        limiter.release(limiter.acquire(T))
    started = time.monotonic()
    with pytest.raises(xeroguard.PermitTimeout) as e:
        with limiter.permit(T, timeout=1.0):
            pass
    # The library gives up at once: the minute wait certainly ends after the timeout.
    assert time.monotonic() - started < 0.5
    assert e.value.reason == "minute" and e.value.wait_ms == 60_500
    # In the library's words (xg_refusal_words), the limit named, units a person reads.
    assert isinstance(e.value, TimeoutError)
    assert str(e.value) == "no permit for tenant %r within 1 s: minute limit: next call in 60.5 s" % T


def test_blocking_permit_wakes_on_clock_moves(limiter: Limiter) -> None:
    for _ in range(60):
        limiter.release(limiter.acquire(T))
    got: List[int] = []

    def waiter() -> None:
        with limiter.permit(T, timeout=120.0):
            got.append(limiter.now())

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.05)
    assert not got
    limiter.advance(60.5)
    t.join(5)
    assert got == [60_500]


def test_blocking_permit_wakes_on_release(limiter: Limiter) -> None:
    held = [limiter.acquire(T) for _ in range(5)]
    done = threading.Event()

    def waiter() -> None:
        with limiter.permit(T, timeout=1000.0):
            done.set()

    t = threading.Thread(target=waiter)
    t.start()
    assert not done.wait(0.1)
    limiter.release(held[0])
    assert done.wait(5)
    t.join(5)


def test_async_permit() -> None:
    async def main() -> None:
        with Limiter(clock="manual") as lim:
            held = [lim.acquire(T) for _ in range(5)]
            order: List[str] = []

            async def call(name: str) -> None:
                async with lim.permit_async(T, timeout=600) as p:
                    order.append(name)
                    assert p.id != 0

            task = asyncio.ensure_future(call("waiter"))
            await asyncio.sleep(0.05)
            assert order == []  # concurrency is full
            lim.release(held.pop())
            await asyncio.wait_for(task, 5)
            assert order == ["waiter"] and lim.snapshot(T)["in_flight"] == 4

            with pytest.raises(KeyError):
                async with lim.permit_async(T):
                    raise KeyError("boom")
            assert lim.snapshot(T)["in_flight"] == 4

            for d in held:
                lim.release(d)
            for _ in range(60 - lim.snapshot(T)["minute"]["count"]):
                lim.release(lim.acquire(T))
            with pytest.raises(xeroguard.PermitTimeout):
                async with lim.permit_async(T, timeout=1.0):
                    pass
            task = asyncio.ensure_future(call("after advance"))
            await asyncio.sleep(0.05)
            lim.advance(ms=60_500)
            await asyncio.wait_for(task, 5)
            assert order[-1] == "after advance"

    asyncio.run(main())


def test_close_is_idempotent_and_final() -> None:
    lim = Limiter(clock="manual")
    with lim:
        assert lim.acquire(T).granted
    assert lim.closed
    lim.close()
    with pytest.raises(ValueError, match="closed"):
        lim.acquire(T)
    with pytest.raises(ValueError):
        lim.snapshot(T)


def test_close_waits_for_calls_in_progress() -> None:
    lim = Limiter(clock="manual")
    for _ in range(60):
        lim.release(lim.acquire(T))
    result: List[object] = []

    def waiter() -> None:
        result.append(lim.acquire_wait(T, timeout_ms=60_500))  # blocks inside the library

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.05)
    lim.close()  # must not free the handle under the waiting thread
    assert lim._handle  # still alive: the waiter is inside a call
    with pytest.raises(ValueError):
        lim.peek(T)
    # The handle stays usable by the call in progress; it returns and the last one out frees it.
    lim_handle_advance = xeroguard._native.lib.xg_limiter_advance_ms
    lim_handle_advance(lim._handle, 60_500)
    t.join(5)
    assert not t.is_alive() and result and result[0].granted
    assert not lim._handle


def test_threads_hammering_one_limiter_add_up() -> None:
    limits = Limits(tenant_minute=WindowLimit(500, window=60), tenant_day=WindowLimit(5000, window=86_400),
                    tenant_concurrency=3, app_minute=WindowLimit(700, window=60))
    tenants = ["a", "b", "c"]
    granted = {t: 0 for t in tenants}
    refused = {t: 0 for t in tenants}
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        tenant = tenants[i % 3]
        barrier.wait()
        for _ in range(400):
            d = lim.acquire(tenant)
            with lock:
                if d.granted:
                    granted[tenant] += 1
                else:
                    refused[tenant] += 1
            if d.granted:
                lim.release(d)

    with Limiter(limits, clock="manual") as lim:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(granted.values()) + sum(refused.values()) == 8 * 400
        assert sum(granted.values()) == 700  # the app window is the binding limit: filled exactly
        assert all(granted[t] <= 500 for t in tenants)
        for t in tenants:
            s = lim.snapshot(t)
            assert s["minute"]["count"] == granted[t] and s["in_flight"] == 0
        assert lim.snapshot("a")["app_minute"]["count"] == 700


def test_threads_with_blocking_permits_respect_concurrency() -> None:
    limits = Limits(tenant_concurrency=2)
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    with Limiter(limits) as lim:
        def worker() -> None:
            nonlocal in_flight, peak
            for _ in range(10):
                with lim.permit(T, timeout=10):
                    with lock:
                        in_flight += 1
                        peak = max(peak, in_flight)
                    time.sleep(0.001)
                    with lock:
                        in_flight -= 1

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert peak == 2
        s = lim.snapshot(T)
        assert s["minute"]["count"] == 60 and s["in_flight"] == 0


def test_a_booking_beyond_the_horizon_is_refused() -> None:
    # One call per 24 days: the third booking would lie 48 days ahead, beyond the library's ~24.8-day horizon.
    with Limiter(Limits(tenant_day=WindowLimit(1, window=dt.timedelta(days=24))), clock="manual") as lim:
        assert [r.at_ms for r in (lim.reserve(T), lim.reserve(T))] == [0, 24 * 86_400_000]
        with pytest.raises(xeroguard.BookingTooFarError, match="booking horizon") as refused:
            lim.reserve(T)
        assert refused.value.status_name == "booking_too_far"
        assert lim.snapshot(T)["day"]["booked"] == 1  # nothing was booked by the refusal

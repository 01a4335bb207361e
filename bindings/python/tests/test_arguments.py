"""Public arguments: bad input is refused in Python with a clear message before it reaches the library (ctypes
would wrap -1 into 4294967295), durations are seconds everywhere (float, int or timedelta) with the `*_ms`
keywords kept, and tenantless calls are explicit."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import http
import math
import pickle
import threading
from typing import Any, Callable, Iterator, List

import httpx
import pytest
import requests

import xeroguard
from conftest import FAST_RETRIES, scaled_limits
from xeroguard import TENANTLESS, Limiter, Limits, RetryPolicy, TenantLimits, WindowLimit
from xeroguard.integrations._guard import tenant_of
from xeroguard.integrations.httpx import XeroGuardTransport
from xeroguard.integrations.requests import guard_session

T = "4f8a2a1e-0000-4000-8000-000000000001"
U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1
NAN = float("nan")


@pytest.fixture
def limiter() -> Iterator[Limiter]:
    with Limiter(clock="manual") as lim:
        yield lim


def fill_minute(limiter: Limiter) -> None:
    for _ in range(60):
        limiter.release(limiter.acquire(T))


# 1. Refused before they cross.


@pytest.mark.parametrize("build, message", [
    (lambda: Limits(tenant_concurrency=-1), "tenant_concurrency must be in 0..4294967295, got -1"),
    (lambda: Limits(tenant_concurrency=U32_MAX + 1), "tenant_concurrency must be in 0..4294967295"),
    (lambda: Limits(max_tenants=-3), "max_tenants must be in 0..4294967295, got -3"),
    (lambda: Limits(permit_timeout_ms=-1), "permit_timeout_ms must be in 0..18446744073709551615, got -1"),
    (lambda: Limits(permit_timeout=-0.5), "permit_timeout must not be negative"),
    (lambda: WindowLimit(-1, window=60), "limit must be in 0..4294967295, got -1"),
    (lambda: WindowLimit(U32_MAX + 1, window=60), "limit must be in 0..4294967295"),
    (lambda: WindowLimit(60, window_ms=U64_MAX + 1), "window_ms must be in 0..18446744073709551615"),
    (lambda: WindowLimit(60, window=-60), "window must not be negative, got -60 s"),
    (lambda: WindowLimit(60, window=NAN), "window must be a number of seconds, not NaN"),
    (lambda: WindowLimit(60, window=math.inf), "window must be at most 18446744073709551615 ms"),
    (lambda: WindowLimit(60, window=2.0**64), "window must be at most"),
    (lambda: WindowLimit(60, window=60, margin=dt.timedelta(seconds=-1)), "margin must not be negative"),
    (lambda: WindowLimit(60, window=60, margin_ms=-500), "margin_ms must be in 0..18446744073709551615"),
    (lambda: TenantLimits(minute_limit=-1, day_limit=1000, concurrency=5), "minute_limit must be in 0..4294967295"),
    (lambda: TenantLimits(minute_limit=60, day_limit=U32_MAX + 1, concurrency=5), "day_limit must be in"),
    (lambda: RetryPolicy(max_retries=-1), "max_retries must be in 0..4294967295, got -1"),
    (lambda: RetryPolicy(base=-0.5), "base must not be negative"),
    (lambda: RetryPolicy(max_wait=NAN), "max_wait must be a number of seconds, not NaN"),
    (lambda: RetryPolicy(jitter_ms=-1), "jitter_ms must be in 0..18446744073709551615"),
])
def test_configuration_out_of_range_is_a_value_error(build: Callable[[], Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        build()


@pytest.mark.parametrize("build, message", [
    (lambda: Limits(tenant_concurrency=True), "tenant_concurrency must be an int, not bool"),
    (lambda: Limits(tenant_concurrency=2.5), "tenant_concurrency must be an int, not float"),
    (lambda: Limits(tenant_concurrency="5"), "tenant_concurrency must be an int, not str"),
    (lambda: Limits(tenant_minute=60), "tenant_minute must be a WindowLimit, not int"),
    (lambda: WindowLimit(True, window=60), "limit must be an int, not bool"),
    (lambda: WindowLimit(60, window="60"), r"window must be seconds \(int, float or datetime.timedelta\), not str"),
    (lambda: WindowLimit(60, window=True), "window must be seconds"),
    (lambda: WindowLimit(60, window=60, window_ms=60_000), r"give window \(seconds\) or window_ms"),
    (lambda: WindowLimit(60), r"window \(seconds\) or window_ms \(milliseconds\) is required"),
    (lambda: WindowLimit(60, window_ms=60_000.0), "window_ms must be an int, not float"),
    (lambda: WindowLimit(60, 60_000, 500), "positional argument"),  # durations are keyword-only
    (lambda: RetryPolicy(max_retries=None), "max_retries must be an int, not None"),
    (lambda: Limiter(limits={"tenant_concurrency": 5}), "limits must be a Limits or None, not dict"),
    (lambda: Limiter(clock=None), "clock must be 'monotonic' or 'manual', not NoneType"),
])
def test_configuration_of_the_wrong_type_is_a_type_error(build: Callable[[], Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        build()


def test_the_c_types_bounds_are_accepted() -> None:
    limits = Limits(tenant_concurrency=U32_MAX, max_tenants=U32_MAX, permit_timeout_ms=U64_MAX,
                    tenant_day=WindowLimit(U32_MAX, window_ms=2**31 - 1, margin_ms=0))
    with Limiter(limits, clock="manual") as lim:
        assert lim.acquire(T).granted
    assert WindowLimit(0, window=0).window_ms == 0  # a disabled window
    # The C type's bound crosses; the library judges it (windows reach at most about 24.8 days).
    longest = Limits(tenant_day=WindowLimit(5000, window_ms=U64_MAX))
    with pytest.raises(xeroguard.InvalidArgumentError, match="window_ms"):
        Limiter(longest, clock="manual")


def test_a_negative_advance_leaves_the_clock_alone(limiter: Limiter) -> None:
    limiter.advance(5)
    for bad, error in [(-5, ValueError), (-0.001, ValueError), (NAN, ValueError), (math.inf, ValueError),
                       (dt.timedelta(seconds=-1), ValueError), (True, TypeError), ("5", TypeError)]:
        with pytest.raises(error):
            limiter.advance(bad)
        with pytest.raises(error):
            limiter.set_now(bad)
    with pytest.raises(ValueError, match="ms must be in 0..18446744073709551615, got -5"):
        limiter.advance(ms=-5)
    with pytest.raises(ValueError):
        limiter.set_now(ms=U64_MAX + 1)
    with pytest.raises(TypeError, match="not both"):
        limiter.advance(1, ms=1000)
    with pytest.raises(TypeError, match="required"):
        limiter.advance()
    assert limiter.now() == 5000


def test_a_negative_timeout_is_refused_not_forever(limiter: Limiter) -> None:
    fill_minute(limiter)
    for kwargs in [dict(timeout_ms=-1), dict(timeout=-1), dict(timeout=-0.5), dict(timeout=NAN),
                   dict(timeout=dt.timedelta(milliseconds=-1)), dict(timeout_ms=U64_MAX + 1)]:
        with pytest.raises(ValueError):
            limiter.acquire_wait(T, **kwargs)
        with pytest.raises(ValueError):
            with limiter.permit(T, **kwargs):
                pass
    with pytest.raises(TypeError):
        limiter.acquire_wait(T, timeout=True)
    with pytest.raises(TypeError, match="not both"):
        limiter.acquire_wait(T, timeout=1, timeout_ms=1000)
    assert not limiter.acquire_wait(T, timeout_ms=0).granted
    assert limiter.snapshot(T)["minute"]["count"] == 60
    # The largest u64 of ms is accepted and waits as long as needed, like no timeout at all.
    got: List[xeroguard.Decision] = []
    waiter = threading.Thread(target=lambda: got.append(limiter.acquire_wait(T, timeout_ms=U64_MAX)))
    waiter.start()
    limiter.advance(60.5)
    waiter.join(10)
    assert got and got[0].granted


def test_ids_are_range_checked(limiter: Limiter) -> None:
    for bad in (-1, U64_MAX + 1):
        with pytest.raises(ValueError, match="permit must be in 0..18446744073709551615"):
            limiter.release(bad)
        with pytest.raises(ValueError, match="reservation must be in"):
            limiter.cancel(bad)
    with pytest.raises(TypeError, match="permit must be an int, not bool"):
        limiter.release(True)
    with pytest.raises(TypeError):
        limiter.cancel(None)  # type: ignore[arg-type]


TENANT_CALLS: List[Callable[[Limiter, Any], Any]] = [
    lambda lim, t: lim.acquire(t),
    lambda lim, t: lim.acquire_wait(t, timeout=0),
    lambda lim, t: lim.peek(t),
    lambda lim, t: lim.record(t),
    lambda lim, t: lim.reserve(t),
    lambda lim, t: lim.snapshot(t),
    lambda lim, t: lim.observe(t, xeroguard.classify(200, {}, b"")),
    lambda lim, t: lim.set_tenant_limits(t, None),
    lambda lim, t: lim.permit(t, timeout=0).__enter__(),
    lambda lim, t: asyncio.run(lim.permit_async(t, timeout=0).__aenter__()),
]


@pytest.mark.parametrize("call", TENANT_CALLS)
def test_none_is_no_tenant(limiter: Limiter, call: Callable[[Limiter, Any], Any]) -> None:
    with pytest.raises(TypeError, match=r"not None; for a tenantless call .* xeroguard.TENANTLESS"):
        call(limiter, None)
    with pytest.raises(TypeError, match="tenant must be a str or bytes, not int"):
        call(limiter, 42)
    with pytest.raises(ValueError, match="cannot be encoded as UTF-8"):
        call(limiter, "\udc80")
    s = limiter.snapshot(TENANTLESS)
    assert s["app_minute"]["count"] == 0 and s["app_minute"]["booked"] == 0  # nothing crossed


def test_tenantless_calls_are_explicit(limiter: Limiter) -> None:
    assert TENANTLESS == ""
    with pytest.raises(TypeError):
        limiter.acquire()  # type: ignore[call-arg]
    d = limiter.acquire(TENANTLESS)
    assert d.granted and d.permit == 0  # tenantless calls hold no permit
    assert limiter.acquire(b"").granted
    s = limiter.snapshot(TENANTLESS)
    assert s["app_minute"]["count"] == 2 and s["minute"]["count"] == 0
    assert limiter.snapshot(T)["app_minute"]["count"] == 2  # the app window is everyone's


def test_classify_refuses_what_it_cannot_send() -> None:
    with pytest.raises(TypeError, match="status must be an int, not bool"):
        xeroguard.classify(True, {}, b"")
    with pytest.raises(TypeError, match="status must be an int, not str"):
        xeroguard.classify("429", {}, b"")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="status must be in 0..65535, got -1"):
        xeroguard.classify(-1, {}, b"")
    with pytest.raises(TypeError, match="header value must be str or bytes, not None"):
        xeroguard.classify(200, {"Retry-After": None}, b"")
    with pytest.raises(TypeError, match="header value must be str or bytes, not int"):
        xeroguard.classify(429, {"Retry-After": 37}, b"")
    with pytest.raises(TypeError, match="headers must be a mapping or"):
        xeroguard.classify(200, "Retry-After: 37", b"")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="body must be bytes or str, not int"):
        xeroguard.classify(200, {}, 42)  # type: ignore[arg-type]  # bytes(42) would be 42 NUL bytes
    with pytest.raises(TypeError, match="raw must be bytes or str, not NoneType"):
        xeroguard.classify_raw(None)  # type: ignore[arg-type]
    for now in (-1, 0, NAN, 1_792_567_690_000):  # the last is milliseconds: refused, with a pointer to now_ms
        with pytest.raises(ValueError, match="now must be"):
            xeroguard.classify(429, {}, b"", now=now)
    with pytest.raises(ValueError, match="now_ms must be in"):
        xeroguard.classify(429, {}, b"", now_ms=-1)
    with pytest.raises(TypeError, match="not both"):
        xeroguard.classify(429, {}, b"", now=1.0, now_ms=1000)
    c = xeroguard.classify(429, {}, b"")
    with pytest.raises(ValueError, match="attempt must be in 0..4294967295, got -1"):
        xeroguard.backoff(c, -1)
    with pytest.raises(ValueError, match="attempt must be in"):
        xeroguard.backoff(c, U32_MAX + 1)
    with pytest.raises(TypeError, match="attempt must be an int, not bool"):
        xeroguard.backoff(c, True)
    with pytest.raises(TypeError, match="backoff takes a Classification, not dict"):
        xeroguard.backoff(c.to_dict(), 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="policy must be a RetryPolicy"):
        xeroguard.backoff(c, 1, 5)  # type: ignore[arg-type]


def test_a_classification_made_in_python_is_checked_too() -> None:
    c = xeroguard.classify(429, {"Retry-After": "3"}, b"")
    forged = xeroguard.Classification.from_dict(dict(c.to_dict(), retry_after_ms=-5))
    with pytest.raises(ValueError, match="retry_after_ms must be in"):
        xeroguard.backoff(forged, 1)
    huge = xeroguard.Classification.from_dict(dict(c.to_dict(), error_number=2**63))
    with pytest.raises(ValueError, match="error_number must be in -9223372036854775808..9223372036854775807"):
        xeroguard.backoff(huge, 1)
    negative = xeroguard.Classification.from_dict(dict(c.to_dict(), error_number=-2))
    assert xeroguard.backoff(negative, 1).retry  # any int64 error number is fine


def test_an_int_enum_status_is_an_int() -> None:
    c = xeroguard.classify(http.HTTPStatus.TOO_MANY_REQUESTS, {"Retry-After": "3"}, b"")
    assert c.status == 429 and type(c.status) is int and c.retry_after == 3.0


def test_guards_check_their_timeout_when_built() -> None:
    with Limiter() as lim:
        with pytest.raises(ValueError, match="permit_timeout must not be negative"):
            XeroGuardTransport(lim, permit_timeout=-1)
        with pytest.raises(ValueError, match="permit_timeout must be a number of seconds, not NaN"):
            guard_session(requests.Session(), lim, permit_timeout=NAN)
        assert XeroGuardTransport(lim, permit_timeout=dt.timedelta(seconds=2)).guard.permit_timeout == 2.0
        with pytest.raises(ValueError, match="max_retries must be in 0..4294967295, got -1"):
            XeroGuardTransport(lim, retries=-1)
        with pytest.raises(TypeError, match="retries must be a RetryPolicy, an int or None, not bool"):
            XeroGuardTransport(lim, retries=True)


# 2. Seconds in, seconds out; the *_ms forms keep working.


def test_durations_are_seconds_or_timedeltas_or_ms() -> None:
    by_seconds = WindowLimit(60, window=60.0, margin=0.5)
    assert by_seconds == WindowLimit(60, window_ms=60_000, margin_ms=500)
    assert by_seconds == WindowLimit(60, window=dt.timedelta(minutes=1), margin=dt.timedelta(milliseconds=500))
    assert by_seconds == WindowLimit(limit=60, window=60, margin_ms=500)
    assert (by_seconds.window, by_seconds.margin) == (60.0, 0.5)
    assert Limits() == Limits.default()
    assert Limits(permit_timeout=2.5).permit_timeout_ms == 2500
    assert Limits(permit_timeout_ms=2500).permit_timeout == 2.5
    assert Limits().permit_timeout == 120.0
    policy = RetryPolicy(base=0.1, max_backoff=dt.timedelta(seconds=2), jitter=0, max_wait=300)
    assert policy == RetryPolicy(base_ms=100, max_backoff_ms=2000, jitter_ms=0, max_wait_ms=300_000)
    assert (policy.base, policy.max_backoff, policy.jitter, policy.max_wait) == (0.1, 2.0, 0.0, 300.0)
    assert RetryPolicy().max_wait == 300.0


def test_seconds_round_up_to_whole_milliseconds() -> None:
    # 0.1 s is exactly 100 ms although 0.1 * 1000 is 100.00000000000001 in floating point.
    assert WindowLimit(1, window=0.1).window_ms == 100
    assert WindowLimit(1, window=0.3).window_ms == 300
    assert WindowLimit(1, window=0.0001).window_ms == 1  # never shorter than asked
    assert WindowLimit(1, window=dt.timedelta(microseconds=1500)).window_ms == 2
    assert WindowLimit(1, window=86_400).window_ms == 86_400_000


def test_limiter_clock_and_waits_in_seconds(limiter: Limiter) -> None:
    limiter.advance(1.5)
    assert (limiter.now(), limiter.time()) == (1500, 1.5)
    limiter.advance(ms=500)
    limiter.advance(dt.timedelta(seconds=1))
    assert limiter.now() == 3000
    limiter.set_now(4)
    assert limiter.now() == 4000
    limiter.set_now(ms=4500)
    assert limiter.time() == 4.5
    fill_minute(limiter)
    refused = limiter.acquire(T)
    assert (refused.wait_ms, refused.wait) == (60_500, 60.5)
    r = limiter.reserve(T)
    assert (r.at_ms, r.at, r.wait_ms, r.wait) == (65_000, 65.0, 60_500, 60.5)


def test_acquire_wait_timeout_in_seconds(limiter: Limiter) -> None:
    fill_minute(limiter)  # the next call is allowed in exactly 60.5 s
    # A wait that certainly ends after the timeout is refused at once: 60.499 s reaches the library as
    # 60,499 ms, 1 ms short.
    for kwargs in [dict(timeout=60.499), dict(timeout=dt.timedelta(milliseconds=60_499)),
                   dict(timeout_ms=60_499)]:
        d = limiter.acquire_wait(T, **kwargs)
        assert not d.granted and d.wait == 60.5
    # 60.5 s is enough: the waiter blocks until the clock gets there.
    got: List[xeroguard.Decision] = []
    waiter = threading.Thread(target=lambda: got.append(limiter.acquire_wait(T, timeout=60.5)))
    waiter.start()
    limiter.advance(60.5)
    waiter.join(10)
    assert got and got[0].granted


def test_permit_timeout_reports_seconds(limiter: Limiter) -> None:
    fill_minute(limiter)
    with pytest.raises(xeroguard.PermitTimeout) as e:
        with limiter.permit(T, timeout=dt.timedelta(seconds=2)):
            pass
    assert (e.value.timeout_ms, e.value.timeout) == (2000, 2.0)
    assert (e.value.wait_ms, e.value.wait) == (60_500, 60.5)
    with pytest.raises(xeroguard.PermitTimeout) as e:
        with limiter.permit(T, timeout_ms=1500):
            pass
    assert e.value.timeout == 1.5


def test_results_carry_seconds_beside_ms() -> None:
    c = xeroguard.classify(429, {"X-Rate-Limit-Problem": "minute", "Retry-After": "37"}, b"")
    assert (c.retry_after_ms, c.retry_after) == (37_000, 37.0)
    assert (c.recommended_wait_ms, c.recommended_wait) == (37_000, 37.0)
    not_found = xeroguard.classify(404, {}, b"")
    assert not_found.retry_after is None and not_found.recommended_wait is None
    d = xeroguard.backoff(c, 1, RetryPolicy(jitter=0))
    assert d.wait_ms >= 37_000 and d.wait == d.wait_ms / 1000
    assert "retry_after" not in c.to_dict()  # the §5 object keeps exactly its keys


def test_seconds_forms_survive_pickling_and_replace() -> None:
    w = WindowLimit(60, window=60, margin=0.5)
    assert pickle.loads(pickle.dumps(w)) == w
    assert dataclasses.replace(w, limit=30) == WindowLimit(30, window=60, margin=0.5)
    assert dataclasses.replace(w, window_ms=30_000).window == 30.0
    limits = Limits(permit_timeout=5)
    assert dataclasses.replace(limits, max_tenants=10).permit_timeout == 5.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.limit = 5  # type: ignore[misc]


# Integrations pass the request's tenant, and a request without one explicitly as tenantless.


def test_tenant_of_a_request() -> None:
    assert tenant_of(None) == TENANTLESS
    assert tenant_of({"Accept": "application/json"}) == TENANTLESS
    assert tenant_of({"Xero-Tenant-Id": T}) == T
    assert tenant_of({b"xero-tenant-id": T.encode()}) == T
    assert tenant_of(httpx.Headers({"XERO-TENANT-ID": T})) == T


def test_httpx_guard_counts_each_request_for_its_tenant() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={})

    with Limiter(clock="manual") as lim, httpx.Client(transport=XeroGuardTransport(lim, httpx.MockTransport(handler),
                                                                                   retries=0)) as client:
        client.get("https://api.xero.com/api.xro/2.0/Invoices", headers={"Xero-Tenant-Id": T})
        client.get("https://api.xero.com/connections")
        assert lim.snapshot(T)["minute"]["count"] == 1
        assert lim.snapshot(TENANTLESS)["minute"]["count"] == 0
        assert lim.snapshot(TENANTLESS)["app_minute"]["count"] == 2


def test_requests_guard_counts_tenantless_calls_on_the_app_window(xero_server: Any) -> None:
    server = xero_server()
    with Limiter(scaled_limits(60)) as lim:
        session = guard_session(requests.Session(), lim, retries=FAST_RETRIES, prefixes=[server.base_url + "/"])
        assert session.get(server.base_url + "/connections", timeout=30).json() == []
        assert session.get(server.api_url + "/Invoices", headers={"Xero-Tenant-Id": "tenant-a"},
                           timeout=30).status_code == 200
        assert lim.snapshot(TENANTLESS)["app_minute"]["count"] == 2
        assert lim.snapshot("tenant-a")["minute"]["count"] == 1
    assert server.stats()["tenantless_admitted"] == 1

"""The shared limiter: `Limiter(limits, redis_url=..., key_prefix=...)` against real redis-server processes (the
redis_server fixtures: unix sockets or free ports, never the default port, stopped by pid)."""

from __future__ import annotations

import datetime as dt
import math
import os
import pathlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List

import pytest
import requests

import xeroguard
from conftest import FAST_RETRIES, assert_paced, scaled_limits
from redis_server import RedisServer
from xeroguard import FailurePolicy, Limiter, Limits, Reason, StoreUnavailableError, WindowLimit
from xeroguard.integrations.requests import guard_session

T = "4f8a2a1e-0000-4000-8000-000000000001"
# A port nothing listens on: connecting is refused at once.
UNREACHABLE = "redis://127.0.0.1:1"
# Only turns a hang into a failure: far beyond the deadlines the tests set.
HANG_S = 5.0


def minute_limits(limit: int, concurrency: int = 5) -> Limits:
    return Limits(tenant_minute=WindowLimit(limit, window=60), tenant_concurrency=concurrency)


def fill(limiter: Limiter, tenant: str, calls: int) -> List[bool]:
    """`calls` acquisitions, each released at once; whether each was granted."""
    granted = []
    for _ in range(calls):
        d = limiter.acquire(tenant)
        granted.append(d.granted)
        if d.granted:
            limiter.release(d)
    return granted


def test_two_limiters_on_one_prefix_share_a_tenants_minute_exactly(redis_server: RedisServer) -> None:
    options: Dict[str, Any] = dict(clock="manual", redis_url=redis_server.url, key_prefix="py-shared")
    with Limiter(minute_limits(10), **options) as a, Limiter(minute_limits(10), **options) as b:
        assert a.shared and b.shared
        assert fill(a, T, 6) == [True] * 6
        assert fill(b, T, 4) == [True] * 4
        for limiter in (a, b):
            refused = limiter.acquire(T)
            assert not refused.granted and refused.reason is Reason.MINUTE and refused.wait_ms == 60_000
            assert refused.fallback is None  # the store decided
        assert a.snapshot(T)["minute"]["count"] == 10 and a.snapshot(T)["tenants_tracked"] == 0
        assert a.acquire("other tenant").granted  # a window per tenant
        for limiter in (a, b):
            limiter.advance(60)  # the manual reading is the store's clock: each handle brings its own
        assert fill(b, T, 1) == [True]
    assert redis_server.keys("xg:{py-shared}:*")  # the state lives in the store


def test_permits_and_waits_work_unchanged_on_a_shared_limiter(redis_server: RedisServer) -> None:
    with Limiter(minute_limits(60, concurrency=1), clock="manual", redis_url=redis_server.url,
                 key_prefix="py-permits") as limiter:
        with limiter.permit(T, timeout=1) as permit:
            assert permit.fallback is None and limiter.snapshot(T)["in_flight"] == 1
            refused = limiter.acquire_wait(T, timeout=0)
            assert not refused.granted and refused.reason is Reason.CONCURRENCY
        assert limiter.snapshot(T)["in_flight"] == 0
        limiter.interrupt()
        with pytest.raises(xeroguard.LimiterInterrupted):
            limiter.acquire_wait(T)


def test_limits_that_differ_from_the_stored_ones_are_refused_unless_adopted(redis_server: RedisServer) -> None:
    options: Dict[str, Any] = dict(clock="manual", redis_url=redis_server.url, key_prefix="py-adopt")
    with Limiter(minute_limits(10), **options) as first:
        with pytest.raises(xeroguard.LimitsDifferError, match="given 5 per 60000 ms.*stored 10 per 60000 ms"):
            Limiter(minute_limits(5), **options)
        with Limiter(minute_limits(5), adopt_stored_limits=True, **options) as adopted:
            assert adopted.limits == minute_limits(10)  # what it paces by: the stored limits
            assert fill(adopted, T, 11) == [True] * 10 + [False]
        assert first.limits == minute_limits(10)


def test_an_unreachable_store_fails_creation(redis_server_factory: Callable[..., RedisServer]) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as refused:
        Limiter(redis_url=UNREACHABLE, key_prefix="py-nowhere", deadline=0.25)
    assert time.monotonic() - started < HANG_S
    assert isinstance(refused.value, ConnectionError) and refused.value.status_name == "store_unavailable"
    # A store that accepts connections and never answers: creation ends with the deadline.
    paused = redis_server_factory(tcp=True)
    paused.pause()
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        Limiter(redis_url=paused.url, key_prefix="py-paused", deadline=0.2)
    assert time.monotonic() - started < HANG_S


def test_inspect_reads_a_prefix_and_writes_nothing(redis_server: RedisServer) -> None:
    with Limiter(minute_limits(5), redis_url=redis_server.url, key_prefix="py-inspected") as writer:
        writer.acquire(T)
        with Limiter.inspect(redis_server.url, "py-inspected", deadline=0.5) as reader:
            assert reader.shared and reader.limits == minute_limits(5)  # the stored limits
            assert reader.snapshot(T)["minute"]["count"] == 1
            assert reader.peek(T).granted
            for write in (lambda: reader.acquire(T), lambda: reader.record(T),
                          lambda: reader.set_tenant_limits(T, None)):
                with pytest.raises(xeroguard.InvalidArgumentError, match="only reads"):
                    write()
            assert writer.snapshot(T)["minute"]["count"] == 1  # nothing counted by the reader
    before = redis_server.keys()
    with Limiter.inspect(redis_server.url, "py-empty") as empty:
        with pytest.raises(xeroguard.NoStoredLimitsError):
            empty.snapshot(T)
    assert redis_server.keys() == before, "an inspected empty prefix stays empty"


@pytest.mark.parametrize("policy", ["open", "local"])
def test_open_and_local_limiters_are_created_while_the_store_is_down(
        redis_server_factory: Callable[..., RedisServer], policy: str) -> None:
    server = redis_server_factory(tcp=True)
    server.kill()
    with Limiter(minute_limits(4), redis_url=server.url, key_prefix="py-startdown-" + policy, on_store_error=policy,
                 workers=2, deadline=0.2, breaker_cooldown=0.1) as limiter:
        d = limiter.acquire(T)
        assert (d.granted, d.fallback) == (True, FailurePolicy(policy))
        limiter.release(d)
        server.restart()
        by_the_policy = 1  # the call above
        started = time.monotonic()
        while True:  # the policy decides until the breaker's cooldown lets a call reach the store again
            d = limiter.acquire(T)
            if d.granted:
                limiter.release(d)
            if d.fallback is None:
                break
            by_the_policy += d.granted
            assert time.monotonic() - started < HANG_S, "the store never decided"
            time.sleep(0.01)
        assert d.granted and time.monotonic() - started < 0.1 + 1.0
        # The first answered call stored the limits, and the store paces by them: 4 a minute, that call included
        # (under "local" the calls its share granted count too: they were counted into the store when it answered).
        assert server.command("HGET", "xg:{py-startdown-%s}:cfg" % policy, "lim")
        granted = fill(limiter, T, 4)
        assert granted == sorted(granted, reverse=True) and not granted[-1], granted
        counted = by_the_policy if policy == "local" else 0
        assert granted.count(True) == 3 - counted, (granted, by_the_policy)


def test_a_limiter_made_while_the_store_is_down_reports_the_limits_it_adopts(
        redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory(tcp=True)
    server.kill()
    options: Dict[str, Any] = dict(redis_url=server.url, key_prefix="py-startdown-adopt", deadline=0.2,
                                   breaker_cooldown=0.1)
    with Limiter(minute_limits(5), on_store_error="open", adopt_stored_limits=True, **options) as limiter:
        assert limiter.limits == minute_limits(5)  # its own until the store answers
        server.restart()
        Limiter(minute_limits(10), **options).close()  # another process stores its limits first
        started = time.monotonic()
        while limiter.acquire(T).fallback is not None:
            assert time.monotonic() - started < HANG_S, "the store never decided"
            time.sleep(0.01)
        assert limiter.limits == minute_limits(10)
    assert limiter.limits == minute_limits(10)  # closed: the limits it last paced by


def test_a_closed_limiter_is_not_created_while_the_store_is_down(
        redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory(tcp=True)
    server.kill()
    with pytest.raises(StoreUnavailableError):
        Limiter(redis_url=server.url, key_prefix="py-startdown-closed", on_store_error="closed", deadline=0.2)


@pytest.mark.parametrize("policy, granted, reason", [
    ("open", True, None),
    ("closed", False, Reason.STORE_UNAVAILABLE),
    (FailurePolicy.LOCAL, True, None),
])
def test_a_killed_store_leaves_the_decision_to_the_failure_policy(
        redis_server: RedisServer, policy: Any, granted: bool, reason: Any) -> None:
    with Limiter(minute_limits(60), clock="manual", redis_url=redis_server.url, key_prefix="py-killed",
                 on_store_error=policy, workers=2, deadline=0.2) as limiter:
        assert limiter.acquire(T).fallback is None
        redis_server.kill()
        d = limiter.acquire(T)
        assert (d.granted, d.reason, d.fallback) == (granted, reason, FailurePolicy(policy))
        if granted:
            limiter.release(d)


def test_the_local_policy_keeps_this_workers_share(redis_server: RedisServer) -> None:
    with Limiter(minute_limits(10, concurrency=0), clock="manual", redis_url=redis_server.url,
                 key_prefix="py-local", on_store_error="local", workers=2, deadline=0.2) as limiter:
        redis_server.kill()
        decisions = [limiter.acquire(T) for _ in range(6)]
        assert [d.granted for d in decisions] == [True] * 5 + [False]  # 10 a minute shared by 2 workers
        assert {d.fallback for d in decisions} == {FailurePolicy.LOCAL}


def test_a_limiter_made_before_fork_decides_in_parent_and_child(redis_server: RedisServer) -> None:
    with Limiter(minute_limits(10), clock="manual", redis_url=redis_server.url, key_prefix="py-fork") as limiter:
        assert fill(limiter, T, 1) == [True]  # connected, and counted, before the fork
        pid = os.fork()
        if pid == 0:  # the child: five calls of its own through the same handle, then out without pytest
            code = 3
            try:
                code = 0 if fill(limiter, T, 5) == [True] * 5 else 1
            finally:
                os._exit(code)
        parent = fill(limiter, T, 4)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        assert parent == [True] * 4
        assert limiter.snapshot(T)["minute"]["count"] == 10  # both processes' calls, counted once each
        assert not limiter.acquire(T).granted


def test_the_requests_guard_paces_through_redis_with_no_429(xero_server: Any, redis_server: RedisServer) -> None:
    server = xero_server(minute_limit=10, concurrency=3, app_minute_limit=25)
    tenants = ["tenant-a", "tenant-b", "tenant-c"]
    local = threading.local()
    with Limiter(scaled_limits(10, concurrency=3, app_minute_limit=25), redis_url=redis_server.url,
                 key_prefix="py-e2e") as limiter:
        def call(tenant: str) -> int:
            if not hasattr(local, "session"):
                local.session = guard_session(requests.Session(), limiter, retries=FAST_RETRIES,
                                              prefixes=[server.base_url + "/"])
            return int(local.session.get(server.api_url + "/Invoices", timeout=30,
                                         headers={"Xero-Tenant-Id": tenant}).status_code)

        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(call, [t for _ in range(10) for t in tenants]))
    assert statuses == [200] * 30
    assert_paced(server.stats(), 30, minute_limit=10, concurrency=3, app_minute_limit=25)


@pytest.mark.parametrize("options, error, message", [
    (dict(), TypeError, "key_prefix is required with redis_url"),
    (dict(key_prefix=""), ValueError, "key_prefix must not be empty"),
    (dict(key_prefix="x" * 129), ValueError, "key_prefix must be at most 128 bytes of UTF-8, got 129"),
    (dict(key_prefix="é" * 65), ValueError, "got 130"),
    (dict(key_prefix=b"app"), TypeError, "key_prefix must be a str, not bytes"),
    (dict(key_prefix="app", deadline=0), ValueError, "deadline must be at least 1 ms"),
    (dict(key_prefix="app", deadline=10.001), ValueError, "deadline must be at most 10000 ms"),
    (dict(key_prefix="app", deadline_ms=10_001), ValueError, "deadline_ms must be in 0..10000"),
    (dict(key_prefix="app", deadline=-1), ValueError, "deadline must not be negative"),
    (dict(key_prefix="app", deadline=math.nan), ValueError, "not NaN"),
    (dict(key_prefix="app", deadline=0.25, deadline_ms=250), TypeError, "not both"),
    (dict(key_prefix="app", breaker_cooldown=-1), ValueError, "breaker_cooldown must not be negative"),
    (dict(key_prefix="app", on_store_error="sideways"), ValueError, "on_store_error must be 'closed', 'open' or"),
    (dict(key_prefix="app", on_store_error=2), TypeError, "on_store_error must be"),
    (dict(key_prefix="app", workers=0), ValueError, "workers must be at least 1"),
    (dict(key_prefix="app", workers=-1), ValueError, "workers must be in 0..4294967295"),
    (dict(key_prefix="app", workers=True), TypeError, "workers must be an int, not bool"),
    (dict(key_prefix="app", replace_limits="yes"), TypeError, "replace_limits must be a bool"),
    (dict(key_prefix="app", adopt_stored_limits=1), TypeError, "adopt_stored_limits must be a bool"),
    (dict(key_prefix="app", replace_limits=True, adopt_stored_limits=True), ValueError, "exclude each other"),
    (dict(key_prefix="app", tls_ca_file=""), ValueError, "tls_ca_file must not be empty"),
    (dict(key_prefix="app", tls_ca_file=b"/ca.pem"), TypeError, "tls_ca_file must be a path"),
])
def test_redis_options_are_checked_before_anything_crosses(options: Dict[str, Any], error: type,
                                                           message: str) -> None:
    # The store is unreachable: any check that let the options through would end in StoreUnavailableError.
    with pytest.raises(error, match=message):
        Limiter(redis_url=UNREACHABLE, **options)


@pytest.mark.parametrize("options, message", [
    (dict(key_prefix="app"), "key_prefix only apply with redis_url"),
    (dict(on_store_error="open", workers=2), "on_store_error, workers only apply with redis_url"),
    (dict(replace_limits=True), "replace_limits only apply"),
    (dict(adopt_stored_limits=True), "adopt_stored_limits only apply"),
])
def test_redis_options_need_a_redis_url(options: Dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Limiter(**options)


def test_what_only_the_library_can_judge_is_refused_by_it(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="redis_url must not be empty"):
        Limiter(redis_url="", key_prefix="app")
    with pytest.raises(TypeError, match="redis_url must be a str"):
        Limiter(redis_url=5, key_prefix="app")  # type: ignore[arg-type]
    with pytest.raises(xeroguard.InvalidArgumentError):
        Limiter(redis_url="http://127.0.0.1:1", key_prefix="app")
    with pytest.raises(xeroguard.InvalidArgumentError, match="braces, spaces or control characters"):
        Limiter(redis_url=UNREACHABLE, key_prefix="my app")
    # A CA file (a str or a path) reaches the library as it was given.
    missing = tmp_path / "no ca é.pem"
    with pytest.raises(xeroguard.InvalidArgumentError, match=str(missing)):
        Limiter(redis_url="rediss://127.0.0.1:1", key_prefix="app", tls_ca_file=missing)


def test_accepted_forms_of_the_options(redis_server: RedisServer) -> None:
    with Limiter(minute_limits(60), clock="manual", redis_url=redis_server.url, key_prefix="é" * 64,
                 deadline=dt.timedelta(seconds=10), breaker_cooldown_ms=0, on_store_error=FailurePolicy.OPEN,
                 workers=4, replace_limits=True) as limiter:
        assert limiter.acquire(T).granted
        assert "prefix" in repr(limiter)


def test_a_url_password_stays_out_of_the_repr(redis_server_factory: Callable[..., RedisServer]) -> None:
    server = redis_server_factory(tcp=True)
    assert server.port is not None
    assert server.command("ACL", "SETUSER", "py", "on", ">secret", "~*", "&*", "+@all") == "OK"
    url = server.url.replace("redis://", "redis://py:secret@")
    with Limiter(redis_url=url, key_prefix="py-repr") as limiter:
        assert limiter.acquire(T).granted
        assert "secret" not in repr(limiter) and "redis://***@127.0.0.1:%d prefix 'py-repr'" % server.port in repr(
            limiter)

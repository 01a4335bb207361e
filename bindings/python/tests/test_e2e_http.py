"""requests and httpx (sync and async) against the local Xero-like server, with and without the guards."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, List

import httpx
import pytest
import requests

import xeroguard
from conftest import FAST_RETRIES, assert_paced, scaled_limits
from xeroguard.integrations.httpx import AsyncXeroGuardTransport, XeroGuardTransport
from xeroguard.integrations.requests import XeroGuardAdapter, guard_session

TENANTS = ["tenant-a", "tenant-b", "tenant-c"]
PER_TENANT = 15
CALLS = len(TENANTS) * PER_TENANT
# Server and limiter agree: 10 a (scaled) minute per tenant, 3 in flight, 25 a minute for the app.
SERVER = dict(minute_limit=10, concurrency=3, app_minute_limit=25)
# Unguarded runs only need to show 429s: a longer minute makes that certain even on a loaded machine.
UNGUARDED = dict(SERVER, minute_ms=5000)


def limiter() -> xeroguard.Limiter:
    return xeroguard.Limiter(scaled_limits(10, concurrency=3, app_minute_limit=25))


def order() -> List[str]:
    return [t for _ in range(PER_TENANT) for t in TENANTS]


def headers(tenant: str) -> dict:
    return {"Xero-Tenant-Id": tenant, "Authorization": "Bearer test", "Accept": "application/json"}


# requests


def run_requests(server: Any, make_session: Any) -> List[int]:
    local = threading.local()

    def call(tenant: str) -> int:
        if not hasattr(local, "session"):
            local.session = make_session()  # a Session per thread; the limiter is shared
        return local.session.get(server.api_url + "/Invoices", headers=headers(tenant), timeout=30).status_code

    with ThreadPoolExecutor(6) as pool:
        return list(pool.map(call, order()))


def test_requests_guarded(xero_server: Any) -> None:
    server = xero_server(**SERVER)
    with limiter() as lim:
        statuses = run_requests(server, lambda: guard_session(requests.Session(), lim, retries=FAST_RETRIES,
                                                              prefixes=[server.base_url + "/"]))
    assert statuses == [200] * CALLS
    assert_paced(server.stats(), CALLS, **SERVER)


def test_requests_unguarded(xero_server: Any) -> None:
    server = xero_server(**UNGUARDED)
    statuses = run_requests(server, requests.Session)
    assert 429 in statuses and server.stats()["count_429"] == statuses.count(429)


# The retry tests use one tenant whose server window (phase set by the fixture's seed) turns at ~980 ms, so
# the calls made in the first few ms after the server starts share a window.


def test_requests_adapter_retries_a_429(xero_server: Any) -> None:
    server = xero_server(minute_limit=1)
    with limiter() as lim:
        # Another client used the minute: the first answer is a 429, retried after Retry-After.
        requests.get(server.api_url + "/Invoices", headers=headers("tenant-a"))
        session = requests.Session()
        session.mount(server.base_url + "/", XeroGuardAdapter(lim, retries=FAST_RETRIES))
        r = session.get(server.api_url + "/Invoices", headers=headers("tenant-a"))
        assert r.status_code == 200 and r.json()["Invoices"] == []
    assert [e["status"] for e in server.log()] == [200, 429, 200]


def test_requests_adapter_returns_the_last_response_when_it_gives_up(xero_server: Any) -> None:
    server = xero_server(minute_limit=1)
    with limiter() as lim:
        requests.get(server.api_url + "/Contacts", headers=headers("tenant-a"))
        session = guard_session(requests.Session(), lim, retries=0, prefixes=[server.base_url + "/"])
        r = session.get(server.api_url + "/Contacts", headers=headers("tenant-a"))
        assert r.status_code == 429 and r.headers["X-Rate-Limit-Problem"] == "minute"
    assert [e["status"] for e in server.log()] == [200, 429]


# httpx, sync


def test_httpx_sync_guarded(xero_server: Any) -> None:
    server = xero_server(**SERVER)
    with limiter() as lim, httpx.Client(transport=XeroGuardTransport(lim, retries=FAST_RETRIES)) as client:
        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(
                lambda t: client.get(server.api_url + "/Invoices", headers=headers(t)).status_code, order()))
    assert statuses == [200] * CALLS
    assert_paced(server.stats(), CALLS, **SERVER)


def test_httpx_sync_unguarded(xero_server: Any) -> None:
    server = xero_server(**UNGUARDED)
    with httpx.Client() as client, ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(
            lambda t: client.get(server.api_url + "/Invoices", headers=headers(t)).status_code, order()))
    assert 429 in statuses


def test_httpx_sync_post_bodies_are_resent_on_retry(xero_server: Any) -> None:
    server = xero_server(minute_limit=1)
    httpx.get(server.api_url + "/Invoices", headers=headers("tenant-a"))
    with limiter() as lim, httpx.Client(transport=XeroGuardTransport(lim, retries=FAST_RETRIES)) as client:
        r = client.post(server.api_url + "/Invoices", headers=headers("tenant-a"),
                        content=(b for b in [b'{"Invoices": ', b"[]}"]))  # a one-shot stream
        assert r.status_code == 200
    log = server.log()
    assert [e["status"] for e in log] == [200, 429, 200]
    assert [e["body_bytes"] for e in log[1:]] == [16, 16]


# httpx, async


async def gather_async(server: Any, client: httpx.AsyncClient) -> List[int]:
    async def call(tenant: str) -> int:
        return (await client.get(server.api_url + "/Invoices", headers=headers(tenant))).status_code

    return list(await asyncio.gather(*(call(t) for t in order())))


def test_httpx_async_guarded(xero_server: Any) -> None:
    server = xero_server(**SERVER)

    async def main() -> List[int]:
        with limiter() as lim:
            async with httpx.AsyncClient(transport=AsyncXeroGuardTransport(lim, retries=FAST_RETRIES)) as client:
                return await gather_async(server, client)

    assert asyncio.run(main()) == [200] * CALLS
    assert_paced(server.stats(), CALLS, **SERVER)


def test_httpx_async_unguarded(xero_server: Any) -> None:
    server = xero_server(**UNGUARDED)

    async def main() -> List[int]:
        async with httpx.AsyncClient() as client:
            return await gather_async(server, client)

    assert 429 in asyncio.run(main())


def test_httpx_async_retries_a_429(xero_server: Any) -> None:
    server = xero_server(minute_limit=1)
    httpx.get(server.api_url + "/Invoices", headers=headers("tenant-a"))

    async def main() -> int:
        with limiter() as lim:
            async with httpx.AsyncClient(transport=AsyncXeroGuardTransport(lim, retries=FAST_RETRIES)) as client:
                return (await client.get(server.api_url + "/Invoices", headers=headers("tenant-a"))).status_code

    assert asyncio.run(main()) == 200
    assert [e["status"] for e in server.log()] == [200, 429, 200]


def test_tenantless_calls_use_the_app_window(xero_server: Any) -> None:
    server = xero_server()
    with limiter() as lim, httpx.Client(transport=XeroGuardTransport(lim)) as client:
        assert client.get(server.base_url + "/connections").json() == []
        assert lim.snapshot("")["app_minute"]["count"] == 1
        assert lim.snapshot("tenant-a")["minute"]["count"] == 0


def test_guard_rejects_a_non_limiter() -> None:
    with pytest.raises(TypeError):
        XeroGuardTransport(object())  # type: ignore[arg-type]

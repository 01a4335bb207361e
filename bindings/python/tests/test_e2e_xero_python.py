"""The official xero-python SDK against the local Xero-like server (a "minute" lasts 1 s), with and without
the guard."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, List

import pytest
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import HTTPStatusException
from xero_python.identity import IdentityApi

import xeroguard
from conftest import FAST_RETRIES, assert_paced, scaled_limits
from xeroguard.integrations.xero_python import guard, unguard

TENANTS = ["tenant-a", "tenant-b", "tenant-c"]
TOKEN = {"access_token": "test-token", "scope": ["accounting.transactions"], "expires_in": None,
         "token_type": "Bearer", "refresh_token": None, "id_token": None}


def sdk_client() -> ApiClient:
    config = Configuration(oauth2_token=OAuth2Token(client_id="id", client_secret="secret"))
    # Enough pooled connections for the worker threads (urllib3 would otherwise drop and reconnect).
    config.connection_pool_maxsize = 12
    return ApiClient(config, oauth2_token_getter=lambda: TOKEN, oauth2_token_saver=lambda token: None)


def run_all(api: AccountingApi, per_tenant: int, workers: int = 6) -> List[Any]:
    """Every call, interleaved across tenants, from a thread pool; exceptions are returned, not raised."""
    def call(tenant: str) -> Any:
        try:
            return api.get_invoices(tenant)
        except HTTPStatusException as e:
            return e

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(call, [t for _ in range(per_tenant) for t in TENANTS]))


def test_guarded_sdk_gets_no_429_and_completes_every_call(xero_server: Any) -> None:
    server = xero_server(minute_limit=10, concurrency=3, app_minute_limit=25)
    api_client = sdk_client()
    with xeroguard.Limiter(scaled_limits(10, concurrency=3, app_minute_limit=25)) as limiter:
        guard(api_client, limiter, retries=FAST_RETRIES)
        api = AccountingApi(api_client, base_url=server.api_url)
        started = time.monotonic()
        results = run_all(api, per_tenant=15)
        elapsed = time.monotonic() - started
    assert [type(r).__name__ for r in results] == ["Invoices"] * 45
    assert_paced(server.stats(), 45, minute_limit=10, concurrency=3, app_minute_limit=25)
    assert elapsed >= 1.0  # 45 calls at 25 per second cannot be faster: it was paced, not lucky


def test_unguarded_sdk_gets_429s(xero_server: Any) -> None:
    server = xero_server(minute_ms=5000, minute_limit=10, concurrency=3, app_minute_limit=25)
    api = AccountingApi(sdk_client(), base_url=server.api_url)
    results = run_all(api, per_tenant=15)
    # urllib3 quietly retries a 429 carrying Retry-After (up to 3 times), so some calls may still succeed;
    # the server saw the 429s either way.
    failures = [r for r in results if isinstance(r, HTTPStatusException)]
    assert all(f.status == 429 for f in failures)
    assert server.stats()["count_429"] > 0


def test_guard_sees_every_429_itself(xero_server: Any) -> None:
    # Each 429 must reach the guard (and so the limiter), not be retried by urllib3 underneath it.
    server = xero_server(minute_limit=2)
    other_process = AccountingApi(sdk_client(), base_url=server.api_url)
    other_process.get_invoices("tenant-a")
    other_process.get_invoices("tenant-a")  # the tenant's minute is used up behind the limiter's back
    limiter = xeroguard.Limiter(scaled_limits(60))
    api_client = guard(sdk_client(), limiter, retries=0)
    with pytest.raises(HTTPStatusException) as e:
        AccountingApi(api_client, base_url=server.api_url).get_invoices("tenant-a")
    assert e.value.status == 429
    assert server.stats()["count_429"] == 1
    assert limiter.peek("tenant-a").reason is xeroguard.Reason.RETRY_AFTER
    unguard(api_client)
    assert "retries" not in api_client.rest_client.pool_manager.connection_pool_kw


def test_guard_learns_from_remaining_headers(xero_server: Any) -> None:
    server = xero_server(minute_limit=2)
    limiter = xeroguard.Limiter(scaled_limits(60))  # believes in 60 a minute
    api = AccountingApi(guard(sdk_client(), limiter), base_url=server.api_url)
    for _ in range(3):
        api.get_invoices("tenant-a")
    # X-MinLimit-Remaining: 0 after the second call held the third back for a whole (scaled) minute.
    log = server.log()
    assert [e["status"] for e in log] == [200] * 3
    assert log[2]["t_ms"] - log[1]["t_ms"] >= 1000


def test_guard_retries_what_the_server_refuses(xero_server: Any) -> None:
    # The limiter allows 5 in flight; the server only 2, and holds each call 50 ms: with 4 workers per tenant
    # the server answers 429 concurrent, and the guard observes, waits as classified and retries until each
    # call succeeds.
    server = xero_server(minute_limit=60, concurrency=2, latency_ms=50)
    api_client = guard(sdk_client(), xeroguard.Limiter(scaled_limits(60, concurrency=5)), retries=FAST_RETRIES)
    results = run_all(AccountingApi(api_client, base_url=server.api_url), per_tenant=8, workers=12)
    assert [type(r).__name__ for r in results] == ["Invoices"] * 24
    stats = server.stats()
    assert stats["by_problem"].get("concurrent", 0) > 0 and sum(stats["admitted"].values()) == 24


def test_day_limit_is_not_slept_through(xero_server: Any) -> None:
    server = xero_server(minute_limit=60, day_limit=12)
    limiter = xeroguard.Limiter(scaled_limits(60, day_limit=12))
    policy = xeroguard.RetryPolicy(max_wait_ms=2000)
    api = AccountingApi(guard(sdk_client(), limiter, retries=policy), base_url=server.api_url)
    for _ in range(12):
        api.get_invoices("tenant-a")
    started = time.monotonic()
    with pytest.raises(xeroguard.PermitTimeout) as e:
        api.get_invoices("tenant-a")
    assert time.monotonic() - started < 1.0  # refused at once: the day wait is far beyond the 2 s cap
    assert e.value.reason == "day"
    assert server.stats()["count_429"] == 0
    api.get_invoices("tenant-b")  # other tenants go on


def test_offline_organisation_gives_up_within_the_cap(xero_server: Any) -> None:
    server = xero_server()
    server.set_offline("tenant-a", 60_000)
    limiter = xeroguard.Limiter(scaled_limits(60))
    api = AccountingApi(guard(sdk_client(), limiter, retries=FAST_RETRIES), base_url=server.api_url)
    started = time.monotonic()
    with pytest.raises(HTTPStatusException) as e:
        api.get_invoices("tenant-a")
    assert e.value.status == 503 and b"offline" in e.value.body
    # Then the limiter itself holds the tenant back, without another request.
    with pytest.raises(xeroguard.PermitTimeout) as blocked:
        api.get_organisations("tenant-a")
    assert blocked.value.reason == "organisation_offline"
    assert time.monotonic() - started < 2.0
    assert server.stats()["by_status"] == {"503": 1}
    assert [type(x).__name__ for x in [api.get_invoices("tenant-b")]] == ["Invoices"]


def test_tenantless_calls_and_unguard(xero_server: Any) -> None:
    server = xero_server()
    api_client = sdk_client()
    with xeroguard.Limiter(scaled_limits(60)) as limiter:
        guard(api_client, limiter)
        guard(api_client, limiter)  # guarding twice wraps once
        assert IdentityApi(api_client, base_url=server.base_url).get_connections() == []
        assert limiter.snapshot("")["app_minute"]["count"] == 1
        unguard(api_client)
        AccountingApi(api_client, base_url=server.api_url).get_organisations("tenant-a")
        assert limiter.snapshot("")["app_minute"]["count"] == 1  # no longer counted
    assert server.stats()["tenantless_admitted"] == 1

"""Shared fixtures: paths to the repository and shared/, the local Xero-like server, time-scaled limits."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

import xeroguard

# Fixtures redis_server and redis_server_factory (tests/redis_server.py).
pytest_plugins = ["redis_server"]

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # bindings/python
REPO = PACKAGE_DIR.parents[1]
SHARED = Path(os.environ.get("XEROGUARD_SHARED") or REPO.parent / "shared")
SERVER_PY = REPO / "tests" / "server" / "xero_like_server.py"
EXAMPLES = REPO / "examples" / "python"


def _load_server_module() -> Any:
    spec = importlib.util.spec_from_file_location("xero_like_server", SERVER_PY)
    assert spec and spec.loader, SERVER_PY
    module = importlib.util.module_from_spec(spec)
    sys.modules["xero_like_server"] = module
    spec.loader.exec_module(module)
    return module


server_module = _load_server_module()

# The end-to-end tests run a "minute" in 1 s; the limiter is scaled the same way.
MINUTE_MS = 1000
# Room for send-to-arrival skew between the client's clock and the server's (the library's default is
# 500 ms of 60 s; under load on a 2-core machine threads can be late by tens of ms).
MARGIN_MS = 100


def scaled_limits(minute_limit: int, concurrency: int = 5, app_minute_limit: int = 10_000,
                  day_limit: int = 5000, day_ms: int = 86_400_000) -> xeroguard.Limits:
    return xeroguard.Limits(
        tenant_minute=xeroguard.WindowLimit(minute_limit, window_ms=MINUTE_MS, margin_ms=MARGIN_MS),
        tenant_day=xeroguard.WindowLimit(day_limit, window_ms=day_ms, margin_ms=MARGIN_MS),
        tenant_concurrency=concurrency,
        app_minute=xeroguard.WindowLimit(app_minute_limit, window_ms=MINUTE_MS, margin_ms=MARGIN_MS),
        permit_timeout=30,
    )


# Retries in the scaled world: Retry-After is whole real seconds, so waits stay around a second.
FAST_RETRIES = xeroguard.RetryPolicy(max_retries=8, base_ms=100, max_backoff_ms=2000, jitter_ms=50,
                                     max_wait_ms=5000)


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED / "conformance" / "classify-cases.json").is_file():
        pytest.fail("conformance cases not found under %s (set XEROGUARD_SHARED)" % SHARED)
    return SHARED


@pytest.fixture
def xero_server() -> Iterator[Callable[..., Any]]:
    """A factory: xero_server(minute_limit=..., ...) starts a time-scaled server; all are stopped after."""
    started: List[Any] = []

    def start(**config: Any) -> Any:
        config.setdefault("minute_ms", MINUTE_MS)
        config.setdefault("latency_ms", 5)
        config.setdefault("seed", 1234)  # reproducible window phases: tenant-a's minute turns at ~978 ms
        server = server_module.XeroLikeServer(**config).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def assert_paced(stats: Any, calls: int, minute_limit: int, concurrency: int, app_minute_limit: int) -> None:
    """The server saw every call admitted, no 429, and never more than a limit allows in any rolling window."""
    assert stats["count_429"] == 0, stats
    assert sum(stats["admitted"].values()) == calls, stats
    assert max(stats["max_admitted_in_rolling_minute"].values()) <= minute_limit, stats
    assert max(stats["max_in_flight"].values()) <= concurrency, stats
    assert stats["app_max_admitted_in_rolling_minute"] <= app_minute_limit, stats

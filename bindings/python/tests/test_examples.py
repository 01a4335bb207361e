"""The examples in examples/python/ run and do what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import xeroguard
from conftest import EXAMPLES


def run(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_classify_example_builtin() -> None:
    out = run(str(EXAMPLES / "classify_response.py"))
    assert "category: rate_limited" in out and "recommended wait: 37.0 s" in out
    assert "rate limit problem: minute" in out and "first retry: after 37." in out


def test_classify_example_raw_file(tmp_path: Path) -> None:
    raw = tmp_path / "offline.http"
    raw.write_bytes(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\n\r\nThe Organisation is offline")
    out = run(str(EXAMPLES / "classify_response.py"), str(raw))
    assert "category: organisation_offline" in out and "recommended wait: 300.0 s" in out


def test_paced_httpx_example(xero_server: Any) -> None:
    server = xero_server(minute_limit=5)
    out = run(str(EXAMPLES / "paced_httpx_client.py"), server.base_url, "--calls", "8", "--tenants", "a,b",
              "--minute-ms", "1000", "--minute-limit", "5")
    assert "calls: 16" in out and "statuses: {200: 16}" in out
    stats = server.stats()
    assert stats["count_429"] == 0 and stats["admitted"] == {"a": 8, "b": 8}
    assert max(stats["max_admitted_in_rolling_minute"].values()) <= 5
    assert "held back: {'minute':" in out  # 8 calls a tenant at 5 a minute: some waited for the window


def test_paced_httpx_example_shares_its_limits_through_redis(xero_server: Any, redis_server: Any) -> None:
    server = xero_server(minute_limit=5)
    args = [str(EXAMPLES / "paced_httpx_client.py"), server.base_url, "--calls", "4", "--tenants", "a",
            "--minute-ms", "1000", "--minute-limit", "5", "--redis", redis_server.url, "--prefix", "py-example"]
    first, second = (subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for _ in range(2))
    for process in (first, second):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "calls: 4" in out and "statuses: {200: 4}" in out
    stats = server.stats()
    assert stats["count_429"] == 0 and stats["admitted"] == {"a": 8}
    assert max(stats["max_admitted_in_rolling_minute"].values()) <= 5
    # Both processes counted in one place: the tenant's day window in the store holds all eight calls.
    with xeroguard.Limiter(redis_url=redis_server.url, key_prefix="py-example", adopt_stored_limits=True) as shared:
        assert shared.snapshot("a")["day"]["count"] == 8

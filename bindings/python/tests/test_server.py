"""The local Xero-like server keeps its contract (the C# tests use it too)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from typing import Any, Dict, Optional, Tuple

from conftest import SERVER_PY


def call(server: Any, path: str, tenant: Optional[str] = None, method: str = "GET") -> Tuple[int, Dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, headers={"Xero-Tenant-Id": tenant} if tenant else {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_cli_prints_ready_and_stops_at_stdin_eof() -> None:
    proc = subprocess.Popen([sys.executable, str(SERVER_PY), "--port", "0", "--minute-ms", "1000",
                             "--minute-limit", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        first = proc.stdout.readline().split()
        assert first[0] == "READY" and int(first[1]) > 0
        conn = http.client.HTTPConnection("127.0.0.1", int(first[1]), timeout=10)
        conn.request("GET", "/__stats")
        stats = json.loads(conn.getresponse().read())
        assert stats["config"]["minute_limit"] == 2 and stats["config"]["minute_ms"] == 1000
        conn.close()
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()


def test_minute_window_headers_and_429(xero_server: Any) -> None:
    server = xero_server(minute_limit=3)
    seen = [call(server, "/api.xro/2.0/Invoices", "t1") for _ in range(4)]
    assert [s for s, _, _ in seen] == [200, 200, 200, 429]
    assert [h["x-minlimit-remaining"] for _, h, _ in seen] == ["2", "1", "0", "0"]
    status, h, body = seen[3]
    assert h["x-rate-limit-problem"] == "minute" and h["retry-after"] == "1" and body == b""
    assert h["x-daylimit-remaining"] == "4997" and "x-appminlimit-remaining" in h
    ok = json.loads(seen[0][2])
    assert ok["Status"] == "OK" and ok["ProviderName"] == "xeroguard-test" and ok["Invoices"] == []
    assert ok["DateTimeUTC"].startswith("/Date(")
    time.sleep(1.05)  # the scaled minute (1 s) has certainly reset
    assert call(server, "/api.xro/2.0/Invoices", "t1")[0] == 200
    stats = server.stats()
    assert stats["count_429"] == 1 and stats["admitted"] == {"t1": 4} and stats["by_problem"] == {"minute": 1}


def test_day_app_and_concurrency_limits(xero_server: Any) -> None:
    # A real-length minute, so the app window (its phase is fixed by the seed) cannot reset mid-test.
    server = xero_server(minute_ms=60_000, day_limit=2, app_minute_limit=3, concurrency=1, latency_ms=300)
    results = []
    threads = [threading.Thread(target=lambda: results.append(call(server, "/api.xro/2.0/Items", "c")))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s for s, _, _ in results) == [200, 429]
    refused = [h for s, h, _ in results if s == 429][0]
    assert refused["x-rate-limit-problem"] == "concurrent" and "retry-after" not in refused
    assert call(server, "/api.xro/2.0/Contacts", "d")[0] == 200
    assert call(server, "/api.xro/2.0/Contacts", "d")[0] == 200
    status, h, _ = call(server, "/api.xro/2.0/Contacts", "d")
    assert status == 429 and h["x-rate-limit-problem"] == "day"
    assert 1 <= int(h["retry-after"]) <= 86_400
    status, h, _ = call(server, "/api.xro/2.0/Items", "another")  # the app's 4th call in its minute
    assert status == 429 and h["x-rate-limit-problem"] == "appminute" and 1 <= int(h["retry-after"]) <= 60
    assert server.stats()["by_problem"] == {"concurrent": 1, "day": 1, "appminute": 1}


def test_tenantless_organisation_and_missing_tenant(xero_server: Any) -> None:
    server = xero_server()
    status, h, body = call(server, "/connections")
    assert status == 200 and json.loads(body) == [] and "x-minlimit-remaining" not in h
    assert "x-appminlimit-remaining" in h
    status, _, body = call(server, "/api.xro/2.0/Organisation", "t")
    org = json.loads(body)["Organisations"][0]
    assert status == 200 and org["Name"] and org["OrganisationID"]
    assert call(server, "/api.xro/2.0/Invoices")[0] == 400
    assert call(server, "/elsewhere", "t")[0] == 404


def test_control_endpoints(xero_server: Any) -> None:
    server = xero_server()
    assert call(server, "/__control/offline?tenant=t1&ms=500", method="POST")[0] == 200
    status, _, body = call(server, "/api.xro/2.0/Invoices", "t1")
    assert status == 503 and body == b"The Organisation is offline"
    assert call(server, "/api.xro/2.0/Invoices", "t2")[0] == 200
    assert call(server, "/__control/maintenance?ms=500", method="POST")[0] == 200
    status, _, body = call(server, "/api.xro/2.0/Invoices", "t2")
    assert status == 503 and body == b"The Xero API is currently offline for maintenance"
    assert call(server, "/connections")[0] == 503
    status, _, body = call(server, "/__stats")
    stats = json.loads(body)
    assert stats["by_status"] == {"503": 3, "200": 1} and stats["admitted"]["t2"] == 1
    assert call(server, "/__control/reset", method="POST")[0] == 200
    assert json.loads(call(server, "/__stats")[2])["total_requests"] == 0
    assert call(server, "/api.xro/2.0/Invoices", "t1")[0] == 200  # reset ends blocks too
    assert call(server, "/__control/offline?tenant=t1", method="POST")[0] == 400  # ms is required


def test_cli_without_a_stdin_pipe_keeps_serving() -> None:
    # Under CI stdin is /dev/null: reading it ends at once, which must not stop the server.
    proc = subprocess.Popen([sys.executable, str(SERVER_PY)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])
        time.sleep(0.2)
        assert proc.poll() is None
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/connections")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.terminate()
        proc.wait()

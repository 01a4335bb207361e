"""The package is typed for its users: `mypy --strict` accepts the documented forms and flags the mistakes the
binding refuses at run time (run-tests.sh also runs `mypy --strict` over the package itself)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict

import pytest

pytest.importorskip("mypy", reason="mypy is in requirements-test.txt")

GOOD = """
    import datetime as dt
    from typing import Optional

    import xeroguard
    from xeroguard import TENANTLESS, Limiter, Limits, RetryPolicy, WindowLimit

    c = xeroguard.classify(429, {"Retry-After": "3"}, b"")
    wait: Optional[float] = c.recommended_wait
    words: str = f"{c.category} {c.action}"
    messages: tuple[str, ...] = c.validation_messages
    limits = Limits(tenant_minute=WindowLimit(60, window=60.0, margin=0.5), permit_timeout=dt.timedelta(minutes=2))
    with Limiter(limits, clock="manual") as lim:
        lim.advance(1.5)
        lim.advance(ms=1500)
        d = lim.acquire_wait("tenant", timeout=2.0)
        seconds: float = d.wait
        lim.acquire(TENANTLESS)
        with lim.permit("tenant", timeout_ms=500) as permit:
            permit.observe(c)
    xeroguard.backoff(c, 1, RetryPolicy(base=0.5, max_wait_ms=60_000))
    again: bool = xeroguard.resend("PUT", c, 1, has_idempotency_key=True).retry
    xeroguard.resend("POST", xeroguard.TransportFailure.NOT_SENT, 1, has_idempotency_key=False)
    with Limiter(redis_url="redis://127.0.0.1:6380", key_prefix="app", deadline=0.25, on_store_error="local",
                 workers=4) as shared:
        fallback: Optional[xeroguard.FailurePolicy] = shared.acquire("tenant").fallback
        shared.interrupt()

    from xeroguard.integrations import ResendEvent, WaitEvent
    from xeroguard.integrations.httpx import XeroGuardTransport

    def on_retry(event: ResendEvent) -> None:
        print(event.attempt, event.wait, event.give_up, event.classification, event.exception)

    def on_wait(event: WaitEvent) -> None:
        print(event.reason, event.fallback, event.wait_ms)

    XeroGuardTransport(Limiter(), on_retry=on_retry, on_give_up=on_retry, on_wait=on_wait, idempotency_keys=False)
"""

# line (1-based, in BAD) -> what mypy must say there
BAD = """
    import xeroguard
    from xeroguard import Limiter, WindowLimit

    c = xeroguard.classify(429, {}, b"")
    c.categroy
    WindowLimit(60, 60_000, 500)
    Limiter().acquire()
    Limiter().acquire(None)
    c.status = 200
    xeroguard.resend("PUT", c, 1)
"""
BAD_ERRORS: Dict[int, str] = {
    6: r'"Classification" has no attribute "categroy"',
    7: r"Too many positional arguments",
    8: r'Missing positional argument "tenant"',
    9: r'Argument 1 to "acquire" of "Limiter" has incompatible type "None"',
    10: r"Property \"status\" defined in \"Classification\" is read-only|Cannot assign to|read-only",
    11: r'Missing named argument "has_idempotency_key"',
}


def run_mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    path = tmp_path / "snippet.py"
    path.write_text(textwrap.dedent(source))
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", "/dev/null",
                           str(path)], capture_output=True, text=True, cwd=tmp_path, timeout=300)


def test_the_documented_forms_type_check(tmp_path: Path) -> None:
    result = run_mypy(tmp_path, GOOD)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mistakes_are_type_errors(tmp_path: Path) -> None:
    result = run_mypy(tmp_path, BAD)
    by_line: Dict[int, str] = {}
    for line in result.stdout.splitlines():
        m = re.match(r".*snippet\.py:(\d+): error: (.*)", line)
        if m:
            by_line[int(m.group(1))] = by_line.get(int(m.group(1)), "") + m.group(2)
    for line, pattern in BAD_ERRORS.items():
        assert re.search(pattern, by_line.get(line, "")), "line %d: %r in\n%s" % (line, pattern, result.stdout)
    assert set(by_line) == set(BAD_ERRORS), result.stdout

"""Waits follow the library's wait policy step by step (xg_limiter_acquire_until): a blocked thread sees Ctrl-C,
`interrupt()` ends every wait with its own exception, and the library alone decides when a wait gives up."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Callable, List

import pytest

import xeroguard
from xeroguard import LimiterInterrupted, Limiter, Limits, PermitTimeout, Reason, WindowLimit

T = "4f8a2a1e-0000-4000-8000-000000000001"
# Generous: a step blocks at most 0.1 s, then the interpreter unwinds and exits.
CTRL_C_EXIT_S = 1.0

# A child whose main thread blocks, without a timeout, on a tenant whose only concurrency slot is held. A helper
# thread announces WAITING once the main thread is inside the binding's stepped wait (its innermost frame).
CHILD = textwrap.dedent("""
    import signal, sys, threading, time
    import xeroguard

    # Python's own Ctrl-C handler, as in a terminal: a runner started as a background job passes SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    mode = sys.argv[1]
    limiter = xeroguard.Limiter(xeroguard.Limits(tenant_concurrency=1))
    held = limiter.acquire("t")
    assert held.granted

    def announce():
        main = threading.main_thread().ident
        while True:
            frame = sys._current_frames().get(main)
            if frame is not None and frame.f_code.co_name == "_wait":
                print("WAITING", flush=True)
                return
            time.sleep(0.001)

    threading.Thread(target=announce, daemon=True).start()
    if mode == "permit":
        with limiter.permit("t"):
            pass
    elif mode == "acquire_wait":
        limiter.acquire_wait("t")
    elif mode == "guard":
        import requests
        from xeroguard.integrations.requests import guard_session

        # Nothing is sent: the call waits for the tenant's permit before connecting.
        session = guard_session(requests.Session(), limiter, prefixes=["http://"], permit_timeout=3600)
        session.get("http://127.0.0.1:9/api.xro/2.0/Invoices", headers={"Xero-Tenant-Id": "t"})
    print("the wait ended", flush=True)
""")


@pytest.mark.parametrize("mode", ["permit", "acquire_wait", "guard"])
def test_ctrl_c_ends_a_blocked_wait_with_keyboard_interrupt(mode: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "WAITING\n", child.stderr.read() if child.stderr else ""
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        child.wait(timeout=30)
        elapsed = time.monotonic() - sent
    finally:
        child.kill()
        stdout, stderr = child.communicate()
    assert child.returncode == -signal.SIGINT, stderr  # an unhandled KeyboardInterrupt exits through SIGINT
    assert stderr.rstrip().endswith("KeyboardInterrupt") and "in _wait" in stderr, stderr
    assert "the wait ended" not in stdout
    assert elapsed < CTRL_C_EXIT_S, elapsed


def held_limiter(clock: str = "manual") -> Limiter:
    """A limiter whose tenant T has its only concurrency slot taken: a wait for T lasts until interrupted."""
    limiter = Limiter(Limits(tenant_concurrency=1), clock=clock)
    assert limiter.acquire(T).granted
    return limiter


def test_interrupt_from_another_thread_ends_blocked_waits() -> None:
    with held_limiter() as limiter:
        errors: List[BaseException] = []

        def run(call: Callable[[], object]) -> None:
            try:
                call()
            except BaseException as e:
                errors.append(e)

        def in_permit() -> None:
            with limiter.permit(T):
                pass

        threads = [threading.Thread(target=run, args=(call,)) for call in (lambda: limiter.acquire_wait(T), in_permit)]
        for t in threads:
            t.start()
        limiter.interrupt()  # whether the threads wait already or not yet: every current and later wait ends
        for t in threads:
            t.join(10)
        assert not any(t.is_alive() for t in threads)
        assert len(errors) == 2 and all(type(e) is LimiterInterrupted for e in errors), errors
        assert not any(isinstance(e, PermitTimeout) for e in errors)
        assert isinstance(errors[0], LimiterInterrupted) and errors[0].status_name == "interrupted"
        # Later waits end at once too; every other call keeps working.
        with pytest.raises(LimiterInterrupted):
            limiter.acquire_wait("another tenant", timeout=5)
        assert limiter.snapshot(T)["in_flight"] == 1
        assert limiter.acquire("another tenant").granted


def test_interrupt_wakes_an_async_wait_at_once() -> None:
    # A minute-window wait of a minute on a real clock: only the interrupt's wake-up ends it within the bound.
    limits = Limits(tenant_minute=WindowLimit(1, window=60))

    async def main() -> None:
        with Limiter(limits) as limiter:
            assert limiter.acquire(T).granted

            async def wait() -> None:
                async with limiter.permit_async(T):
                    pass

            task = asyncio.ensure_future(wait())
            await asyncio.sleep(0)  # let it ask and start sleeping
            limiter.interrupt()
            with pytest.raises(LimiterInterrupted):
                await asyncio.wait_for(task, 10)

    asyncio.run(main())


def test_a_wait_certainly_beyond_its_timeout_gives_up_at_once_with_the_reason() -> None:
    # On a manual clock time never moves by itself: a wait that did not give up at once would never end.
    with Limiter(clock="manual") as limiter:
        for _ in range(60):
            limiter.release(limiter.acquire(T))
        outcomes: List[object] = []

        def waits() -> None:
            outcomes.append(limiter.acquire_wait(T, timeout=30))
            try:
                with limiter.permit(T, timeout=60.499):
                    pass
            except PermitTimeout as e:
                outcomes.append(e)

            async def async_wait() -> None:
                async with limiter.permit_async(T, timeout=1):
                    pass

            try:
                asyncio.run(async_wait())
            except PermitTimeout as e:
                outcomes.append(e)

        waiter = threading.Thread(target=waits)
        waiter.start()
        waiter.join(10)
        assert not waiter.is_alive()
        refusal, timeout, async_timeout = outcomes
        assert isinstance(refusal, xeroguard.Decision) and not refusal.granted
        assert (refusal.reason, refusal.wait_ms) == (Reason.MINUTE, 60_500)
        assert isinstance(timeout, PermitTimeout) and timeout.reason == "minute" and timeout.timeout_ms == 60_499
        assert isinstance(async_timeout, PermitTimeout) and async_timeout.wait_ms == 60_500
        assert limiter.now() == 0

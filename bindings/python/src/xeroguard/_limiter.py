"""Limiter: a managed xg_limiter handle (of this process, or shared through Redis), with blocking and asyncio
permits whose waits follow the library's one wait policy (xg_limiter_acquire_until)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import json
import threading
from typing import Any, AsyncIterator, Callable, Dict, Iterator, Optional, Set, Tuple, TypeVar, Union

from . import _args
from . import _native as n
from ._args import Seconds, Tenant, tenant_bytes, tenant_text
from ._classify import Classification
from ._redis import PathText, PolicyInput, RedisSettings, redis_settings
from ._stats import Stats, Watch, wait_ended, wait_started
from ._vocabulary import FAILURE_POLICY, REASON, FailurePolicy, Reason
from .errors import LimiterInterrupted, PermitTimeout, UnknownPermitError, XeroGuardError

T = TypeVar("T")
Observed = Union[Classification, bytes, bytearray, memoryview]

# The longest one native wait step blocks a thread: Python runs signal handlers (Ctrl-C) only between steps.
SYNC_STEP_MS = 100
_set_attribute = object.__setattr__


@dataclasses.dataclass(frozen=True, init=False)
class WindowLimit:
    """At most `limit` calls in any `window`, widened by `margin`; `limit` 0 disables the window.

    The durations are keyword-only, in seconds (`window=60.0`, int, float or timedelta) or milliseconds
    (`window_ms=60_000`); the fields keep milliseconds, the properties give seconds. `margin` defaults to 0.
    `dataclasses.replace` takes the `*_ms` names."""

    limit: int
    window_ms: int
    margin_ms: int

    def __init__(self, limit: int, *, window: Optional[Seconds] = None, margin: Optional[Seconds] = None,
                 window_ms: Optional[int] = None, margin_ms: Optional[int] = None) -> None:
        _set_attribute(self, "limit", _args.u32(limit, "limit"))
        _set_attribute(self, "window_ms", _args.duration_ms(window, window_ms, "window"))
        _set_attribute(self, "margin_ms", _args.duration_ms(margin, margin_ms, "margin", 0))

    @property
    def window(self) -> float:
        return _args.ms_to_seconds(self.window_ms)

    @property
    def margin(self) -> float:
        return _args.ms_to_seconds(self.margin_ms)

    @classmethod
    def _from_c(cls, w: n.XgWindowLimit) -> "WindowLimit":
        return cls(limit=w.limit, window_ms=w.window_ms, margin_ms=w.margin_ms)

    def _to_c(self) -> n.XgWindowLimit:
        return n.XgWindowLimit(limit=self.limit, window_ms=self.window_ms, margin_ms=self.margin_ms)


_DEFAULT = n.lib.xg_limits_default()


def _window(value: object, name: str) -> WindowLimit:
    if not isinstance(value, WindowLimit):
        raise TypeError("%s must be a WindowLimit, not %s" % (name, type(value).__name__))
    return value


@dataclasses.dataclass(frozen=True, init=False)
class Limits:
    """Mirrors xg_limits. Defaults are the library's (xg_limits_default: Xero's limits with margins).

    `permit_timeout` (seconds) or `permit_timeout_ms`, and `max_tenants`, are keyword-only."""

    tenant_minute: WindowLimit
    tenant_day: WindowLimit
    tenant_concurrency: int
    app_minute: WindowLimit
    permit_timeout_ms: int
    max_tenants: int

    def __init__(self, tenant_minute: WindowLimit = WindowLimit._from_c(_DEFAULT.tenant_minute),
                 tenant_day: WindowLimit = WindowLimit._from_c(_DEFAULT.tenant_day),
                 tenant_concurrency: int = _DEFAULT.tenant_concurrency,
                 app_minute: WindowLimit = WindowLimit._from_c(_DEFAULT.app_minute), *,
                 permit_timeout: Optional[Seconds] = None, permit_timeout_ms: Optional[int] = None,
                 max_tenants: int = _DEFAULT.max_tenants) -> None:
        _set_attribute(self, "tenant_minute", _window(tenant_minute, "tenant_minute"))
        _set_attribute(self, "tenant_day", _window(tenant_day, "tenant_day"))
        _set_attribute(self, "tenant_concurrency", _args.u32(tenant_concurrency, "tenant_concurrency"))
        _set_attribute(self, "app_minute", _window(app_minute, "app_minute"))
        _set_attribute(self, "permit_timeout_ms", _args.duration_ms(permit_timeout, permit_timeout_ms,
                                                                    "permit_timeout", _DEFAULT.permit_timeout_ms))
        _set_attribute(self, "max_tenants", _args.u32(max_tenants, "max_tenants"))

    @property
    def permit_timeout(self) -> float:
        return _args.ms_to_seconds(self.permit_timeout_ms)

    @classmethod
    def _from_c(cls, c: n.XgLimits) -> "Limits":
        return cls(
            tenant_minute=WindowLimit._from_c(c.tenant_minute),
            tenant_day=WindowLimit._from_c(c.tenant_day),
            tenant_concurrency=c.tenant_concurrency,
            app_minute=WindowLimit._from_c(c.app_minute),
            permit_timeout_ms=c.permit_timeout_ms,
            max_tenants=c.max_tenants,
        )

    @classmethod
    def default(cls) -> "Limits":
        return cls._from_c(n.lib.xg_limits_default())

    @classmethod
    def exact(cls) -> "Limits":
        """Xero's limits with no margins (xg_limits_exact)."""
        return cls._from_c(n.lib.xg_limits_exact())

    def _to_c(self) -> n.XgLimits:
        return n.XgLimits(
            tenant_minute=self.tenant_minute._to_c(),
            tenant_day=self.tenant_day._to_c(),
            tenant_concurrency=self.tenant_concurrency,
            app_minute=self.app_minute._to_c(),
            permit_timeout_ms=self.permit_timeout_ms,
            max_tenants=self.max_tenants,
        )


@dataclasses.dataclass(frozen=True)
class TenantLimits:
    """A tenant's own limits (xg_tenant_limits); windows and margins stay the limiter's."""

    minute_limit: int
    day_limit: int
    concurrency: int

    def __post_init__(self) -> None:
        for name in ("minute_limit", "day_limit", "concurrency"):
            _args.u32(getattr(self, name), name)


_read_decision = n.field_reader(n.XgDecision)
_read_step = n.field_reader(n.XgWaitStep)
_REASON_BY_CODE = REASON.by_code
_FALLBACK_BY_CODE = FAILURE_POLICY.by_code


def _member(codes: Any, code: int) -> Any:
    try:
        return codes.by_code[code]
    except KeyError:
        raise codes.unknown(code) from None


@dataclasses.dataclass(frozen=True)
class Decision:
    """Granted (with `permit` to release; 0 for tenantless calls), or refused for `wait_ms` (`wait` in seconds)
    because of `reason`. `fallback` is None when the limiter's state decided (always, for a limiter of this process);
    for a limiter sharing its state through Redis, the FailurePolicy that decided because the store could not be
    reached (OPEN granted blind, CLOSED refused with Reason.STORE_UNAVAILABLE, LOCAL used this process's share)."""

    granted: bool
    permit: int
    wait_ms: int
    reason: Optional[Reason]
    fallback: Optional[FailurePolicy] = None

    @property
    def wait(self) -> float:
        return _args.ms_to_seconds(self.wait_ms)

    @classmethod
    def _from_c(cls, d: n.XgDecision) -> "Decision":
        _, granted_flag, permit, wait_ms, reason, fallback = _read_decision(d)
        granted = granted_flag == 1
        try:
            return cls(granted, permit, wait_ms, _REASON_BY_CODE[reason], _FALLBACK_BY_CODE[fallback])
        except KeyError:
            return cls(granted, permit, wait_ms, _member(REASON, reason), _member(FAILURE_POLICY, fallback))

    @classmethod
    def _from_step(cls, step: n.XgWaitStep) -> Tuple[int, "Decision"]:
        """(outcome, the decision it carries): granted with its permit, or the refusal."""
        _, outcome, permit, wait_ms, reason, _, fallback, _, _, _ = _read_step(step)
        granted = outcome == n.XG_WAIT_OUTCOME_GRANTED
        return outcome, cls(granted, permit if granted else 0, 0 if granted else wait_ms,
                            None if granted else _member(REASON, reason), _member(FAILURE_POLICY, fallback))


@dataclasses.dataclass(frozen=True)
class Reservation:
    """A booked slot: the call counts from now on at `at_ms` (limiter clock), `wait_ms` from now; `at` and
    `wait` give them in seconds."""

    id: int
    at_ms: int
    wait_ms: int

    @property
    def at(self) -> float:
        return _args.ms_to_seconds(self.at_ms)

    @property
    def wait(self) -> float:
        return _args.ms_to_seconds(self.wait_ms)


def _timeout_ms(timeout: Optional[Seconds], timeout_ms: Optional[int]) -> int:
    """`timeout` (seconds) or `timeout_ms`; neither waits as long as needed (the library's deadline saturates)."""
    return _args.duration_ms(timeout, timeout_ms, "timeout", _args.U64_MAX)


# Told of the first refusal of a wait (the guards' on_wait hook), and of a wait the library gave up.
OnRefusal = Optional[Callable[[Decision], None]]
OnTimeout = Optional[Callable[[PermitTimeout], None]]


# Given a release's error instead of raising it (the guards: once a response exists, nothing raises).
OnReleaseError = Optional[Callable[[XeroGuardError], None]]


def _release(permit: "Permit", on_error: OnReleaseError) -> None:
    if on_error is None:
        permit.release()
        return
    try:
        permit.release()
    except XeroGuardError as e:
        on_error(e)


class Permit:
    """A granted call. Release it when the response arrives (the `permit` context managers do)."""

    def __init__(self, limiter: "Limiter", tenant: Tenant, decision: Decision) -> None:
        self.limiter = limiter
        self.tenant = tenant
        self.id = decision.permit
        self.decision = decision
        self.released = False

    @property
    def fallback(self) -> Optional[FailurePolicy]:
        """None when the limiter's state granted it; else the failure policy that did (see Decision.fallback)."""
        return self.decision.fallback

    def observe(self, response: Observed) -> None:
        """Feeds the response back to the limiter (remaining counts, 429 blocks, outages)."""
        self.limiter.observe(self.tenant, response)

    def release(self) -> None:
        """Gives the concurrency slot back; a second call does nothing."""
        if self.released:
            return
        self.released = True
        try:
            self.limiter.release(self.id)
        except UnknownPermitError:
            # It expired (permit_timeout_ms): the slot is free already, which is all release promises.
            pass

    def __repr__(self) -> str:
        return "Permit(tenant=%r, id=%d, released=%r)" % (self.tenant, self.id, self.released)


_CLOCKS = {"monotonic": n.XG_CLOCK_MONOTONIC, "manual": n.XG_CLOCK_MANUAL}


class Limiter:
    """Paces calls per tenant and per app. Thread-safe; close it (or use `with`) to free the native handle.

    `clock="monotonic"` uses the system's monotonic clock; `clock="manual"` starts at 0 and moves only with
    `advance` / `set_now` (for tests). Durations are seconds (int, float or timedelta), or milliseconds with
    the `*_ms` / `ms=` keywords. Every call names its tenant; a tenantless call passes TENANTLESS ('').

    Shared through Redis: `Limiter(limits, redis_url="redis://host:6379", key_prefix="myapp")` keeps the windows,
    permits, blocks and limits in the store, shared by every process and machine using the same `key_prefix` (one
    per Xero app), decided on the store's clock. Options (the library's defaults): `deadline` (seconds, or
    `deadline_ms`; 0.25 s, at most 10 s) for one store operation, `breaker_cooldown` (1 s) before asking a failed
    store again, `on_store_error` ("closed": refuse; "open": grant, flagged; "local": this process's share of each
    limit, the limit divided by `workers`), `replace_limits` (write these limits over stored ones),
    `adopt_stored_limits` (pace by the stored ones; `limiter.limits` then reports them), `tls_ca_file` (a PEM file
    of CAs for `rediss://`). Limits that differ from those stored for the prefix, without one of those two, raise
    LimitsDifferError naming both. It connects at once: StoreError when the store refuses; when it cannot be
    reached within the deadline, StoreUnavailableError under "closed", while an "open" or "local" limiter is made
    and its policy decides (flagged) until the store answers, when the limits are stored or compared (limits that
    differ then fail every call with LimitsDifferError). With `clock="manual"` the manual reading is the
    store's clock too (tests). A limiter made before `os.fork()` works in both processes.

    Waits (`acquire_wait`, `permit`, `permit_async`, the guards) follow the library's wait policy step by step, so
    a blocked thread sees Ctrl-C within about 0.1 s. Shutting down while threads or tasks may be waiting:
    `interrupt()` (their waits end with LimiterInterrupted), join them, then `close()`.

    Watching it: `stats()` (a `Stats`), `xeroguard.integrations.prometheus` for Prometheus, and the `xeroguard`
    logger: each wait's start and end at DEBUG (tenant, reason, length), the failure policy deciding while the
    shared store is out of reach at WARNING (once per outage, then a count) and the store's breaker at INFO.
    """

    def __init__(self, limits: Optional[Limits] = None, clock: str = "monotonic", *,
                 redis_url: Optional[str] = None, key_prefix: Optional[str] = None,
                 deadline: Optional[Seconds] = None, deadline_ms: Optional[int] = None,
                 breaker_cooldown: Optional[Seconds] = None, breaker_cooldown_ms: Optional[int] = None,
                 on_store_error: Optional[PolicyInput] = None, workers: Optional[int] = None,
                 replace_limits: bool = False, tls_ca_file: Optional[PathText] = None,
                 adopt_stored_limits: bool = False) -> None:
        if not isinstance(clock, str):
            raise TypeError("clock must be 'monotonic' or 'manual', not %s" % type(clock).__name__)
        if clock not in _CLOCKS:
            raise ValueError("clock must be 'monotonic' or 'manual', not %r" % (clock,))
        if limits is not None and not isinstance(limits, Limits):
            raise TypeError("limits must be a Limits or None, not %s" % type(limits).__name__)
        store_options = dict(key_prefix=key_prefix, deadline=deadline, deadline_ms=deadline_ms,
                             breaker_cooldown=breaker_cooldown, breaker_cooldown_ms=breaker_cooldown_ms,
                             on_store_error=on_store_error, workers=workers, tls_ca_file=tls_ca_file)
        self._redis: Optional[RedisSettings] = None
        if redis_url is not None:
            self._redis = redis_settings(redis_url, key_prefix, deadline, deadline_ms, breaker_cooldown,
                                         breaker_cooldown_ms, on_store_error, workers, replace_limits, tls_ca_file,
                                         adopt_stored_limits)
        else:
            given = [name for name, value in store_options.items() if value is not None]
            given += [name for name, flag in (("replace_limits", replace_limits),
                                              ("adopt_stored_limits", adopt_stored_limits)) if flag is not False]
            if given:
                raise TypeError("%s only apply with redis_url (a limiter shared through Redis)" % ", ".join(given))
        self.clock = clock
        self._limits = limits if limits is not None else Limits.default()
        self._state = threading.Lock()  # guards _users/_closed/_async_waiters (a plain Lock: it is on every call)
        self._users = 0
        self._closed = False
        self._handle = None  # type: Any
        self._async_waiters: Set[Tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._watch = Watch()
        c_limits = self._limits._to_c()
        handle = ctypes.POINTER(n.XgLimiter)()
        if self._redis is None:
            n.lib.xg_limiter_new(ctypes.byref(c_limits), _CLOCKS[clock], ctypes.byref(handle))
        else:
            options = self._redis.to_c()
            self._open_shared(c_limits, options, _CLOCKS[clock], handle)
            # The limits it paces by: the stored ones (they differ from those given only when adopted).
            stored = n.lib.xg_limits_default()
            try:
                n.lib.xg_limiter_limits(handle, ctypes.byref(stored))
            except BaseException:
                n.lib.xg_limiter_free(handle)
                raise
            self._limits = Limits._from_c(stored)
        self._handle = handle

    @property
    def limits(self) -> Limits:
        """The limits it paces by: for a shared limiter, those stored for its prefix (they differ from those given
        only when adopted, which a limiter made while the store was down does when the store first answers)."""
        if self._redis is None or self._handle is None or self._closed:
            return self._limits  # a closed limiter reports the limits it last paced by
        stored = n.lib.xg_limits_default()
        try:
            with self._using() as handle:
                n.lib.xg_limiter_limits(handle, ctypes.byref(stored))
        except ValueError:
            if not self._closed:
                raise
            return self._limits  # closed meanwhile
        self._limits = Limits._from_c(stored)
        return self._limits

    @staticmethod
    def _open_shared(c_limits: Any, options: Any, clock: int, handle: Any) -> None:
        n.lib.xg_limiter_new_redis(ctypes.byref(c_limits), ctypes.byref(options), clock, ctypes.byref(handle))

    @classmethod
    def inspect(cls, redis_url: str, key_prefix: str, clock: str = "monotonic", *,
                deadline: Optional[Seconds] = None, deadline_ms: Optional[int] = None,
                tls_ca_file: Optional[PathText] = None) -> "Limiter":
        """A read-only look at the limiter shared through `key_prefix` (the CLI's `xeroguard snapshot` uses the same):
        it writes nothing, not even limits to an empty prefix. `snapshot` and `peek` answer (NoStoredLimitsError on
        a prefix that holds no limits); every operation that would write (acquire, release, record, observe,
        set_tenant_limits, ...) raises InvalidArgumentError saying the limiter only reads. `limits` are the stored
        ones (the defaults when there are none). StoreUnavailableError when the store cannot be reached."""
        return _Inspector(clock=clock, redis_url=redis_url, key_prefix=key_prefix, deadline=deadline,
                          deadline_ms=deadline_ms, tls_ca_file=tls_ca_file)

    @property
    def shared(self) -> bool:
        """True for a limiter whose state lives in Redis."""
        return self._redis is not None

    # Lifetime: calls count themselves in and out; the handle is freed by close() or by the last call out,
    # so it is never freed under another thread (xg_limiter_free must not race with other calls).

    @contextlib.contextmanager
    def _using(self) -> Iterator[Any]:
        with self._state:
            if self._closed:
                raise ValueError("the limiter is closed")
            self._users += 1
        try:
            yield self._handle
        finally:
            with self._state:
                self._users -= 1
                if self._closed and self._users == 0:
                    self._free()

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        # _using() inline: this is on every call, and a generator-based context manager costs about a microsecond.
        with self._state:
            if self._closed:
                raise ValueError("the limiter is closed")
            self._users += 1
        try:
            return fn(self._handle, *args)
        finally:
            with self._state:
                self._users -= 1
                if self._closed and self._users == 0:
                    self._free()

    def _free(self) -> None:
        handle, self._handle = self._handle, None
        if handle:
            n.lib.xg_limiter_free(handle)

    def close(self) -> None:
        """Frees the native handle (at once, or when the last call in progress returns, a blocked wait included:
        `interrupt()` first to end those). Idempotent."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            if self._users == 0:
                self._free()
        self._wake_async()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Limiter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # Clock.

    def now(self) -> int:
        """The limiter's clock, in ms (`time()` gives seconds)."""
        out = ctypes.c_uint64()
        self._call(n.lib.xg_limiter_now_ms, ctypes.byref(out))
        return out.value

    def time(self) -> float:
        """The limiter's clock, in seconds, as `time.monotonic()` reads (a manual clock starts at 0)."""
        return _args.ms_to_seconds(self.now())

    def advance(self, seconds: Optional[Seconds] = None, *, ms: Optional[int] = None) -> None:
        """Moves a manual clock forward by `seconds` (or `ms=`); WrongClockError on a monotonic limiter."""
        self._call(n.lib.xg_limiter_advance_ms, _args.duration_ms(seconds, ms, "seconds"))
        self._wake_async()

    def set_now(self, seconds: Optional[Seconds] = None, *, ms: Optional[int] = None) -> None:
        """Sets a manual clock to `seconds` (or `ms=`) after its start; it cannot move backwards."""
        self._call(n.lib.xg_limiter_set_now_ms, _args.duration_ms(seconds, ms, "seconds"))
        self._wake_async()

    # Calls.

    def _decide(self, fn: Any, tenant: Tenant) -> Decision:
        t = tenant_bytes(tenant)
        out = n.XgDecision()
        self._call(fn, t, len(t), ctypes.byref(out))
        d = Decision._from_c(out)
        if d.fallback is not None or self._watch.outage is not None:
            self._saw_fallback(d.fallback)
        return d

    def _saw_fallback(self, fallback: Optional[FailurePolicy]) -> None:
        """Logs an outage's start and end (the decisions' `fallback` says it) and then the breaker's state."""
        if self._watch.decided(fallback):
            try:
                self.stats()
            except (ValueError, XeroGuardError):  # closed meanwhile: nothing left to watch
                pass

    def stats(self) -> Stats:
        """What this limiter decided, waited for and was told since it was made, and its shared store's figures
        (xg_limiter_stats): a frozen `Stats`. It takes no lock in the library; call it as often as a scrape does."""
        out = n.XgStats()
        self._call(n.lib.xg_limiter_stats, ctypes.byref(out))
        stats = Stats._from_c(out)
        self._watch.saw(stats)
        return stats

    def acquire(self, tenant: Tenant) -> Decision:
        """Asks for a call now. Granted: counted, and `permit` must be released. Refused: nothing changes."""
        return self._decide(n.lib.xg_limiter_acquire, tenant)

    def acquire_wait(self, tenant: Tenant, timeout: Optional[Seconds] = None, *,
                     timeout_ms: Optional[int] = None) -> Decision:
        """Blocks until granted, or until the library gives up: `timeout` seconds (or `timeout_ms`) on the limiter's
        clock have passed, or the wait certainly ends after them (a day limit, say), which it answers at once;
        neither waits as long as needed. Returns the decision: granted with its permit, or the last refusal. It
        wakes when this process frees capacity; Ctrl-C (KeyboardInterrupt) is seen within about 0.1 s, and
        `interrupt()` ends it with LimiterInterrupted."""
        return self._wait(tenant_bytes(tenant), _timeout_ms(timeout, timeout_ms), None)

    @staticmethod
    def _deadline(handle: Any, timeout_ms: int) -> int:
        if timeout_ms == _args.U64_MAX:  # no timeout: the library's sum saturates to this anyway
            return n.XG_NO_DEADLINE
        out = ctypes.c_uint64()
        n.lib.xg_limiter_deadline_ms(handle, timeout_ms, ctypes.byref(out))
        return out.value

    def _wait(self, t: bytes, timeout_ms: int, on_refusal: OnRefusal) -> Decision:
        """The blocking wait: steps of xg_limiter_acquire_until, each blocking at most SYNC_STEP_MS so that signal
        handlers run between them. The first step does not block, so a refusal is reported before any waiting.
        The handle is held for the whole wait (close() frees it when the wait ends). One XgWaitStep goes through
        every step: the library keeps the wait's start in it, to count the wait once."""
        step = n.XgWaitStep()
        first: Optional[Decision] = None  # the refusal that started the wait
        with self._using() as handle:
            deadline = self._deadline(handle, timeout_ms)
            max_block = 0
            try:
                while True:
                    n.lib.xg_limiter_acquire_until(handle, t, len(t), deadline, max_block, ctypes.byref(step))
                    if step.outcome != n.XG_WAIT_OUTCOME_ASK_AGAIN:
                        return self._waited(t, first, step)
                    if max_block == 0:
                        first = self._wait_began(t, step)
                        if on_refusal is not None:
                            on_refusal(first)
                        max_block = SYNC_STEP_MS
            except BaseException as e:
                if first is not None:
                    self._wait_broken(t, first, step, e, lambda out: n.lib.xg_limiter_now_ms(handle, out))
                raise

    def _wait_began(self, t: bytes, step: n.XgWaitStep) -> Decision:
        first = Decision._from_step(step)[1]
        wait_started(t, first.reason, first.wait_ms)
        if first.fallback is not None or self._watch.outage is not None:
            self._saw_fallback(first.fallback)
        return first

    def _waited(self, t: bytes, first: Optional[Decision], step: n.XgWaitStep) -> Decision:
        """The wait's last step: its decision, logged (a grant at once is no wait)."""
        d = Decision._from_step(step)[1]
        if first is not None:
            wait_ended(t, "granted" if d.granted else "gave up", first.reason, step.waited_ms)
        elif not d.granted:
            wait_ended(t, "gave up at once", d.reason, 0)
        if d.fallback is not None or self._watch.outage is not None:
            self._saw_fallback(d.fallback)
        return d

    @staticmethod
    def _wait_broken(t: bytes, first: Decision, step: n.XgWaitStep, error: BaseException,
                     now_ms: Callable[[Any], Any]) -> None:
        """A wait ended by an exception: interrupt(), or its caller (Ctrl-C, a cancelled task)."""
        how = "interrupted" if isinstance(error, LimiterInterrupted) else "abandoned (%s)" % type(error).__name__
        now = ctypes.c_uint64()
        try:
            now_ms(ctypes.byref(now))
        except (ValueError, XeroGuardError):
            return
        wait_ended(t, how, first.reason, max(0, now.value - step.wait_started_ms))

    def interrupt(self) -> None:
        """Ends every wait on this limiter, now and later: threads blocked in `acquire_wait`, `permit` or a guard,
        and tasks awaiting `permit_async`, get LimiterInterrupted. Every other call keeps working. Shutting down
        while calls may be waiting: `interrupt()`, join those threads (and let those tasks end), then `close()`."""
        self._call(n.lib.xg_limiter_interrupt)
        self._wake_async()

    def peek(self, tenant: Tenant) -> Decision:
        """What `acquire` would answer now, taking nothing."""
        return self._decide(n.lib.xg_limiter_peek, tenant)

    def record(self, tenant: Tenant) -> None:
        """Counts a call made without the limiter (even over a limit: it happened)."""
        t = tenant_bytes(tenant)
        self._call(n.lib.xg_limiter_record, t, len(t))

    def release(self, permit: Union[int, Decision, Permit]) -> None:
        """Gives back a permit; UnknownPermitError when it is not held. Permit 0 (tenantless) is a no-op."""
        if isinstance(permit, Decision):
            permit_id = permit.permit
        elif isinstance(permit, Permit):
            permit_id = permit.id
        else:
            permit_id = _args.u64(permit, "permit")
        self._call(n.lib.xg_limiter_release, permit_id)
        self._wake_async()

    def reserve(self, tenant: Tenant) -> Reservation:
        """Books the tenant's next free slot (first come, first served); takes no concurrency permit.
        BookingTooFarError when that slot lies beyond the library's booking horizon."""
        t = tenant_bytes(tenant)
        out = n.XgReservation()
        self._call(n.lib.xg_limiter_reserve, t, len(t), ctypes.byref(out))
        return Reservation(id=int(out.id), at_ms=int(out.at_ms), wait_ms=int(out.wait_ms))

    def cancel(self, reservation: Union[int, Reservation]) -> None:
        """Frees a reserved slot whose time has not come (UnknownReservationError otherwise)."""
        rid = reservation.id if isinstance(reservation, Reservation) else _args.u64(reservation, "reservation")
        self._call(n.lib.xg_limiter_cancel, rid)
        self._wake_async()

    def observe(self, tenant: Tenant, response: Observed) -> None:
        """Takes the server's feedback: a Classification, or a raw HTTP response as bytes."""
        t = tenant_bytes(tenant)
        if isinstance(response, Classification):
            c = response._to_c()
            self._call(n.lib.xg_limiter_observe, t, len(t), ctypes.byref(c))
        elif isinstance(response, (bytes, bytearray, memoryview)):
            raw = bytes(response)
            self._call(n.lib.xg_limiter_observe_raw, t, len(t), raw, len(raw))
        else:
            raise TypeError("observe takes a Classification or raw response bytes, not %s" % type(response).__name__)

    def snapshot(self, tenant: Tenant) -> Dict[str, Any]:
        """The tenant's state now (xg_limiter_snapshot_json), as a dict."""
        t = tenant_bytes(tenant)
        out = ctypes.c_void_p()
        self._call(n.lib.xg_limiter_snapshot_json, t, len(t), ctypes.byref(out))
        snap: Dict[str, Any] = json.loads(n.take_string(out))
        return snap

    def set_tenant_limits(self, tenant: Tenant, limits: Optional[TenantLimits]) -> None:
        """Sets a tenant's own limits, or clears them with None. Its recorded calls are kept."""
        t = tenant_bytes(tenant)
        if limits is None:
            self._call(n.lib.xg_limiter_set_tenant_limits, t, len(t), None)
            return
        if not isinstance(limits, TenantLimits):
            raise TypeError("limits must be a TenantLimits or None, not %s" % type(limits).__name__)
        c = n.XgTenantLimits(minute_limit=limits.minute_limit, day_limit=limits.day_limit,
                             concurrency=limits.concurrency)
        self._call(n.lib.xg_limiter_set_tenant_limits, t, len(t), ctypes.byref(c))
        self._wake_async()

    # Permits as context managers.

    def permit(self, tenant: Tenant, timeout: Optional[Seconds] = None, *,
               timeout_ms: Optional[int] = None) -> "contextlib.AbstractContextManager[Permit]":
        """Blocks until the call may go (as `acquire_wait`: at most `timeout` seconds, or `timeout_ms`, on the
        limiter's clock; neither waits as long as needed), yields the Permit, and releases it on exit, exceptions
        included. PermitTimeout when the library gives up; LimiterInterrupted after `interrupt()`."""
        return self._permit(tenant_bytes(tenant), tenant, _timeout_ms(timeout, timeout_ms))

    @contextlib.contextmanager
    def _permit(self, t: bytes, tenant: Tenant, timeout_ms: int, on_refusal: OnRefusal = None,
                on_timeout: OnTimeout = None, on_release_error: OnReleaseError = None) -> Iterator[Permit]:
        d = self._wait(t, timeout_ms, on_refusal)
        if not d.granted:
            raise self._timed_out(tenant, timeout_ms, d, on_timeout)
        p = Permit(self, tenant, d)
        try:
            yield p
        finally:
            _release(p, on_release_error)

    def permit_async(self, tenant: Tenant, timeout: Optional[Seconds] = None, *,
                     timeout_ms: Optional[int] = None) -> "contextlib.AbstractAsyncContextManager[Permit]":
        """`permit` for asyncio: awaits instead of blocking the event loop (cancel the task to stop waiting)."""
        return self._permit_async(tenant_bytes(tenant), tenant, _timeout_ms(timeout, timeout_ms))

    @contextlib.asynccontextmanager
    async def _permit_async(self, t: bytes, tenant: Tenant, timeout_ms: int, on_refusal: OnRefusal = None,
                            on_timeout: OnTimeout = None, on_release_error: OnReleaseError = None
                            ) -> AsyncIterator[Permit]:
        d = await self._wait_async(t, timeout_ms, on_refusal)
        if not d.granted:
            raise self._timed_out(tenant, timeout_ms, d, on_timeout)
        p = Permit(self, tenant, d)
        try:
            yield p
        finally:
            _release(p, on_release_error)

    @staticmethod
    def _timed_out(tenant: Tenant, timeout_ms: int, refusal: Decision, on_timeout: OnTimeout) -> PermitTimeout:
        reason = refusal.reason
        words = n.refusal_words(REASON.code(reason), refusal.wait_ms) if reason is not None else ""
        error = PermitTimeout(tenant_text(tenant), timeout_ms, refusal.wait_ms, reason,
                              timeout_words=n.duration_words(timeout_ms), refusal_words=words)
        if on_timeout is not None:
            on_timeout(error)
        return error

    async def _wait_async(self, t: bytes, timeout_ms: int, on_refusal: OnRefusal) -> Decision:
        """The wait policy for asyncio: steps that never block, sleeping between them as the library says, and
        waking sooner when this process frees capacity (release, cancel, clock moves, interrupt)."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        waiter = (loop, wake)
        with self._state:
            self._async_waiters.add(waiter)
        step = n.XgWaitStep()  # through every step: the library keeps the wait's start in it
        first: Optional[Decision] = None
        try:
            deadline = self._call(self._deadline, timeout_ms)
            while True:
                wake.clear()  # before asking: a release after this point wakes the sleep below
                self._call(n.lib.xg_limiter_acquire_until, t, len(t), deadline, 0, ctypes.byref(step))
                if step.outcome != n.XG_WAIT_OUTCOME_ASK_AGAIN:
                    return self._waited(t, first, step)
                if first is None:
                    first = self._wait_began(t, step)
                    if on_refusal is not None:
                        on_refusal(first)
                try:
                    await asyncio.wait_for(wake.wait(), step.sleep_ms / 1000)
                except asyncio.TimeoutError:
                    pass
        except BaseException as e:
            if first is not None:
                self._wait_broken(t, first, step, e, lambda out: self._call(n.lib.xg_limiter_now_ms, out))
            raise
        finally:
            with self._state:
                self._async_waiters.discard(waiter)

    def _wake_async(self) -> None:
        # Nobody waiting is the common case: skip the lock. An async waiter registers before its first
        # attempt, so a release it could miss here happened before that attempt saw the limiter.
        if not self._async_waiters:
            return
        with self._state:
            waiters = list(self._async_waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed
                pass

    def __repr__(self) -> str:
        shared = "" if self._redis is None else ", redis=%s" % self._redis.describe()
        return "Limiter(clock=%r%s, closed=%r)" % (self.clock, shared, self._closed)


class _Inspector(Limiter):
    """A limiter opened by `Limiter.inspect`: read-only (xg_limiter_inspect_redis)."""

    @staticmethod
    def _open_shared(c_limits: Any, options: Any, clock: int, handle: Any) -> None:
        n.lib.xg_limiter_inspect_redis(ctypes.byref(options), clock, ctypes.byref(handle))

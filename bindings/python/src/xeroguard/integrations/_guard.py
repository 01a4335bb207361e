"""The loop every integration shares: wait for a permit, send, classify, observe, release, and resend only what the
library says may be resent.

Every decision is the library's: how much of a body to read (body_bytes_to_classify), the classification, whether
and when to send again (resend: the request's method and Idempotency-Key with the outcome, a response or a
transport failure) and when to stop waiting for a permit. The integrations only say which of their client's
exceptions are transport failures, and of which kind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import time
import uuid
from typing import Any, Awaitable, Callable, Iterator, List, Mapping, MutableMapping, Optional, Tuple, TypeVar, Union

from .._args import TENANTLESS, Seconds, seconds_to_ms, tenant_bytes
from .._classify import IDEMPOTENCY_KEY_HEADER, Classification, RetryPolicy, classify, needs_idempotency_key, resend
from .._limiter import Decision, Limiter
from .._vocabulary import FailurePolicy, GiveUp, Reason, TransportFailure
from ..errors import PermitTimeout, XeroGuardError

log = logging.getLogger("xeroguard")

R = TypeVar("R")
# What one attempt gives back: the result to hand to the caller, and (status, headers, body) to classify.
Attempt = Tuple[R, Tuple[int, Any, bytes]]
Retries = Union[RetryPolicy, int, None]
# Says which exceptions of a client are transport failures (no HTTP response), and of which kind; None: not one.
FailureKind = Callable[[BaseException], Optional[TransportFailure]]
Failure = Tuple[BaseException, TransportFailure]

TENANT_HEADER = "xero-tenant-id"


@dataclasses.dataclass(frozen=True)
class WaitEvent:
    """Given to `on_wait`: the limiter refused an attempt for now and the guard waits for a permit (once per
    attempt). `wait_ms` (`wait` in seconds) is what the limiter asked for (a release may end it sooner), `reason`
    why, `fallback` the failure policy that refused while a shared store was out of reach (None: the limiter's
    state did). `attempt` is 1 for the first send."""

    method: str
    url: str
    tenant: str
    attempt: int
    wait_ms: int
    reason: Optional[Reason]
    fallback: Optional[FailurePolicy]

    @property
    def wait(self) -> float:
        return self.wait_ms / 1000


@dataclasses.dataclass(frozen=True)
class ResendEvent:
    """Given to `on_retry` (before a resend: `give_up` None, `wait_ms` the wait before it) and to `on_give_up` (the
    guard stops although resending might have cured the outcome: `give_up` says why, and for WAIT_TOO_LONG
    `wait_ms` is the wait that was too long). `classification` is the attempt's response (None when none came),
    `exception` the transport failure that a give-up re-raises unchanged, or the PermitTimeout of a permit wait
    given up. `attempt` is the attempt whose outcome this is (1 for the first send)."""

    method: str
    url: str
    tenant: str
    attempt: int
    wait_ms: int
    give_up: Optional[GiveUp]
    classification: Optional[Classification]
    exception: Optional[BaseException]

    @property
    def wait(self) -> float:
        return self.wait_ms / 1000


@dataclasses.dataclass(frozen=True)
class StoreErrorEvent:
    """Given to `on_store_error`: telling the limiter about a response that exists failed (`operation` "observe"
    or "release"; `exception` what the library raised, e.g. StoreUnavailableError when a shared store is out of
    reach). The response still reaches the caller: once it exists nothing raises, so a write the server carried out
    is never reported as failed (and resent by an app that retries on connection errors)."""

    method: str
    url: str
    tenant: str
    attempt: int
    operation: str
    exception: XeroGuardError


OnWait = Optional[Callable[[WaitEvent], None]]
OnResend = Optional[Callable[[ResendEvent], None]]
OnStoreError = Optional[Callable[[StoreErrorEvent], None]]


@dataclasses.dataclass(frozen=True)
class Call:
    """One logical call, the same for each of its attempts."""

    method: str
    url: str
    tenant: str
    has_idempotency_key: bool


def resolve_policy(retries: Retries) -> RetryPolicy:
    """A RetryPolicy, or an int (max retries with the other defaults), or None for the defaults."""
    if retries is None:
        return RetryPolicy()
    if isinstance(retries, RetryPolicy):
        return retries
    if isinstance(retries, int) and not isinstance(retries, bool):
        return RetryPolicy(max_retries=retries)  # range-checked there (ValueError)
    raise TypeError("retries must be a RetryPolicy, an int or None, not %s" % type(retries).__name__)


def header_value(headers: Optional[Mapping[Any, Any]], name: str) -> Optional[str]:
    """A request header's value, the name matched case-insensitively (a plain dict is case-sensitive)."""
    if not headers:
        return None
    for key, value in headers.items():
        text = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if text.lower() == name:
            return value.decode("utf-8") if isinstance(value, bytes) else str(value)
    return None


def tenant_of(headers: Optional[Mapping[Any, Any]]) -> str:
    """The Xero-Tenant-Id request header. A request without one (e.g. /connections) is a tenantless call,
    so this answers TENANTLESS for it."""
    tenant = header_value(headers, TENANT_HEADER)
    return TENANTLESS if tenant is None else tenant


def _hook(value: Any, name: str) -> Any:
    if value is not None and not callable(value):
        raise TypeError("%s must be callable or None, not %s" % (name, type(value).__name__))
    return value


def exception_chain(e: BaseException) -> Iterator[BaseException]:
    """`e` and the exceptions it wraps: causes, contexts, urllib3's `reason` and requests' first argument."""
    seen: List[int] = []
    todo = [e]
    while todo and len(seen) < 32:
        x = todo.pop(0)
        if id(x) in seen:
            continue
        seen.append(id(x))
        yield x
        inner = [x.__cause__, x.__context__, getattr(x, "reason", None)] + list(x.args[:1])
        todo.extend(i for i in inner if isinstance(i, BaseException))


def certainly_before_sending(e: BaseException, connecting: Tuple[type, ...]) -> bool:
    """True when a failure is one of `connecting` (a client's connect-phase exceptions) or a TLS certificate
    failure (they happen only in a handshake), anywhere in its chain. Anything else may have reached the server."""
    for x in exception_chain(e):
        if isinstance(x, connecting) or isinstance(x, (ssl.SSLCertVerificationError, ssl.CertificateError)):
            return True
    return False


class Guard:
    """Shared settings: the limiter, the retry policy, how long to wait for a permit (seconds, or a timedelta),
    Idempotency-Keys, the hooks, and (from the integration) which exceptions are transport failures.

    The permit wait defaults to the policy's `max_wait`, so a day limit is never slept through beyond that cap: the
    limiter refuses at once with PermitTimeout when its wait is certainly longer.
    """

    def __init__(self, limiter: Limiter, retries: Retries = None, permit_timeout: Optional[Seconds] = None, *,
                 idempotency_keys: bool = True, on_retry: OnResend = None, on_wait: OnWait = None,
                 on_give_up: OnResend = None, on_store_error: OnStoreError = None,
                 transport_failure: Optional[FailureKind] = None) -> None:
        if not isinstance(limiter, Limiter):
            raise TypeError("limiter must be a xeroguard.Limiter")
        if not isinstance(idempotency_keys, bool):
            raise TypeError("idempotency_keys must be a bool, not %s" % type(idempotency_keys).__name__)
        self.limiter = limiter
        self.policy = resolve_policy(retries)
        # Checked here, so a bad value fails when the client is set up rather than on its first request.
        self.permit_timeout_ms = (self.policy.max_wait_ms if permit_timeout is None
                                  else seconds_to_ms(permit_timeout, "permit_timeout"))
        self.permit_timeout = self.permit_timeout_ms / 1000
        self.idempotency_keys = idempotency_keys
        self.on_retry: OnResend = _hook(on_retry, "on_retry")
        self.on_wait: OnWait = _hook(on_wait, "on_wait")
        self.on_give_up: OnResend = _hook(on_give_up, "on_give_up")
        self.on_store_error: OnStoreError = _hook(on_store_error, "on_store_error")
        self.transport_failure: FailureKind = transport_failure or (lambda e: None)

    def prepare(self, method: str, url: str, headers: MutableMapping[Any, Any]) -> Call:
        """The call a request makes: a write without an Idempotency-Key gets a new one (kept on every resend),
        unless keys are off; a caller's own key is kept."""
        has_key = header_value(headers, IDEMPOTENCY_KEY_HEADER.lower()) is not None
        if not has_key and self.idempotency_keys and needs_idempotency_key(method):
            headers[IDEMPOTENCY_KEY_HEADER] = str(uuid.uuid4())
            has_key = True
        return Call(method.upper(), url, tenant_of(headers), has_key)

    def run(self, call: Call, send: Callable[[], Attempt[R]], discard: Callable[[R], None] = lambda r: None,
            sleep: Callable[[float], None] = time.sleep) -> R:
        t = tenant_bytes(call.tenant)  # refused before any wait
        attempt = 1
        while True:
            failure: Optional[Failure] = None
            c: Optional[Classification] = None
            result: Any = None
            trouble: List[StoreErrorEvent] = []
            with self.limiter._permit(t, call.tenant, self.permit_timeout_ms, self._on_refusal(call, attempt),
                                      self._on_timeout(call, attempt),
                                      self._on_store_trouble(call, attempt, "release", trouble)) as permit:
                try:
                    result, (status, headers, body) = send()
                except Exception as e:
                    failure = self._transport_failure(e)
                else:
                    try:
                        c = classify(status, headers, body)
                    except BaseException:
                        discard(result)
                        raise
                    # Before the permit goes back, so the next waiter sees the server's view; best-effort.
                    self._observe(permit, c, self._on_store_trouble(call, attempt, "observe", trouble))
            try:
                self._report(trouble)
                wait = self._resend_wait(call, attempt, c, failure)
            except BaseException:  # a hook failed: the response it was told of is not handed on
                if c is not None:
                    discard(result)
                raise
            if wait is None:
                return result  # type: ignore[no-any-return]
            if c is not None:
                discard(result)
            sleep(wait)
            attempt += 1

    async def run_async(self, call: Call, send: Callable[[], Awaitable[Attempt[R]]],
                        discard: Callable[[R], Awaitable[None]]) -> R:
        t = tenant_bytes(call.tenant)
        attempt = 1
        while True:
            failure: Optional[Failure] = None
            c: Optional[Classification] = None
            result: Any = None
            trouble: List[StoreErrorEvent] = []
            async with self.limiter._permit_async(t, call.tenant, self.permit_timeout_ms,
                                                  self._on_refusal(call, attempt),
                                                  self._on_timeout(call, attempt),
                                                  self._on_store_trouble(call, attempt, "release", trouble)) as permit:
                try:
                    result, (status, headers, body) = await send()
                except Exception as e:
                    failure = self._transport_failure(e)
                else:
                    try:
                        c = classify(status, headers, body)
                    except BaseException:
                        await discard(result)
                        raise
                    self._observe(permit, c, self._on_store_trouble(call, attempt, "observe", trouble))
            try:
                self._report(trouble)
                wait = self._resend_wait(call, attempt, c, failure)
            except BaseException:
                if c is not None:
                    await discard(result)
                raise
            if wait is None:
                return result  # type: ignore[no-any-return]
            if c is not None:
                await discard(result)
            await asyncio.sleep(wait)
            attempt += 1

    # The steps both loops share.

    @staticmethod
    def _observe(permit: Any, c: Classification, on_error: Callable[[XeroGuardError], None]) -> None:
        try:
            permit.observe(c)
        except XeroGuardError as e:
            on_error(e)

    @staticmethod
    def _on_store_trouble(call: Call, attempt: int, operation: str,
                          into: List[StoreErrorEvent]) -> Callable[[XeroGuardError], None]:
        """Keeps a failed observe or release of a response that exists, to report once the permit is back: logged at
        WARNING and given to `on_store_error`, never raised."""
        def keep(e: XeroGuardError) -> None:
            into.append(StoreErrorEvent(call.method, call.url, call.tenant, attempt, operation, e))

        return keep

    def _report(self, trouble: List[StoreErrorEvent]) -> None:
        for event in trouble:
            log.warning("xeroguard: %s %s: the response is handed on, but the limiter could not %s it: %s",
                        event.method, event.url, event.operation, event.exception)
            if self.on_store_error is not None:
                self.on_store_error(event)

    def _on_refusal(self, call: Call, attempt: int) -> Optional[Callable[[Decision], None]]:
        on_wait = self.on_wait
        if on_wait is None:
            return None

        def report(refusal: Decision) -> None:
            on_wait(WaitEvent(call.method, call.url, call.tenant, attempt, refusal.wait_ms, refusal.reason,
                              refusal.fallback))

        return report

    def _on_timeout(self, call: Call, attempt: int) -> Callable[[PermitTimeout], None]:
        def report(e: PermitTimeout) -> None:
            log.info("xeroguard: %s %s: %s", call.method, call.url, e)
            if self.on_give_up is not None:
                self.on_give_up(ResendEvent(call.method, call.url, call.tenant, attempt, e.wait_ms,
                                            GiveUp.WAIT_TOO_LONG, None, e))

        return report

    def _transport_failure(self, e: Exception) -> Failure:
        """The exception of a send that got no response, with its kind, kept to decide on (and re-raise); anything
        that is not a transport failure (a bug, a bad URL) is re-raised at once."""
        kind = self.transport_failure(e)
        if kind is None:
            raise e
        return e, kind

    def _resend_wait(self, call: Call, attempt: int, c: Optional[Classification],
                     failure: Optional[Failure]) -> Optional[float]:
        """Seconds to wait before the next attempt, or None to hand the outcome to the caller; a give-up after a
        transport failure re-raises its exception, unchanged."""
        exception, kind = failure if failure is not None else (None, None)
        outcome: Union[Classification, TransportFailure, None] = c if c is not None else kind
        assert outcome is not None
        d = resend(call.method, outcome, attempt, self.policy, has_idempotency_key=call.has_idempotency_key)
        described = "%d %s" % (c.status, c.category) if c is not None else "%s (%s)" % (type(exception).__name__, kind)
        event = ResendEvent(call.method, call.url, call.tenant, attempt, d.wait_ms, d.give_up, c, exception)
        if d.retry:
            log.debug("xeroguard: resending %s %s after %d ms (attempt %d: %s)", call.method, call.url, d.wait_ms,
                      attempt, described)
            if self.on_retry is not None:
                self.on_retry(event)
            return d.wait
        if d.give_up is not GiveUp.NOT_RETRYABLE:  # not a final answer: resending might have cured it
            log.info("xeroguard: not resending %s %s after %s: %s (wait %d ms)", call.method, call.url, described,
                     d.give_up, d.wait_ms)
            if self.on_give_up is not None:
                self.on_give_up(event)
        if exception is not None:
            raise exception
        return None

"""Resends that never duplicate a write (xero-reference §8), in every guard: xero-python, requests, httpx sync and
async, against a loopback server that logs every request it reads (tests/loopback.py)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Type

import httpx
import pytest
import requests
import urllib3
from xero_python.accounting import AccountingApi
from xero_python.accounting.models import Invoices
from xero_python.exceptions import HTTPStatusException

import xeroguard
from loopback import First, LoopbackServer, Logged, Reset, Respond
from redis_server import RedisServer
from xeroguard import GiveUp, Limiter, Limits, Reason, RetryPolicy, TransportFailure
from xeroguard.integrations import ResendEvent, StoreErrorEvent, WaitEvent
from xeroguard.integrations.httpx import AsyncXeroGuardTransport, XeroGuardTransport
from xeroguard.integrations.requests import guard_session
from xeroguard.integrations.xero_python import guard

TENANT = "tenant-a"
INVOICES = "/api.xro/2.0/Invoices"
# Retry-After: 0 keeps a retryable answer's wait at 0 (a 500 would otherwise wait 5 s); the backoff is ~1 ms.
NOW = ("Retry-After", "0")
JSON = ("Content-Type", "application/json")
POLICY = RetryPolicy(max_retries=3, base_ms=1, max_backoff_ms=5, jitter_ms=0, max_wait=5)
BODY = b'{"Invoices": []}'


class Driver:
    """Sends one call through one kind of guard; answers the HTTP status, or raises what the client raised."""

    name = ""
    # What the caller sees when the connection is reset after the request was sent and no resend is allowed.
    reset_error: Tuple[Type[BaseException], ...] = ()

    def __init__(self, server: LoopbackServer, limiter: Limiter, **options: Any) -> None:
        self.server, self.limiter, self.options = server, limiter, dict(options)
        self.options.setdefault("retries", POLICY)

    def send(self, method: str, key: Optional[str] = None, url: Optional[str] = None) -> int:
        raise NotImplementedError

    def headers(self, key: Optional[str]) -> Dict[str, str]:
        headers = {"Xero-Tenant-Id": TENANT, "Content-Type": "application/json", "Authorization": "Bearer test"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers


class RequestsDriver(Driver):
    name = "requests"
    reset_error = (requests.ConnectionError,)

    def send(self, method: str, key: Optional[str] = None, url: Optional[str] = None) -> int:
        target = url or self.server.url + INVOICES
        session = guard_session(requests.Session(), self.limiter, prefixes=["http://"], **self.options)
        with session:
            return int(session.request(method, target, headers=self.headers(key), timeout=10,
                                       data=None if method == "GET" else BODY).status_code)


class HttpxDriver(Driver):
    name = "httpx"
    reset_error = (httpx.TransportError,)

    def send(self, method: str, key: Optional[str] = None, url: Optional[str] = None) -> int:
        with httpx.Client(transport=XeroGuardTransport(self.limiter, **self.options), timeout=10) as client:
            return client.request(method, url or self.server.url + INVOICES, headers=self.headers(key),
                                  content=None if method == "GET" else BODY).status_code


class AsyncHttpxDriver(Driver):
    name = "httpx-async"
    reset_error = (httpx.TransportError,)

    def send(self, method: str, key: Optional[str] = None, url: Optional[str] = None) -> int:
        async def call() -> int:
            transport = AsyncXeroGuardTransport(self.limiter, **self.options)
            async with httpx.AsyncClient(transport=transport, timeout=10) as client:
                response = await client.request(method, url or self.server.url + INVOICES, headers=self.headers(key),
                                                content=None if method == "GET" else BODY)
                return response.status_code

        return asyncio.run(call())


class XeroPythonDriver(Driver):
    """Through the SDK's own calls: PUT creates invoices, POST updates or creates them, GET lists them."""

    name = "xero-python"
    reset_error = (urllib3.exceptions.HTTPError,)

    def send(self, method: str, key: Optional[str] = None, url: Optional[str] = None) -> int:
        from test_e2e_xero_python import sdk_client

        api_client = guard(sdk_client(), self.limiter, **self.options)
        api = AccountingApi(api_client, base_url=(url or self.server.url + INVOICES).rsplit("/", 1)[0])
        extra = {} if key is None else {"idempotency_key": key}
        calls: Dict[str, Callable[[], Any]] = {
            "PUT": lambda: api.create_invoices(TENANT, Invoices(invoices=[]), **extra),
            "POST": lambda: api.update_or_create_invoices(TENANT, Invoices(invoices=[]), **extra),
            "GET": lambda: api.get_invoices(TENANT),
        }
        try:
            calls[method]()
        except HTTPStatusException as e:
            return int(e.status)
        return 200


DRIVERS = [XeroPythonDriver, RequestsDriver, HttpxDriver, AsyncHttpxDriver]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    s = LoopbackServer()
    yield s
    s.stop()


@pytest.fixture(params=DRIVERS, ids=[d.name for d in DRIVERS])
def make(request: pytest.FixtureRequest, server: LoopbackServer) -> Iterator[Callable[..., Driver]]:
    limiters: List[Limiter] = []

    def build(limiter: Optional[Limiter] = None, **options: Any) -> Driver:
        if limiter is None:
            limiter = Limiter()
            limiters.append(limiter)
        driver: Driver = request.param(server, limiter, **options)
        return driver

    yield build
    for limiter in limiters:
        limiter.close()


def keys_of(log: List[Logged]) -> List[Optional[str]]:
    return [entry.header("Idempotency-Key") for entry in log]


def test_a_create_answered_500_then_200_is_sent_twice_with_one_key(make: Callable[..., Driver],
                                                                   server: LoopbackServer) -> None:
    server.script(Respond(500, (NOW, JSON)), Respond(200))
    assert make().send("PUT") == 200
    log = server.log()
    assert [(e.method, e.path) for e in log] == [("PUT", INVOICES)] * 2
    first, second = keys_of(log)
    assert first is not None and first == second
    assert uuid.UUID(first).version == 4  # a fresh UUID per logical call


class Stop(Exception):
    """Raised by a hook to end a call before the guard sleeps."""


def test_workers_told_the_same_retry_after_do_not_resend_in_the_same_millisecond(make: Callable[..., Driver],
                                                                                   server: LoopbackServer) -> None:
    # 100 workers (a limiter each, as separate processes have) meet the same 429 Retry-After: 37. The guard resends
    # after the library's wait: Retry-After plus a jitter of at most the policy's jitter_ms (250 ms by default).
    workers = 100
    server.script(*[Respond(429, (("Retry-After", "37"), ("X-Rate-Limit-Problem", "minute"), JSON))] * workers)
    waits: List[int] = []

    def record(event: ResendEvent) -> None:
        waits.append(event.wait_ms)
        raise Stop()  # the wait is known; no need to sleep through it

    for _ in range(workers):
        with pytest.raises(Stop):
            make(retries=RetryPolicy(), on_retry=record).send("GET")
    assert len(waits) == workers and all(37_000 <= wait <= 37_250 for wait in waits), waits
    # 100 draws from 251 milliseconds give ~82 distinct ones; all in one millisecond was the bug.
    assert len(set(waits)) > 50, sorted(waits)


@pytest.mark.parametrize("policy", ["closed", "open", "local"])
def test_a_write_the_server_carried_out_reaches_the_caller_when_the_store_stalls_meanwhile(
        make: Callable[..., Driver], server: LoopbackServer, redis_server: RedisServer, policy: str) -> None:
    # The request is at the server when Redis stops answering (SIGSTOP); the server creates the invoice (200). The
    # limiter cannot observe or release within its deadline, but the response exists: the caller gets it, nothing
    # is raised (an app that retries on connection errors would create the invoice twice), nothing is sent again.
    limiter = Limiter(redis_url=redis_server.url, key_prefix="stall-" + policy, deadline=0.1, on_store_error=policy)
    troubles: List[StoreErrorEvent] = []
    try:
        server.script(First(redis_server.pause, Respond(200, (JSON,), BODY)))
        try:
            assert make(limiter, on_store_error=troubles.append).send("PUT") == 200
        finally:
            redis_server.resume()
    finally:
        limiter.close()
    assert [(e.method, e.path) for e in server.log()] == [("PUT", INVOICES)], "sent once"
    # The closed policy refuses what it cannot store, and the guard reports it; open drops that feedback and local
    # keeps it in this process, so neither has anything to report.
    if policy == "closed":
        assert troubles and all(e.operation in ("observe", "release") and e.tenant == TENANT for e in troubles)
        assert all(isinstance(e.exception, xeroguard.StoreError) for e in troubles), troubles
    else:
        assert troubles == []


def test_each_logical_call_gets_its_own_key(make: Callable[..., Driver], server: LoopbackServer) -> None:
    driver = make()
    assert driver.send("POST") == 200 and driver.send("POST") == 200
    first, second = keys_of(server.log())
    assert first and second and first != second


def test_a_get_answered_500_is_resent(make: Callable[..., Driver], server: LoopbackServer) -> None:
    server.script(Respond(500, (NOW, JSON)), Respond(200))
    assert make().send("GET") == 200
    log = server.log()
    assert [e.method for e in log] == ["GET", "GET"]
    assert keys_of(log) == [None, None]  # reads need no key


def test_a_post_answered_500_with_keys_off_is_not_resent(make: Callable[..., Driver],
                                                          server: LoopbackServer) -> None:
    given_up: List[ResendEvent] = []
    server.script(Respond(500, (NOW, JSON)))
    assert make(idempotency_keys=False, on_give_up=given_up.append).send("POST") == 500
    log = server.log()
    assert [e.method for e in log] == ["POST"] and keys_of(log) == [None]
    (event,) = given_up
    assert event.give_up is GiveUp.UNSAFE_TO_RESEND and event.classification is not None
    assert event.classification.status == 500 and event.exception is None and event.attempt == 1


def test_a_reset_after_a_post_was_sent_is_resent_with_its_key(make: Callable[..., Driver],
                                                              server: LoopbackServer) -> None:
    retried: List[ResendEvent] = []
    server.script(Reset(), Respond(200))
    assert make(on_retry=retried.append).send("POST") == 200
    log = server.log()
    assert [e.method for e in log] == ["POST", "POST"]
    assert keys_of(log)[0] is not None and keys_of(log)[0] == keys_of(log)[1]
    (event,) = retried
    assert event.classification is None and event.exception is not None and event.give_up is None


def test_a_reset_after_a_post_without_a_key_reaches_the_caller(make: Callable[..., Driver],
                                                              server: LoopbackServer) -> None:
    given_up: List[ResendEvent] = []
    driver = make(idempotency_keys=False, on_give_up=given_up.append)
    server.script(Reset())
    with pytest.raises(driver.reset_error) as raised:
        driver.send("POST")
    assert [e.method for e in server.log()] == ["POST"]  # never resent: it may have been carried out
    (event,) = given_up
    assert event.give_up is GiveUp.UNSAFE_TO_RESEND and event.classification is None
    assert event.exception is raised.value  # the client's own exception, unchanged


def test_a_post_answered_429_is_resent_even_without_a_key(make: Callable[..., Driver],
                                                         server: LoopbackServer) -> None:
    server.script(Respond(429, (NOW, ("X-Rate-Limit-Problem", "minute"), JSON)), Respond(200))
    assert make(idempotency_keys=False).send("POST") == 200
    log = server.log()
    assert [e.method for e in log] == ["POST", "POST"] and keys_of(log) == [None, None]


def test_a_callers_own_key_is_kept_on_every_resend(make: Callable[..., Driver], server: LoopbackServer) -> None:
    server.script(Respond(500, (NOW, JSON)), Respond(503, (NOW, JSON)), Respond(200))
    assert make().send("PUT", key="my-own-key-7") == 200
    assert keys_of(server.log()) == ["my-own-key-7"] * 3


def test_a_connection_refused_is_resent_even_for_a_write_without_a_key(make: Callable[..., Driver],
                                                                        server: LoopbackServer) -> None:
    closed = LoopbackServer()
    closed.stop()  # its port now refuses connections: nothing is ever sent
    retried: List[ResendEvent] = []
    given_up: List[ResendEvent] = []
    driver = make(idempotency_keys=False, on_retry=retried.append, on_give_up=given_up.append)
    with pytest.raises(Exception) as raised:
        driver.send("POST", url=closed.url + INVOICES)
    assert [e.attempt for e in retried] == [1, 2, 3]  # NOT_SENT: resent until the policy's 3 retries are used
    (event,) = given_up
    assert event.give_up is GiveUp.ATTEMPTS_EXHAUSTED and event.attempt == 4
    assert event.exception is raised.value


def test_the_hooks_are_told_what_happened(make: Callable[..., Driver], server: LoopbackServer) -> None:
    retried: List[ResendEvent] = []
    given_up: List[ResendEvent] = []
    server.script(Respond(500, (NOW, JSON)), Respond(502, (NOW, JSON)))
    driver = make(retries=RetryPolicy(max_retries=1, base_ms=1, jitter_ms=0), on_retry=retried.append,
                  on_give_up=given_up.append)
    assert driver.send("GET") == 502
    (retry,) = retried
    assert (retry.method, retry.tenant, retry.attempt, retry.give_up, retry.exception) == ("GET", TENANT, 1, None,
                                                                                           None)
    assert retry.url.startswith(server.url + INVOICES) and retry.wait_ms <= 5 and retry.wait == retry.wait_ms / 1000
    assert retry.classification is not None and retry.classification.status == 500
    assert retry.classification.category is xeroguard.Category.INTERNAL_ERROR
    (give_up,) = given_up
    assert (give_up.attempt, give_up.give_up) == (2, GiveUp.ATTEMPTS_EXHAUSTED)
    assert give_up.classification is not None and give_up.classification.status == 502


def test_a_final_answer_is_no_give_up(make: Callable[..., Driver], server: LoopbackServer) -> None:
    events: List[ResendEvent] = []
    server.script(Respond(400, (JSON,), b'{"Type": "ValidationException", "Message": "A validation exception"}'))
    assert make(on_retry=events.append, on_give_up=events.append).send("PUT") == 400
    assert events == [] and len(server.log()) == 1


def test_on_wait_hears_of_a_pacing_wait(make: Callable[..., Driver], server: LoopbackServer) -> None:
    # The tenant's only slot is held, and its permit expires long after the guard's 5 s timeout: the library keeps
    # waiting (a release may come first), and the hook, told of the wait, gives the slot back.
    with Limiter(Limits(tenant_concurrency=1)) as limiter:
        held = limiter.acquire(TENANT)
        waits: List[WaitEvent] = []

        def on_wait(event: WaitEvent) -> None:
            waits.append(event)
            limiter.release(held)

        assert make(limiter, permit_timeout=5, on_wait=on_wait).send("GET") == 200
    (event,) = waits
    assert (event.method, event.tenant, event.attempt, event.reason, event.fallback) == (
        "GET", TENANT, 1, Reason.CONCURRENCY, None)
    assert event.url.startswith(server.url + INVOICES) and event.wait_ms > 5000
    assert len(server.log()) == 1


def test_on_give_up_hears_of_a_permit_wait_given_up(make: Callable[..., Driver], server: LoopbackServer) -> None:
    with Limiter(Limits(tenant_concurrency=0), clock="manual") as limiter:
        for _ in range(60):
            limiter.release(limiter.acquire(TENANT))
        given_up: List[ResendEvent] = []
        with pytest.raises(xeroguard.PermitTimeout) as raised:
            make(limiter, permit_timeout=2, on_give_up=given_up.append).send("GET")
    (event,) = given_up
    assert (event.give_up, event.wait_ms, event.attempt) == (GiveUp.WAIT_TOO_LONG, 60_500, 1)
    assert event.exception is raised.value and server.log() == []


# Which exceptions are transport failures, and of which kind: only what certainly happened before sending is NOT_SENT.

NO_POOL: Any = None  # urllib3's exceptions name the pool or connection they came from; these were made by hand


def _chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


def test_requests_failures_are_mapped_conservatively() -> None:
    from xeroguard.integrations.requests import transport_failure

    refused = urllib3.exceptions.NewConnectionError(NO_POOL, "refused")
    cases: List[Tuple[BaseException, Optional[TransportFailure]]] = [
        (requests.ConnectTimeout(), TransportFailure.NOT_SENT),
        (requests.ConnectionError(urllib3.exceptions.MaxRetryError(NO_POOL, "/", refused)), TransportFailure.NOT_SENT),
        (requests.exceptions.SSLError(_chained(urllib3.exceptions.SSLError("x"), ssl_verify_error())),
         TransportFailure.NOT_SENT),
        (requests.exceptions.SSLError(urllib3.exceptions.SSLError("bad record mac")), TransportFailure.NO_RESPONSE),
        (requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError())),
         TransportFailure.NO_RESPONSE),
        (requests.ReadTimeout(), TransportFailure.NO_RESPONSE),
        (requests.exceptions.ChunkedEncodingError(), TransportFailure.NO_RESPONSE),
        (urllib3.exceptions.ProtocolError("while reading a streamed body"), TransportFailure.NO_RESPONSE),
        (requests.exceptions.InvalidURL("no host"), None),
        (ValueError("a bug"), None),
    ]
    assert [transport_failure(e) for e, _ in cases] == [kind for _, kind in cases]


def test_httpx_failures_are_mapped_conservatively() -> None:
    from xeroguard.integrations.httpx import transport_failure

    cases: List[Tuple[BaseException, Optional[TransportFailure]]] = [
        (httpx.ConnectError("refused"), TransportFailure.NOT_SENT),
        (httpx.ConnectTimeout("slow"), TransportFailure.NOT_SENT),
        (httpx.PoolTimeout("no connection free"), TransportFailure.NOT_SENT),
        (httpx.ReadTimeout("slow"), TransportFailure.NO_RESPONSE),
        (httpx.WriteTimeout("slow"), TransportFailure.NO_RESPONSE),
        (httpx.ReadError("reset"), TransportFailure.NO_RESPONSE),
        (httpx.RemoteProtocolError("closed without a response"), TransportFailure.NO_RESPONSE),
        (httpx.UnsupportedProtocol("ftp"), None),
        (httpx.LocalProtocolError("bad header"), None),
        (httpx.DecodingError("bad gzip"), None),
    ]
    assert [transport_failure(e) for e, _ in cases] == [kind for _, kind in cases]


def test_xero_python_failures_are_mapped_conservatively() -> None:
    from xero_python.exceptions import ApiSSLException

    from xeroguard.integrations.xero_python import _transport_failure_of

    transport_failure = _transport_failure_of(ApiSSLException)
    refused = urllib3.exceptions.NewConnectionError(NO_POOL, "refused")
    unverified = ApiSSLException(status=0, reason="certificate verify failed")
    unverified.__context__ = _chained(urllib3.exceptions.SSLError("x"), ssl_verify_error())
    cases: List[Tuple[BaseException, Optional[TransportFailure]]] = [
        (urllib3.exceptions.MaxRetryError(NO_POOL, "/", refused), TransportFailure.NOT_SENT),
        (urllib3.exceptions.ConnectTimeoutError("slow"), TransportFailure.NOT_SENT),
        (unverified, TransportFailure.NOT_SENT),
        (ApiSSLException(status=0, reason="bad record mac"), TransportFailure.NO_RESPONSE),
        (urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError()),
         TransportFailure.NO_RESPONSE),
        (urllib3.exceptions.ReadTimeoutError(NO_POOL, "/", "slow"), TransportFailure.NO_RESPONSE),
        (urllib3.exceptions.MaxRetryError(NO_POOL, "/", urllib3.exceptions.ResponseError("too many redirects")),
         None),
        (HTTPStatusException(status=500), None),
        (ValueError("a bug"), None),
    ]
    assert [transport_failure(e) for e, _ in cases] == [kind for _, kind in cases]


def ssl_verify_error() -> BaseException:
    import ssl

    return ssl.SSLCertVerificationError(1, "certificate verify failed")


def test_a_failing_hook_stops_the_call_with_its_exception(make: Callable[..., Driver], server: LoopbackServer) -> None:
    def on_retry(event: ResendEvent) -> None:
        raise RuntimeError("the hook failed")

    server.script(Respond(500, (NOW, JSON)))
    with pytest.raises(RuntimeError, match="the hook failed"):
        make(on_retry=on_retry).send("GET")
    assert len(server.log()) == 1


@pytest.mark.parametrize("method", ["POST", "put", "PATCH", "PURGE", "GET", "head", "OPTIONS", "DELETE"])
def test_the_writes_given_a_key_are_exactly_those_resend_holds(method: str) -> None:
    held = xeroguard.resend(method, TransportFailure.NO_RESPONSE, 1, has_idempotency_key=False)
    assert xeroguard.needs_idempotency_key(method) is (held.give_up is GiveUp.UNSAFE_TO_RESEND)
    assert xeroguard.needs_idempotency_key(method) is (method.upper() not in ("GET", "HEAD", "OPTIONS", "DELETE"))


def test_needs_idempotency_key_refuses_what_is_not_a_method() -> None:
    with pytest.raises(TypeError, match="method must be a str, not bytes"):
        xeroguard.needs_idempotency_key(b"POST")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be empty"):
        xeroguard.needs_idempotency_key("")
    with pytest.raises(xeroguard.XeroGuardError, match="method is 33 bytes"):
        xeroguard.needs_idempotency_key("P" * 33)

"""Guard for httpx: sync and async transports that pace, observe and safely resend Xero calls.

    client = httpx.Client(transport=XeroGuardTransport(Limiter()))
    async_client = httpx.AsyncClient(transport=AsyncXeroGuardTransport(Limiter()))
"""

from __future__ import annotations

from typing import AsyncIterator, Iterator, List, Optional, Tuple

try:
    import httpx
except ImportError as exc:  # optional dependency
    raise ImportError("xeroguard.integrations.httpx needs the httpx package") from exc

from .._args import Seconds
from .._classify import body_bytes_to_classify
from .._limiter import Limiter
from .._vocabulary import TransportFailure
from ._guard import Guard, OnResend, OnStoreError, OnWait, Retries

# Failures while connecting or waiting for a pooled connection: the request never left.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Not transport failures: the request itself is wrong (a bug to report, not to resend).
_NOT_TRANSPORT = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


def transport_failure(e: BaseException) -> Optional[TransportFailure]:
    """NOT_SENT for what certainly failed before the request left; NO_RESPONSE for every other transport error
    (a read timeout, a reset, a server that closed without answering: it may have acted on the request)."""
    if isinstance(e, _NOT_SENT):
        return TransportFailure.NOT_SENT
    if isinstance(e, httpx.TransportError) and not isinstance(e, _NOT_TRANSPORT):
        return TransportFailure.NO_RESPONSE
    return None


def _wanted(r: httpx.Response) -> int:
    return body_bytes_to_classify(r.status_code, r.headers.get("content-type"))


def _decoded(r: httpx.Response, raw: bytes) -> bytes:
    """The start of a body as the client will give it (Content-Encoding undone), for the classification."""
    if not raw or "content-encoding" not in r.headers:
        return raw
    try:
        return httpx.Response(r.status_code, headers={"content-encoding": r.headers["content-encoding"]},
                              content=raw).content
    except httpx.DecodingError:  # a cut-off stream some decoders refuse: classify from status and headers
        return b""


class _PrefixedStream(httpx.SyncByteStream):
    """The raw chunks already read, then the rest of the original stream, unread."""

    def __init__(self, read: List[bytes], rest: Iterator[bytes], original: httpx.SyncByteStream) -> None:
        self._read, self._rest, self._original = read, rest, original

    def __iter__(self) -> Iterator[bytes]:
        while self._read:
            yield self._read.pop(0)
        yield from self._rest

    def close(self) -> None:
        self._original.close()


class _AsyncPrefixedStream(httpx.AsyncByteStream):
    def __init__(self, read: List[bytes], rest: AsyncIterator[bytes], original: httpx.AsyncByteStream) -> None:
        self._read, self._rest, self._original = read, rest, original

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self._read:
            yield self._read.pop(0)
        async for chunk in self._rest:
            yield chunk

    async def aclose(self) -> None:
        await self._original.aclose()


def _handed_on(r: httpx.Response, request: httpx.Request, stream: httpx.SyncByteStream | httpx.AsyncByteStream,
               ) -> httpx.Response:
    return httpx.Response(r.status_code, headers=r.headers, stream=stream, request=request, extensions=r.extensions)


def _read_to_classify(r: httpx.Response, request: httpx.Request) -> Tuple[httpx.Response, bytes]:
    """Reads what the library's body rule asks for (nothing of a download, at most 1 MiB of a JSON, XML or text
    success, every error body) and returns the response to hand on, whole and unread past that, with the body to
    classify."""
    wanted = _wanted(r)
    if wanted == 0:
        return r, b""
    assert isinstance(r.stream, httpx.SyncByteStream)
    chunks, size, rest = [], 0, iter(r.stream)
    try:
        for chunk in rest:
            chunks.append(chunk)
            size += len(chunk)
            if size > wanted:
                break
    except BaseException:
        r.close()
        raise
    return _handed_on(r, request, _PrefixedStream(list(chunks), rest, r.stream)), _decoded(r, b"".join(chunks))[:wanted]


async def _aread_to_classify(r: httpx.Response, request: httpx.Request) -> Tuple[httpx.Response, bytes]:
    wanted = _wanted(r)
    if wanted == 0:
        return r, b""
    assert isinstance(r.stream, httpx.AsyncByteStream)
    chunks, size, rest = [], 0, r.stream.__aiter__()
    try:
        async for chunk in rest:
            chunks.append(chunk)
            size += len(chunk)
            if size > wanted:
                break
    except BaseException:
        await r.aclose()
        raise
    handed_on = _handed_on(r, request, _AsyncPrefixedStream(list(chunks), rest, r.stream))
    return handed_on, _decoded(r, b"".join(chunks))[:wanted]


class XeroGuardTransport(httpx.BaseTransport):
    """Wraps another transport (default httpx.HTTPTransport()). Every request waits for a permit for its
    Xero-Tenant-Id; its response is classified (reading the part of the body the library's rule asks for: a large
    download stays streamed) and observed, and the permit released. It is sent again when the library says it may
    be (resend: a 429, a 503 outage, a 500 of a GET, a write that carries an Idempotency-Key, a connection that
    failed before sending...). Every POST, PUT and PATCH without an Idempotency-Key gets one, the same on every
    resend (`idempotency_keys=False` turns that off: then a write the server may have carried out is never resent).
    Once it stops, the last response is returned as it is, or the last transport exception raised unchanged.

    Hooks, called on the request's path (keep them quick): `on_wait(WaitEvent)` when the limiter holds an attempt
    back, `on_retry(ResendEvent)` before a resend, `on_give_up(ResendEvent)` when it stops short of a final answer,
    `on_store_error(StoreErrorEvent)` when the limiter could not observe or release a response (it still returns).
    """

    def __init__(self, limiter: Limiter, transport: Optional[httpx.BaseTransport] = None, retries: Retries = None,
                 permit_timeout: Optional[Seconds] = None, *, idempotency_keys: bool = True,
                 on_retry: OnResend = None, on_wait: OnWait = None, on_give_up: OnResend = None, on_store_error: OnStoreError = None) -> None:
        self.guard = Guard(limiter, retries, permit_timeout, idempotency_keys=idempotency_keys, on_retry=on_retry,
                           on_wait=on_wait, on_give_up=on_give_up, on_store_error=on_store_error, transport_failure=transport_failure)
        self.transport = transport if transport is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        call = self.guard.prepare(request.method, str(request.url), request.headers)
        request.read()  # buffered, so a resend can send the body again

        def attempt() -> Tuple[httpx.Response, Tuple[int, httpx.Headers, bytes]]:
            r, body = _read_to_classify(self.transport.handle_request(request), request)
            return r, (r.status_code, r.headers, body)

        return self.guard.run(call, attempt, lambda r: r.close())

    def close(self) -> None:
        self.transport.close()


class AsyncXeroGuardTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of XeroGuardTransport (default inner transport httpx.AsyncHTTPTransport()); the same
    options and hooks."""

    def __init__(self, limiter: Limiter, transport: Optional[httpx.AsyncBaseTransport] = None,
                 retries: Retries = None, permit_timeout: Optional[Seconds] = None, *, idempotency_keys: bool = True,
                 on_retry: OnResend = None, on_wait: OnWait = None, on_give_up: OnResend = None, on_store_error: OnStoreError = None) -> None:
        self.guard = Guard(limiter, retries, permit_timeout, idempotency_keys=idempotency_keys, on_retry=on_retry,
                           on_wait=on_wait, on_give_up=on_give_up, on_store_error=on_store_error, transport_failure=transport_failure)
        self.transport = transport if transport is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        call = self.guard.prepare(request.method, str(request.url), request.headers)
        await request.aread()

        async def attempt() -> Tuple[httpx.Response, Tuple[int, httpx.Headers, bytes]]:
            r, body = await _aread_to_classify(await self.transport.handle_async_request(request), request)
            return r, (r.status_code, r.headers, body)

        async def discard(r: httpx.Response) -> None:
            await r.aclose()

        return await self.guard.run_async(call, attempt, discard)

    async def aclose(self) -> None:
        await self.transport.aclose()

"""Guard for requests: a transport adapter that paces, observes and safely resends Xero calls.

    session = requests.Session()
    guard_session(session, Limiter())            # mounts on https://api.xero.com/
    session.get(url, headers={"Xero-Tenant-Id": tenant_id, ...})
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Optional, Tuple, Union

try:
    import requests
    from requests import PreparedRequest, Response, Session
    from requests.adapters import HTTPAdapter
except ImportError as exc:  # optional dependency
    raise ImportError("xeroguard.integrations.requests needs the requests package") from exc

from .._args import Seconds
from .._classify import body_bytes_to_classify
from .._limiter import Limiter
from .._vocabulary import TransportFailure
from ._guard import Guard, OnResend, OnStoreError, OnWait, Retries, certainly_before_sending
from ._urllib3 import CONNECTING, TRANSPORT

XERO_API = "https://api.xero.com/"
# Failures of the connection, from requests or (while the guard reads a streamed body) from urllib3.
_TRANSPORT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) + TRANSPORT
_CHUNK_BYTES = 64 * 1024


def transport_failure(e: BaseException) -> Optional[TransportFailure]:
    """NOT_SENT only for what certainly failed before the request left (a refused connection, a failed name lookup,
    a connect timeout, a certificate refused in the TLS handshake); NO_RESPONSE for every other failure of the
    connection (a read timeout, a reset: the server may have acted on the request); None for what is not a transport
    failure (a bad URL, a bug), which reaches the caller at once."""
    if isinstance(e, requests.ConnectTimeout):
        return TransportFailure.NOT_SENT
    if not isinstance(e, _TRANSPORT):
        return None
    return TransportFailure.NOT_SENT if certainly_before_sending(e, CONNECTING) else TransportFailure.NO_RESPONSE


class _PrefixedRaw:
    """Stands in for `response.raw` once the guard has read the start of a streamed body: the bytes read (decoded),
    then the rest from the same reader. Everything else (release_conn, close, headers...) is the original's."""

    def __init__(self, read: bytes, rest: Iterator[bytes], original: Any) -> None:
        self._buffer, self._rest, self._original = read, rest, original

    def stream(self, amt: Optional[int] = _CHUNK_BYTES, decode_content: Optional[bool] = None) -> Iterator[bytes]:
        if self._buffer:
            data, self._buffer = self._buffer, b""
            yield data
        yield from self._rest

    def read(self, amt: Optional[int] = None, decode_content: Optional[bool] = None, **kwargs: Any) -> bytes:
        while amt is None or len(self._buffer) < amt:
            chunk = next(self._rest, b"")
            if not chunk:
                break
            self._buffer += chunk
        if amt is None:
            amt = len(self._buffer)
        data, self._buffer = self._buffer[:amt], self._buffer[amt:]
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


def _read_to_classify(r: Response, stream: bool) -> bytes:
    """The body to classify, as the library's rule asks (nothing of a download, at most 1 MiB of a JSON, XML or
    text success, every error body). Without `stream` the whole body is read here, as requests would read it next;
    a streamed body is read only that far and the rest stays streamed for the caller."""
    wanted = body_bytes_to_classify(r.status_code, r.headers.get("content-type"))
    if not stream:
        return r.content[:wanted]
    if wanted == 0:
        return b""
    # From urllib3 directly (decoded as requests decodes): the caller's later reads go through requests as usual.
    chunks = r.raw.stream(_CHUNK_BYTES, decode_content=True)
    read = b""
    for chunk in chunks:
        read += chunk
        if len(read) > wanted:
            break
    r.raw = _PrefixedRaw(read, chunks, r.raw)
    return read[:wanted]


class XeroGuardAdapter(HTTPAdapter):
    """An HTTPAdapter whose every send waits for a permit for the request's Xero-Tenant-Id, classifies the response
    (reading the part of the body the library's rule asks for: a streamed download stays streamed), observes it,
    releases the permit, and sends again when the library says it may be (resend). Every POST, PUT and PATCH without
    an Idempotency-Key gets one, the same on every resend (`idempotency_keys=False` turns that off: then a write the
    server may have carried out is never resent). Once it stops, the last response is returned as it is, or the
    last transport exception (requests.ConnectionError...) raised unchanged. Hooks as for the httpx transport:
    `on_wait`, `on_retry`, `on_give_up`, `on_store_error`. Other HTTPAdapter keyword arguments pass through, except
    `max_retries`: urllib3 resending behind the guard could duplicate a write.
    """

    def __init__(self, limiter: Limiter, retries: Retries = None, permit_timeout: Optional[Seconds] = None, *,
                 idempotency_keys: bool = True, on_retry: OnResend = None, on_wait: OnWait = None,
                 on_give_up: OnResend = None, on_store_error: OnStoreError = None, **adapter_kwargs: Any) -> None:
        if "max_retries" in adapter_kwargs:
            raise TypeError("max_retries is not accepted: the guard decides every resend (retries= sets its policy)")
        self.guard = Guard(limiter, retries, permit_timeout, idempotency_keys=idempotency_keys, on_retry=on_retry,
                           on_wait=on_wait, on_give_up=on_give_up, on_store_error=on_store_error, transport_failure=transport_failure)
        super().__init__(**adapter_kwargs)

    def send(self, request: PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Union[bool, str] = True, cert: Any = None, proxies: Any = None) -> Response:
        call = self.guard.prepare(request.method or "GET", request.url or "", request.headers)

        def attempt() -> Tuple[Response, Tuple[int, Any, bytes]]:
            r = super(XeroGuardAdapter, self).send(request, stream=stream, timeout=timeout, verify=verify,
                                                   cert=cert, proxies=proxies)
            try:
                body = _read_to_classify(r, stream)
            except BaseException:
                r.close()
                raise
            return r, (r.status_code, r.headers, body)

        return self.guard.run(call, attempt, lambda r: r.close())


def guard_session(session: Session, limiter: Limiter, retries: Retries = None,
                  permit_timeout: Optional[Seconds] = None, prefixes: Iterable[str] = (XERO_API,), *,
                  idempotency_keys: bool = True, on_retry: OnResend = None, on_wait: OnWait = None,
                  on_give_up: OnResend = None, on_store_error: OnStoreError = None, **adapter_kwargs: Any) -> Session:
    """Mounts one XeroGuardAdapter on `session` for each URL prefix and returns the session."""
    adapter = XeroGuardAdapter(limiter, retries, permit_timeout, idempotency_keys=idempotency_keys,
                               on_retry=on_retry, on_wait=on_wait, on_give_up=on_give_up, on_store_error=on_store_error, **adapter_kwargs)
    for prefix in prefixes:
        session.mount(prefix, adapter)
    return session

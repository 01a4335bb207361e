"""Guard for the official xero-python SDK: pace, observe and safely resend every call an ApiClient makes.

    from xero_python.accounting import AccountingApi
    from xeroguard import Limiter
    from xeroguard.integrations.xero_python import guard

    guard(api_client, Limiter())
    AccountingApi(api_client).get_invoices(tenant_id)   # waits for a permit; resends what the library allows
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

try:
    import urllib3  # under the SDK

    from ._urllib3 import CONNECTING, TRANSPORT
except ImportError as exc:  # optional dependency
    raise ImportError("xeroguard.integrations.xero_python needs the xero-python package") from exc

from .._args import Seconds
from .._classify import body_bytes_to_classify
from .._limiter import Limiter
from .._vocabulary import TransportFailure
from ._guard import Guard, OnResend, OnStoreError, OnWait, Retries, certainly_before_sending, header_value

_MARK = "__xeroguard_original__"
_RETRIES_MARK = "_xeroguard_saved_retries"


def _transport_failure_of(api_ssl_exception: type) -> Any:
    def transport_failure(e: BaseException) -> Optional[TransportFailure]:
        """NOT_SENT only for what certainly failed before the request left (refused, DNS, a connect timeout, a
        certificate refused in the handshake); NO_RESPONSE for every other failure of the connection; None for
        what is not one (a bad URL, a bug, an HTTP status), which reaches the caller at once."""
        reason = e.reason if isinstance(e, urllib3.exceptions.MaxRetryError) else e
        if not isinstance(reason, TRANSPORT) and not isinstance(e, api_ssl_exception):
            return None
        return TransportFailure.NOT_SENT if certainly_before_sending(e, CONNECTING) else TransportFailure.NO_RESPONSE

    return transport_failure


def _leave_resends_to_the_guard(rest: Any) -> None:
    """urllib3 (under the SDK) resends by itself, by default: a 429 or 503 carrying Retry-After, and a GET, PUT or
    DELETE whose connection failed, even after sending (a PUT creates in Xero: a duplicate). The guard must see
    every outcome and decide every resend; redirects stay as they were."""
    from urllib3.util.retry import Retry

    kw = rest.pool_manager.connection_pool_kw
    if not hasattr(rest, _RETRIES_MARK):
        setattr(rest, _RETRIES_MARK, {"retries": kw["retries"]} if "retries" in kw else {})
    current = kw.get("retries")
    base = current if isinstance(current, Retry) else Retry.DEFAULT
    kw["retries"] = base.new(connect=0, read=False, other=0, status=0, status_forcelist=None,
                             respect_retry_after_header=False)
    rest.pool_manager.clear()  # pools made before now keep their own settings


def guard(api_client: Any, limiter: Limiter, retries: Retries = None, permit_timeout: Optional[Seconds] = None, *,
          idempotency_keys: bool = True, on_retry: OnResend = None, on_wait: OnWait = None,
          on_give_up: OnResend = None, on_store_error: OnStoreError = None) -> Any:
    """Wraps `api_client.rest_client.request` (every SDK call goes through it) and returns `api_client`.

    Each call waits for a permit for its Xero-Tenant-Id (at most `permit_timeout` seconds, default the retry
    policy's max_wait_ms), observes the response or the HTTPStatusException, releases the permit, and is sent
    again when the library says it may be (resend). Every POST, PUT and PATCH without an Idempotency-Key gets one,
    the same on every resend; a key given to the SDK (`idempotency_key=`) is kept; `idempotency_keys=False` turns
    this off, and then a write the server may have carried out is never resent. When it stops, the last
    HTTPStatusException, or the last urllib3 exception of a failed connection, is raised unchanged. Hooks as for
    the httpx transport: `on_wait`, `on_retry`, `on_give_up`, `on_store_error`. Guarding an already guarded client
    replaces the previous guard.

    A success fetched with `_preload_content=False` (a stream) is classified from its status and headers only: the
    SDK hands the caller urllib3's response itself, which cannot give back what was read of it.
    """
    try:
        # xero-python ships no type information (no py.typed, no stubs).
        from xero_python.exceptions import ApiSSLException, HTTPStatusException  # type: ignore[import-untyped]
    except ImportError as exc:  # optional dependency
        raise ImportError("xeroguard.integrations.xero_python needs the xero-python package") from exc

    rest = api_client.rest_client
    original = getattr(rest.request, _MARK, rest.request)
    g = Guard(limiter, retries, permit_timeout, idempotency_keys=idempotency_keys, on_retry=on_retry,
              on_wait=on_wait, on_give_up=on_give_up, on_store_error=on_store_error, transport_failure=_transport_failure_of(ApiSSLException))
    _leave_resends_to_the_guard(rest)

    def request(method: str, url: str, query_params: Any = None, headers: Any = None, body: Any = None,
                post_params: Any = None, _preload_content: bool = True, _request_timeout: Any = None) -> Any:
        call_headers = dict(headers or {})
        call = g.prepare(method, url, call_headers)

        def attempt() -> Tuple[Any, Tuple[int, Any, bytes]]:
            try:
                # A fresh headers dict each time: the SDK edits Content-Type in place (multipart uploads).
                r = original(method, url, query_params=query_params, headers=dict(call_headers), body=body,
                             post_params=post_params, _preload_content=_preload_content,
                             _request_timeout=_request_timeout)
            except HTTPStatusException as e:  # the SDK has read the body of every non-2xx
                return e, (int(e.status), e.headers or {}, _to_classify(int(e.status), e.headers, e.body))
            if _preload_content:
                return r, (r.status, r.getheaders(), _to_classify(r.status, r.getheaders(), r.data))
            return r, (r.status, r.headers, b"")  # streamed: the body is the caller's to read

        result = g.run(call, attempt, _close)
        if isinstance(result, BaseException):
            raise result
        return result

    setattr(request, _MARK, original)
    request.guard = g  # type: ignore[attr-defined]
    rest.request = request
    return api_client


def unguard(api_client: Any) -> Any:
    """Removes the guard (a no-op on an unguarded client)."""
    rest = api_client.rest_client
    original = getattr(rest.request, _MARK, None)
    if original is not None:
        saved = getattr(rest, _RETRIES_MARK, None)
        if saved is not None:
            rest.pool_manager.connection_pool_kw.pop("retries", None)
            rest.pool_manager.connection_pool_kw.update(saved)
            rest.pool_manager.clear()
            delattr(rest, _RETRIES_MARK)
        rest.__dict__.pop("request", None)
        if rest.request != original:  # it was an instance attribute before guard
            rest.request = original
    return api_client


def _to_classify(status: int, headers: Any, body: Optional[bytes]) -> bytes:
    """What the library's body rule asks of a body the SDK has already read."""
    return (body or b"")[:body_bytes_to_classify(status, header_value(headers, "content-type"))]


def _close(result: Any) -> None:
    # An unread streamed response would pin its connection.
    release = getattr(result, "release_conn", None)
    if callable(release):
        release()

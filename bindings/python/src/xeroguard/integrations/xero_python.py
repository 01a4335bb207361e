"""Guard for the official xero-python SDK: pace, observe and retry every call an ApiClient makes.

    from xero_python.accounting import AccountingApi
    from xeroguard import Limiter
    from xeroguard.integrations.xero_python import guard

    guard(api_client, Limiter())
    AccountingApi(api_client).get_invoices(tenant_id)   # waits for a permit; retries 429/503 as classified
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from .._args import Seconds
from .._limiter import Limiter
from ._guard import Guard, Retries, tenant_of

_MARK = "__xeroguard_original__"
_RETRIES_MARK = "_xeroguard_saved_retries"


def _stop_urllib3_status_retries(rest: Any) -> None:
    """urllib3 (under the SDK) retries a 429 or 503 carrying Retry-After by itself, by default, behind the
    limiter's back; the guard must see every response. Connection-level retries stay as they were."""
    from urllib3.util.retry import Retry

    kw = rest.pool_manager.connection_pool_kw
    if not hasattr(rest, _RETRIES_MARK):
        setattr(rest, _RETRIES_MARK, {"retries": kw["retries"]} if "retries" in kw else {})
    current = kw.get("retries")
    base = current if isinstance(current, Retry) else Retry.DEFAULT
    kw["retries"] = base.new(status_forcelist=None, respect_retry_after_header=False)
    rest.pool_manager.clear()  # pools made before now keep their own settings


def guard(api_client: Any, limiter: Limiter, retries: Retries = None,
          permit_timeout: Optional[Seconds] = None) -> Any:
    """Wraps `api_client.rest_client.request` (every SDK call goes through it) and returns `api_client`.

    Each call waits for a permit for its Xero-Tenant-Id (at most `permit_timeout` seconds, default the retry
    policy's max_wait_ms), observes the response or the HTTPStatusException, releases the permit, and retries
    what the classification calls retryable while `xeroguard.backoff` allows. The last exception is re-raised
    when it gives up. Guarding an already guarded client replaces the previous guard.
    """
    try:
        # xero-python ships no type information (no py.typed, no stubs).
        from xero_python.exceptions import HTTPStatusException  # type: ignore[import-untyped]
    except ImportError as exc:  # optional dependency
        raise ImportError("xeroguard.integrations.xero_python needs the xero-python package") from exc

    rest = api_client.rest_client
    original = getattr(rest.request, _MARK, rest.request)
    g = Guard(limiter, retries, permit_timeout)
    _stop_urllib3_status_retries(rest)

    def request(method: str, url: str, query_params: Any = None, headers: Any = None, body: Any = None,
                post_params: Any = None, _preload_content: bool = True, _request_timeout: Any = None) -> Any:
        def attempt() -> Tuple[Any, Tuple[int, Any, bytes]]:
            try:
                # A fresh headers dict each time: the SDK edits Content-Type in place (multipart uploads).
                r = original(method, url, query_params=query_params, headers=dict(headers or {}), body=body,
                             post_params=post_params, _preload_content=_preload_content,
                             _request_timeout=_request_timeout)
            except HTTPStatusException as e:
                return e, (int(e.status), e.headers or {}, e.body or b"")
            if _preload_content:
                return r, (r.status, r.getheaders(), r.data)
            return r, (r.status, r.headers, b"")  # streamed: the body is the caller's to read

        result = g.run(tenant_of(headers), attempt, _close)
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


def _close(result: Any) -> None:
    # An unread streamed response would pin its connection.
    release = getattr(result, "release_conn", None)
    if callable(release):
        release()

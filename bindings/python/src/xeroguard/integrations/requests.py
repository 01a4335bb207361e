"""Guard for requests: a transport adapter that paces, observes and retries Xero calls.

    session = requests.Session()
    guard_session(session, Limiter())            # mounts on https://api.xero.com/
    session.get(url, headers={"Xero-Tenant-Id": tenant_id, ...})
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple, Union

try:
    from requests import PreparedRequest, Response, Session
    from requests.adapters import HTTPAdapter
except ImportError as exc:  # optional dependency
    raise ImportError("xeroguard.integrations.requests needs the requests package") from exc

from .._args import Seconds
from .._limiter import Limiter
from ._guard import Guard, Retries, tenant_of

XERO_API = "https://api.xero.com/"


class XeroGuardAdapter(HTTPAdapter):
    """An HTTPAdapter whose every send waits for a permit for the request's Xero-Tenant-Id, observes the
    response, releases the permit and retries what the classification calls retryable (xeroguard.backoff).
    Once it gives up, the last response is returned as it is. Other HTTPAdapter keyword arguments pass through.
    """

    def __init__(self, limiter: Limiter, retries: Retries = None, permit_timeout: Optional[Seconds] = None,
                 **adapter_kwargs: Any) -> None:
        self.guard = Guard(limiter, retries, permit_timeout)
        super().__init__(**adapter_kwargs)

    def send(self, request: PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Union[bool, str] = True, cert: Any = None, proxies: Any = None) -> Response:
        def attempt() -> Tuple[Response, Tuple[int, Any, bytes]]:
            r = super(XeroGuardAdapter, self).send(request, stream=stream, timeout=timeout, verify=verify,
                                                   cert=cert, proxies=proxies)
            # A streamed success is left unread for the caller (it may be a large download); error bodies are
            # small and the classification needs them.
            body = b"" if stream and r.status_code < 300 else r.content
            return r, (r.status_code, r.headers, body)

        return self.guard.run(tenant_of(request.headers), attempt, lambda r: r.close())


def guard_session(session: Session, limiter: Limiter, retries: Retries = None,
                  permit_timeout: Optional[Seconds] = None, prefixes: Iterable[str] = (XERO_API,),
                  **adapter_kwargs: Any) -> Session:
    """Mounts one XeroGuardAdapter on `session` for each URL prefix and returns the session."""
    adapter = XeroGuardAdapter(limiter, retries, permit_timeout, **adapter_kwargs)
    for prefix in prefixes:
        session.mount(prefix, adapter)
    return session

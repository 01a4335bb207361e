"""Guard for httpx: sync and async transports that pace, observe and retry Xero calls.

    client = httpx.Client(transport=XeroGuardTransport(Limiter()))
    async_client = httpx.AsyncClient(transport=AsyncXeroGuardTransport(Limiter()))
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

try:
    import httpx
except ImportError as exc:  # optional dependency
    raise ImportError("xeroguard.integrations.httpx needs the httpx package") from exc

from .._args import Seconds
from .._limiter import Limiter
from ._guard import Guard, Retries, tenant_of


def _body_to_classify(r: httpx.Response) -> bool:
    # A success may be a large download the caller streams, so it stays unread; error bodies are small
    # and the classification needs them.
    return r.status_code >= 300


class XeroGuardTransport(httpx.BaseTransport):
    """Wraps another transport (default httpx.HTTPTransport()). Every request waits for a permit for its
    Xero-Tenant-Id, its response is observed, the permit released, and what the classification calls
    retryable is retried (xeroguard.backoff); once it gives up, the last response is returned as it is."""

    def __init__(self, limiter: Limiter, transport: Optional[httpx.BaseTransport] = None, retries: Retries = None,
                 permit_timeout: Optional[Seconds] = None) -> None:
        self.guard = Guard(limiter, retries, permit_timeout)
        self.transport = transport if transport is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # buffered, so a retry can send the body again

        def attempt() -> Tuple[httpx.Response, Tuple[int, Any, bytes]]:
            r = self.transport.handle_request(request)
            body = r.read() if _body_to_classify(r) else b""
            return r, (r.status_code, r.headers, body)

        return self.guard.run(tenant_of(request.headers), attempt, lambda r: r.close())

    def close(self) -> None:
        self.transport.close()


class AsyncXeroGuardTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of XeroGuardTransport (default inner transport httpx.AsyncHTTPTransport())."""

    def __init__(self, limiter: Limiter, transport: Optional[httpx.AsyncBaseTransport] = None,
                 retries: Retries = None, permit_timeout: Optional[Seconds] = None) -> None:
        self.guard = Guard(limiter, retries, permit_timeout)
        self.transport = transport if transport is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()

        async def attempt() -> Tuple[httpx.Response, Tuple[int, Any, bytes]]:
            r = await self.transport.handle_async_request(request)
            body = await r.aread() if _body_to_classify(r) else b""
            return r, (r.status_code, r.headers, body)

        async def discard(r: httpx.Response) -> None:
            await r.aclose()

        return await self.guard.run_async(tenant_of(request.headers), attempt, discard)

    async def aclose(self) -> None:
        await self.transport.aclose()

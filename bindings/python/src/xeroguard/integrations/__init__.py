"""Ready-made guards for HTTP clients. Each submodule imports its client library only when imported itself:

- `xeroguard.integrations.xero_python`: `guard(api_client, limiter)` for the official xero-python SDK
- `xeroguard.integrations.requests`: `XeroGuardAdapter` / `guard_session` for requests
- `xeroguard.integrations.httpx`: `XeroGuardTransport` / `AsyncXeroGuardTransport` for httpx
- `xeroguard.integrations.prometheus`: `XeroguardCollector` / `register` for prometheus_client (the limiters' stats)

Every guard takes the same hooks, called with these events: `on_wait(WaitEvent)`, `on_retry(ResendEvent)`,
`on_give_up(ResendEvent)`, `on_store_error(StoreErrorEvent)` (the limiter could not observe or release a response
that exists: it still reaches the caller; nothing raises once a response exists).
"""

from ._guard import ResendEvent, StoreErrorEvent, WaitEvent

__all__ = ["ResendEvent", "StoreErrorEvent", "WaitEvent"]

"""Ready-made guards for HTTP clients. Each submodule imports its client library only when imported itself:

- `xeroguard.integrations.xero_python`: `guard(api_client, limiter)` for the official xero-python SDK
- `xeroguard.integrations.requests`: `XeroGuardAdapter` / `guard_session` for requests
- `xeroguard.integrations.httpx`: `XeroGuardTransport` / `AsyncXeroGuardTransport` for httpx
- `xeroguard.integrations.prometheus`: `XeroguardCollector` / `register` for prometheus_client (the limiters' stats)

Every guard takes the same hooks, called with these events: `on_wait(WaitEvent)`, `on_retry(ResendEvent)`,
`on_give_up(ResendEvent)`.
"""

from ._guard import ResendEvent, WaitEvent

__all__ = ["ResendEvent", "WaitEvent"]

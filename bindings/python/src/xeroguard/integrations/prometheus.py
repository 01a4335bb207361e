"""Prometheus metrics for xeroguard limiters: a collector for `prometheus_client` (`pip install
xeroguard[prometheus]`) that reads each limiter's `stats()` at every scrape.

    from prometheus_client import REGISTRY, start_http_server
    from xeroguard.integrations.prometheus import XeroguardCollector

    REGISTRY.register(XeroguardCollector(limiter))
    start_http_server(9100)

Metrics (counters end in `_total` in the exposition):

- `xeroguard_decisions_total{result, reason}`: acquire's answers, and each wait's first answer and final grant;
  `result` is `granted` (no reason) or `refused` with the reason's word;
- `xeroguard_waits_started_total`, `xeroguard_waits_total{outcome}` (`granted`, `given_up`, `interrupted`) and the
  histogram `xeroguard_wait_seconds` (the library's buckets: 10 ms, 100 ms, 1 s, 10 s, 65 s, 10 min);
- `xeroguard_responses_total{category}`, `xeroguard_rate_limited_total{problem}` (the 429s: these should stay 0);
- `xeroguard_store_fallbacks_total{policy}`: decisions the failure policy made while the shared store was out of
  reach;
- for a limiter sharing its state through Redis: `xeroguard_store_operations_total`,
  `xeroguard_store_errors_total{kind}`, `xeroguard_breaker_open` (1 while open), `xeroguard_breaker_openings_total`,
  `xeroguard_store_replays_pending`.

No metric has a tenant label: an app serves thousands of tenants, and a series per tenant and label value would
swamp a metrics backend, so the library counts per limiter. For a named few tenants (your largest customers, say),
`tenants=[...]` adds gauges of their windows read from `snapshot()` at each scrape (one snapshot per tenant; on
Redis, one round trip each): `xeroguard_tenant_calls{tenant, window}`, `xeroguard_tenant_remaining{tenant, window}`
(`window`: minute, day), `xeroguard_tenant_in_flight{tenant}` and `xeroguard_tenant_wait_seconds{tenant}` (what
acquire would answer now). Several limiters in one process: pass a mapping of names to limiters; the names become
a `limiter` label.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple, Union

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .._limiter import Limiter
from .._stats import Stats

Limiters = Union[Limiter, Mapping[str, Limiter]]


def _bound(seconds: float) -> str:
    return "+Inf" if math.isinf(seconds) else repr(seconds)


class XeroguardCollector(Collector):
    """Collects every limiter's statistics at each scrape (see the module's documentation for the metrics)."""

    def __init__(self, limiters: Limiters, tenants: Iterable[str] = ()) -> None:
        if isinstance(limiters, Limiter):
            self._limiters: List[Tuple[Tuple[str, ...], Limiter]] = [((), limiters)]
            self._limiter_label: Tuple[str, ...] = ()
        else:
            self._limiters = [((name,), limiter) for name, limiter in limiters.items()]
            self._limiter_label = ("limiter",)
        for _, limiter in self._limiters:
            if not isinstance(limiter, Limiter):
                raise TypeError("XeroguardCollector takes xeroguard Limiters, not %s" % type(limiter).__name__)
        self._tenants = list(tenants)

    def describe(self) -> Iterable[Metric]:
        # The families without samples: registering checks the names, and reads no limiter.
        return list(self._families().values())

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        for name, limiter in self._limiters:
            if limiter.closed:
                continue
            self._add_stats(families, name, limiter.stats())
            for tenant in self._tenants:
                self._add_tenant(families, name, tenant, limiter.snapshot(tenant))
        return [family for family in families.values() if family.samples]

    def _families(self) -> Dict[str, Metric]:
        own = self._limiter_label

        def counter(name: str, doc: str, *labels: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=own + labels)

        def gauge(name: str, doc: str, *labels: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=own + labels)

        families: List[Metric] = [
            counter("xeroguard_decisions", "Permits granted and calls refused (by reason).", "result", "reason"),
            counter("xeroguard_waits_started", "Waits for a permit that began with a refusal."),
            counter("xeroguard_waits", "Waits for a permit that ended, by outcome.", "outcome"),
            HistogramMetricFamily("xeroguard_wait_seconds", "How long ended waits for a permit lasted.",
                                  labels=own),
            counter("xeroguard_responses", "Responses fed back to the limiter, by category.", "category"),
            counter("xeroguard_rate_limited", "429 responses observed, by rate-limit problem.", "problem"),
            counter("xeroguard_store_fallbacks",
                    "Decisions a failure policy made because the shared store could not.", "policy"),
            counter("xeroguard_store_operations", "Operations sent to the shared store."),
            counter("xeroguard_store_errors", "Failed operations on the shared store, by kind.", "kind"),
            gauge("xeroguard_breaker_open", "1 while the store's breaker is open (the failure policy decides)."),
            counter("xeroguard_breaker_openings", "Times the store's breaker opened."),
            gauge("xeroguard_store_replays_pending", "Releases and cancels the store has not confirmed yet."),
            gauge("xeroguard_tenant_calls", "Calls in the tenant's window ending now.", "tenant", "window"),
            gauge("xeroguard_tenant_remaining", "Calls the tenant's window still allows now.", "tenant", "window"),
            gauge("xeroguard_tenant_in_flight", "The tenant's permits not yet released.", "tenant"),
            gauge("xeroguard_tenant_wait_seconds", "How long acquire would make the tenant wait now.", "tenant"),
        ]
        return {family.name: family for family in families}

    @staticmethod
    def _add_stats(families: Dict[str, Metric], name: Tuple[str, ...], s: Stats) -> None:
        def add(metric: str, labels: Sequence[str], value: float) -> None:
            family = families[metric]
            assert isinstance(family, (CounterMetricFamily, GaugeMetricFamily))
            family.add_metric(list(name) + list(labels), value)

        add("xeroguard_decisions", ["granted", ""], s.granted)
        for reason, count in s.refused.items():
            add("xeroguard_decisions", ["refused", reason], count)
        add("xeroguard_waits_started", [], s.waits_started)
        for outcome, count in (("granted", s.waits_granted), ("given_up", s.waits_given_up),
                               ("interrupted", s.waits_interrupted)):
            add("xeroguard_waits", [outcome], count)
        cumulative, buckets = 0, []
        for bound, count in zip(s.wait_bucket_le, s.wait_buckets):
            cumulative += count
            buckets.append((_bound(bound), float(cumulative)))
        histogram = families["xeroguard_wait_seconds"]
        assert isinstance(histogram, HistogramMetricFamily)
        histogram.add_metric(list(name), buckets, s.wait_seconds_total)
        for category, count in s.responses.items():
            add("xeroguard_responses", [category], count)
        for problem, count in s.rate_limited.items():
            add("xeroguard_rate_limited", [problem], count)
        for policy, count in s.fallbacks.items():
            add("xeroguard_store_fallbacks", [policy], count)
        if s.shared:
            add("xeroguard_store_operations", [], s.store_operations)
            for kind, count in s.store_failures.items():
                add("xeroguard_store_errors", [kind], count)
            add("xeroguard_breaker_open", [], 1 if s.breaker_open else 0)
            add("xeroguard_breaker_openings", [], s.breaker_openings)
            add("xeroguard_store_replays_pending", [], s.replays_pending)

    @staticmethod
    def _add_tenant(families: Dict[str, Metric], name: Tuple[str, ...], tenant: str,
                    snapshot: Mapping[str, Any]) -> None:
        def add(metric: str, labels: Sequence[str], value: float) -> None:
            family = families[metric]
            assert isinstance(family, GaugeMetricFamily)
            family.add_metric(list(name) + [tenant] + list(labels), value)

        for window in ("minute", "day"):
            add("xeroguard_tenant_calls", [window], snapshot[window]["count"])
            add("xeroguard_tenant_remaining", [window], snapshot[window]["remaining"])
        add("xeroguard_tenant_in_flight", [], snapshot["in_flight"])
        add("xeroguard_tenant_wait_seconds", [], snapshot["wait_ms"] / 1000)


def register(limiters: Limiters, tenants: Iterable[str] = (), registry: object = None) -> XeroguardCollector:
    """Registers a `XeroguardCollector` for `limiters` with `registry` (default: prometheus_client's REGISTRY) and
    returns it (`registry.unregister(collector)` removes it)."""
    from prometheus_client import REGISTRY, CollectorRegistry

    target = REGISTRY if registry is None else registry
    if not isinstance(target, CollectorRegistry):
        raise TypeError("registry must be a prometheus_client CollectorRegistry")
    collector = XeroguardCollector(limiters, tenants)
    target.register(collector)
    return collector


__all__ = ["XeroguardCollector", "register"]

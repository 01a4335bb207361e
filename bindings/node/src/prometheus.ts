// Prometheus metrics for xeroguard limiters, for prom-client (an optional peer dependency: `npm install
// prom-client`): the metrics of the Python collector (xeroguard.integrations.prometheus), with the same names, labels
// and help, read from each limiter's `stats()` at every scrape.
//
// Each metric is an object prom-client's registry takes as it is (`registerMetric`: a name, help, type and an async
// `get()`), not a prom-client Counter: the library's counters are totals already, which a Counter could only be
// incremented to. One scrape reads each limiter once, for every metric.

import { InvalidArgumentError, XeroGuardError } from './errors';
import { Limiter } from './limiter';
import type { Stats } from './stats';

/** What `registerMetrics` needs of a registry: prom-client's `Registry` (its default `register`, or one of yours). */
export interface MetricsRegistry {
  registerMetric(metric: never): void;
  removeSingleMetric?(name: string): void;
}

export interface MetricsOptions {
  /**
   * A named few tenants (your largest customers, say) whose windows are read at each scrape from `snapshot()`, as
   * gauges with a `tenant` label (one snapshot per tenant: on Redis, one round trip each). No metric has a tenant
   * label otherwise: an app serves thousands of tenants, and a series per tenant would swamp a metrics backend.
   */
  tenants?: readonly string[];
}

/** What `registerMetrics` returns: the names it registered, and the way to take them out again. */
export interface RegisteredMetrics {
  readonly names: readonly string[];
  unregister(): void;
}

type Labels = Record<string, string>;

interface Sample {
  labels: Labels;
  value: number;
  /** A histogram's `_bucket`, `_sum` and `_count`. */
  metricName?: string;
}

interface Reading {
  labels: Labels;
  stats: Stats;
  tenants: { tenant: string; snapshot: TenantWindows }[];
}

interface TenantWindows {
  minute: { count: number; remaining: number };
  day: { count: number; remaining: number };
  in_flight: number;
  wait_ms: number;
}

type Type = 'counter' | 'gauge' | 'histogram';

interface Family {
  name: string;
  help: string;
  type: Type;
  /** Shared by limiters that keep their state in Redis only: read from those limiters alone. */
  store?: true;
  /** How prom-client merges the series of cluster workers (`sum` when left out). */
  aggregator?: 'max' | 'sum';
  /** With `tenants` only. */
  tenant?: true;
  samples(reading: Reading): Sample[];
}

function one(labels: Labels, value: number, more: Labels = {}): Sample {
  return { labels: { ...labels, ...more }, value };
}

/** Labels in name order, as prometheus_client writes them: the same series reads the same from either binding. */
function sortedLabels(sample: Sample): Sample {
  const labels: Labels = {};
  for (const name of Object.keys(sample.labels).sort()) labels[name] = sample.labels[name]!;
  return { ...sample, labels };
}

function each<W extends string>(reading: Reading, counts: Readonly<Record<W, number>>, label: string): Sample[] {
  return Object.entries<number>(counts).map(([word, count]) => one(reading.labels, count, { [label]: word }));
}

function perTenant(reading: Reading, samples: (tenant: string, s: TenantWindows) => Sample[]): Sample[] {
  return reading.tenants.flatMap(({ tenant, snapshot }) => samples(tenant, snapshot));
}

function waitHistogram({ labels, stats }: Reading): Sample[] {
  const samples: Sample[] = [];
  let cumulative = 0;
  stats.waitBucketLeMs.forEach((le, i) => {
    cumulative += stats.waitBuckets[i] ?? 0;
    const bound = le === Infinity ? '+Inf' : String(le / 1000);
    samples.push({ metricName: 'xeroguard_wait_seconds_bucket', labels: { ...labels, le: bound }, value: cumulative });
  });
  samples.push({ metricName: 'xeroguard_wait_seconds_sum', labels, value: stats.waitMsTotal / 1000 });
  samples.push({ metricName: 'xeroguard_wait_seconds_count', labels, value: cumulative });
  return samples;
}

/** The Python collector's metrics, in its order (test/stats.test.mjs compares the two lists). */
const FAMILIES: readonly Family[] = [
  {
    name: 'xeroguard_decisions_total',
    help: 'Permits granted and calls refused (by reason).',
    type: 'counter',
    samples: (r) => [
      one(r.labels, r.stats.granted, { result: 'granted', reason: '' }),
      ...each(r, r.stats.refused, 'reason').map((s) => ({ ...s, labels: { ...s.labels, result: 'refused' } })),
    ],
  },
  {
    name: 'xeroguard_waits_started_total',
    help: 'Waits for a permit that began with a refusal.',
    type: 'counter',
    samples: (r) => [one(r.labels, r.stats.waitsStarted)],
  },
  {
    name: 'xeroguard_waits_total',
    help: 'Waits for a permit that ended, by outcome.',
    type: 'counter',
    samples: (r) => [
      one(r.labels, r.stats.waitsGranted, { outcome: 'granted' }),
      one(r.labels, r.stats.waitsGivenUp, { outcome: 'given_up' }),
      one(r.labels, r.stats.waitsInterrupted, { outcome: 'interrupted' }),
    ],
  },
  {
    name: 'xeroguard_wait_seconds',
    help: 'How long ended waits for a permit lasted.',
    type: 'histogram',
    samples: waitHistogram,
  },
  {
    name: 'xeroguard_responses_total',
    help: 'Responses fed back to the limiter, by category.',
    type: 'counter',
    samples: (r) => each(r, r.stats.responses, 'category'),
  },
  {
    name: 'xeroguard_rate_limited_total',
    help: '429 responses observed, by rate-limit problem.',
    type: 'counter',
    samples: (r) => each(r, r.stats.rateLimited, 'problem'),
  },
  {
    name: 'xeroguard_store_fallbacks_total',
    help: 'Decisions a failure policy made because the shared store could not.',
    type: 'counter',
    samples: (r) => each(r, r.stats.fallbacks, 'policy'),
  },
  {
    name: 'xeroguard_store_operations_total',
    help: 'Operations sent to the shared store.',
    type: 'counter',
    store: true,
    samples: (r) => [one(r.labels, r.stats.storeOperations)],
  },
  {
    name: 'xeroguard_store_errors_total',
    help: 'Failed operations on the shared store, by kind.',
    type: 'counter',
    store: true,
    samples: (r) => each(r, r.stats.storeFailures, 'kind'),
  },
  {
    name: 'xeroguard_breaker_open',
    help: "1 while the store's breaker is open (the failure policy decides).",
    type: 'gauge',
    store: true,
    aggregator: 'max',
    samples: (r) => [one(r.labels, r.stats.breakerOpen ? 1 : 0)],
  },
  {
    name: 'xeroguard_breaker_openings_total',
    help: "Times the store's breaker opened.",
    type: 'counter',
    store: true,
    samples: (r) => [one(r.labels, r.stats.breakerOpenings)],
  },
  {
    name: 'xeroguard_store_replays_pending',
    help: 'Releases and cancels the store has not confirmed yet.',
    type: 'gauge',
    store: true,
    samples: (r) => [one(r.labels, r.stats.replaysPending)],
  },
  {
    name: 'xeroguard_tenant_calls',
    help: "Calls in the tenant's window ending now.",
    type: 'gauge',
    tenant: true,
    samples: (r) =>
      perTenant(r, (tenant, s) =>
        (['minute', 'day'] as const).map((window) => one(r.labels, s[window].count, { tenant, window })),
      ),
  },
  {
    name: 'xeroguard_tenant_remaining',
    help: "Calls the tenant's window still allows now.",
    type: 'gauge',
    tenant: true,
    samples: (r) =>
      perTenant(r, (tenant, s) =>
        (['minute', 'day'] as const).map((window) => one(r.labels, s[window].remaining, { tenant, window })),
      ),
  },
  {
    name: 'xeroguard_tenant_in_flight',
    help: "The tenant's permits not yet released.",
    type: 'gauge',
    tenant: true,
    samples: (r) => perTenant(r, (tenant, s) => [one(r.labels, s.in_flight, { tenant })]),
  },
  {
    name: 'xeroguard_tenant_wait_seconds',
    help: 'How long acquire would make the tenant wait now.',
    type: 'gauge',
    tenant: true,
    samples: (r) => perTenant(r, (tenant, s) => [one(r.labels, s.wait_ms / 1000, { tenant })]),
  },
];

/** @internal The metric names, in order (for the test that ties them to the Python collector's). */
export const METRIC_NAMES: readonly string[] = FAMILIES.map((family) => family.name);

function defaultRegistry(): MetricsRegistry {
  try {
    return (require('prom-client') as { register: MetricsRegistry }).register;
  } catch (error) {
    throw new XeroGuardError(
      'registerMetrics needs prom-client: npm install prom-client (or pass your prom-client Registry): ' +
        String(error),
    );
  }
}

/** Reads every limiter once (and the named tenants' snapshots); shared by the metrics of one scrape. */
async function readAll(limiters: readonly [Labels, Limiter][], tenants: readonly string[]): Promise<Reading[]> {
  const readings: Reading[] = [];
  for (const [labels, limiter] of limiters) {
    let stats: Stats;
    try {
      stats = limiter.stats();
    } catch {
      continue; // closed, or a shared limiter not connected yet: nothing to report
    }
    const windows = await Promise.all(
      tenants.map((tenant) =>
        // A store that does not answer costs this scrape its tenant gauges, not every metric (the breaker among them).
        limiter.snapshot(tenant).then(
          (snapshot) => ({ tenant, snapshot: snapshot as unknown as TenantWindows }),
          () => null,
        ),
      ),
    );
    readings.push({ labels, stats, tenants: windows.filter((w) => w !== null) });
  }
  return readings;
}

/**
 * Registers xeroguard's metrics for `limiters` with `registry` (prom-client's default `register` when left out), read
 * from each limiter's `stats()` at every scrape. Several limiters in one process: pass a record of names to limiters;
 * the names become a `limiter` label. The metrics (counters end in `_total`):
 *
 * - `xeroguard_decisions_total{result, reason}`, `xeroguard_waits_started_total`, `xeroguard_waits_total{outcome}`
 *   and the histogram `xeroguard_wait_seconds` (the library's buckets: 10 ms, 100 ms, 1 s, 10 s, 65 s, 10 min);
 * - `xeroguard_responses_total{category}`, `xeroguard_rate_limited_total{problem}` (the 429s: these should stay 0);
 * - `xeroguard_store_fallbacks_total{policy}`: decisions the failure policy made while the store was out of reach;
 * - for limiters sharing their state through Redis: `xeroguard_store_operations_total`,
 *   `xeroguard_store_errors_total{kind}`, `xeroguard_breaker_open`, `xeroguard_breaker_openings_total`,
 *   `xeroguard_store_replays_pending`;
 * - with `tenants`: `xeroguard_tenant_calls{tenant, window}`, `xeroguard_tenant_remaining{tenant, window}`,
 *   `xeroguard_tenant_in_flight{tenant}`, `xeroguard_tenant_wait_seconds{tenant}`.
 */
export function registerMetrics(
  limiters: Limiter | Readonly<Record<string, Limiter>>,
  registry?: MetricsRegistry,
  options: MetricsOptions = {},
): RegisteredMetrics {
  const named: [Labels, Limiter][] =
    limiters instanceof Limiter
      ? [[{}, limiters]]
      : limiters !== null && typeof limiters === 'object'
        ? Object.entries(limiters).map(([name, limiter]) => [{ limiter: name }, limiter])
        : [];
  if (named.length === 0) throw new InvalidArgumentError('registerMetrics takes a Limiter or a record of Limiters');
  for (const [, limiter] of named) {
    if (!(limiter instanceof Limiter)) throw new InvalidArgumentError('registerMetrics takes xeroguard Limiters');
  }
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object');
  const tenants = [...(options.tenants ?? [])];
  if (tenants.some((t) => typeof t !== 'string')) throw new InvalidArgumentError('tenants must be tenant ids');
  const target = registry ?? defaultRegistry();
  if (target === null || typeof target.registerMetric !== 'function') {
    throw new InvalidArgumentError('registry must be a prom-client Registry');
  }
  const shared = named.some(([, limiter]) => limiter.shared);
  let scrape: Promise<Reading[]> | null = null;
  // A registry asks every metric of one scrape in one synchronous loop: the first reads, the others share its
  // reading, and the next scrape reads again.
  const reading = (): Promise<Reading[]> => {
    if (scrape === null) {
      scrape = readAll(named, tenants);
      queueMicrotask(() => {
        scrape = null;
      });
    }
    return scrape;
  };
  const families = FAMILIES.filter((f) => (f.store !== true || shared) && (f.tenant !== true || tenants.length > 0));
  const registered: string[] = [];
  try {
    for (const family of families) {
      const aggregator = family.aggregator ?? 'sum';
      const metric = {
        name: family.name,
        help: family.help,
        type: family.type,
        aggregator,
        async get() {
          const values = (await reading())
            .filter((r) => family.store !== true || r.stats.shared)
            .flatMap((r) => family.samples(r))
            .map(sortedLabels);
          // Its name as the registry keeps it (an OpenMetrics registry takes `_total` off a counter's).
          return { name: metric.name, help: family.help, type: family.type, values, aggregator };
        },
        reset() {
          // The library's counters are not reset from here.
        },
      };
      target.registerMetric(metric as never);
      registered.push(family.name);
    }
  } catch (error) {
    for (const name of registered) target.removeSingleMetric?.(name);
    throw error;
  }
  return Object.freeze({
    names: Object.freeze([...registered]),
    unregister(): void {
      for (const name of registered) target.removeSingleMetric?.(name);
    },
  });
}

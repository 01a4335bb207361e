// Watching a limiter: stats() (the library's counters as a frozen Stats with Python's figures), the logger's lines for
// waits, outages of the shared store and its breaker, and the prom-client metrics with the Python collector's names.
// Manual clocks: nothing here sleeps for a window.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';

import { internal, LoopbackServer, RedisServer, REPO, require, within, xg } from './helpers.mjs';

const prom = require('prom-client');
const statsModule = internal('stats');
const prometheus = internal('prometheus');
const T = 'tenant-a';
const oneAMinute = { tenantMinute: { limit: 1, windowMs: 60000 } };
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** A logger that keeps its lines as `level message`. */
function recorder() {
  const lines = [];
  const logger = {
    debug: (m) => lines.push(`debug ${m}`),
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
  };
  return { lines, logger };
}

test('stats() counts decisions by result and reason, frozen, every word present', async () => {
  const limiter = new xg.Limiter({ tenantMinute: { limit: 2, windowMs: 60000 } }, { clock: 'manual' });
  for (let i = 0; i < 3; i++) {
    const d = await limiter.acquire(T);
    if (d.granted) await limiter.release(d);
  }
  await limiter.peek(T); // not a decision
  await limiter.observe(T, 'HTTP/1.1 429 Too Many Requests\r\nX-Rate-Limit-Problem: day\r\n\r\n');
  await limiter.observe(T, 'HTTP/1.1 200 OK\r\n\r\n');
  const s = limiter.stats();
  assert.equal(s.granted, 2);
  assert.equal(s.refused.minute, 1);
  assert.equal(s.refusedTotal, 1);
  assert.deepEqual(Object.keys(s.refused).sort(), [...xg.REASONS].sort());
  assert.deepEqual(Object.keys(s.fallbacks).sort(), [...xg.FAILURE_POLICIES].sort());
  assert.deepEqual(Object.keys(s.responses).sort(), [...xg.CATEGORIES].sort());
  assert.deepEqual(Object.keys(s.rateLimited).sort(), [...xg.RATE_LIMIT_PROBLEMS].sort());
  assert.deepEqual(Object.keys(s.storeFailures).sort(), [...xg.STORE_FAILURE_KINDS].sort());
  assert.equal(s.responses.rate_limited, 1);
  assert.equal(s.responses.success, 1);
  assert.equal(s.rateLimited.day, 1);
  assert.deepEqual(s.waitBucketLeMs, [10, 100, 1000, 10000, 65000, 600000, Infinity]);
  assert.equal(s.waitBuckets.length, 7);
  assert.equal(s.shared, false);
  assert.equal(s.storeOperations, 0);
  for (const frozen of [s, s.refused, s.fallbacks, s.responses, s.waitBuckets, s.waitBucketLeMs]) {
    assert.ok(Object.isFrozen(frozen));
  }
  limiter.close();
  assert.throws(() => limiter.stats(), /the limiter is closed/);
});

test("Stats has the Python Stats' figures, camelCased, in milliseconds where Python has seconds", () => {
  const source = fs.readFileSync(path.join(REPO, 'bindings', 'python', 'src', 'xeroguard', '_stats.py'), 'utf8');
  const body = source.split('class Stats:')[1].split('@classmethod')[0];
  const python = [...body.matchAll(/^ {4}(\w+): /gm), ...body.matchAll(/^ {4}def (\w+)\(self\)/gm)].map((m) => m[1]);
  const seconds = { wait_seconds_total: 'wait_ms_total', wait_bucket_le: 'wait_bucket_le_ms' };
  const camel = (name) => (seconds[name] ?? name).replace(/_(\w)/g, (_, c) => c.toUpperCase());
  const limiter = new xg.Limiter();
  assert.deepEqual(Object.keys(limiter.stats()).sort(), python.map(camel).sort());
  limiter.close();
});

test('a wait is counted once and logged at its start and end; a guard logs to its own logger', async () => {
  const { lines, logger } = recorder();
  const limiter = new xg.Limiter(oneAMinute, { clock: 'manual', logger });
  await limiter.record(T);
  const wait = limiter.acquireWait(T, { timeoutMs: 600000 });
  await turn();
  limiter.advance(30000);
  await turn();
  limiter.advance(30000);
  assert.equal((await within(5000, wait, 'the wait')).granted, true);
  const s = limiter.stats();
  assert.equal(s.waitsStarted, 1);
  assert.equal(s.waitsGranted, 1);
  assert.equal(s.waitMsTotal, 60000);
  assert.deepEqual(s.waitBuckets, [0, 0, 0, 0, 1, 0, 0]);
  assert.equal(s.granted, 1); // the grant after the wait; the re-ask at 30 s is the wait's, not a decision
  assert.equal(s.refused.minute, 1);
  assert.deepEqual(lines, [
    `debug xeroguard: tenant ${T} waits for a permit: ${xg.refusalWords('minute', 60000)}`,
    `debug xeroguard: tenant ${T} waited ${xg.durationWords(60000)} for a permit (minute): granted`,
  ]);

  // A wait the library gives up at once (the window frees after the timeout) is logged as such.
  lines.length = 0;
  const given = await limiter.acquireWait(T, { timeoutMs: 1000 });
  assert.equal(given.granted, false);
  const zero = xg.durationWords(0);
  assert.deepEqual(lines, [`debug xeroguard: tenant ${T} waited ${zero} for a permit (minute): gave up at once`]);
  assert.equal(limiter.stats().waitsGivenUp, 1);

  // A guard's waits go to the guard's logger.
  lines.length = 0;
  const server = await new LoopbackServer().start();
  try {
    const guardLines = recorder();
    const fetchGuarded = xg.guardFetch(fetch, limiter, { prefixes: [server.url], logger: guardLines.logger });
    const response = fetchGuarded(`${server.url}/api.xro/2.0/Invoices`, { headers: { 'Xero-Tenant-Id': T } });
    for (let i = 0; i < 100 && guardLines.lines.length === 0; i++) await turn();
    limiter.advance(60000);
    assert.equal((await within(5000, response, 'the guarded call')).status, 200);
    assert.deepEqual(lines, []);
    assert.match(guardLines.lines[0], /^debug xeroguard: tenant tenant-a waits for a permit: minute limit/);
    assert.match(guardLines.lines[1], /^debug xeroguard: tenant tenant-a waited .* for a permit \(minute\): granted$/);
  } finally {
    await server.stop();
    limiter.close();
  }
});

test('waits ended by an AbortSignal or interrupt() are logged with how they ended', async () => {
  const { lines, logger } = recorder();
  const limiter = new xg.Limiter(oneAMinute, { clock: 'manual', logger });
  await limiter.record(T);
  const controller = new AbortController();
  const aborted = limiter.acquireWait(T, { signal: controller.signal });
  await turn();
  limiter.advance(1000);
  controller.abort();
  await assert.rejects(aborted, xg.AbortError);
  const interrupted = limiter.acquireWait(T);
  await turn();
  limiter.interrupt();
  await assert.rejects(interrupted, xg.LimiterInterruptedError);
  assert.deepEqual(
    lines.filter((line) => line.includes('waited')),
    [
      `debug xeroguard: tenant ${T} waited ${xg.durationWords(1000)} for a permit (minute): abandoned (AbortError)`,
      `debug xeroguard: tenant ${T} waited ${xg.durationWords(0)} for a permit (minute): interrupted`,
    ],
  );
  assert.equal(limiter.stats().waitsInterrupted, 1); // an abandoned wait never ends in the library's count
  limiter.close();
});

test("the breaker's changes are logged from the stats, once each", () => {
  const { lines, logger } = recorder();
  const watch = new statsModule.Watch();
  const reading = (breakerOpen, breakerOpenings) => ({ breakerOpen, breakerOpenings });
  watch.saw(reading(false, 0), logger);
  watch.saw(reading(true, 1), logger);
  watch.saw(reading(true, 1), logger);
  watch.saw(reading(false, 1), logger);
  watch.saw(reading(false, 3), logger);
  assert.deepEqual(lines, [
    "info xeroguard: the store's breaker is open (opened 1 times so far): the failure policy decides until it closes",
    "info xeroguard: the store's breaker is closed: the store decides again",
    "info xeroguard: the store's breaker opened 2 times since the last reading (now closed)",
  ]);
});

test('an outage is a warning once, a count while it lasts, and info when the store answers', async (t) => {
  let now = 0;
  const { lines, logger } = recorder();
  const watch = new statsModule.Watch(() => now);
  assert.equal(watch.decided('open', logger), true);
  now = 30000;
  assert.equal(watch.decided('open', logger), false);
  now = 61000;
  assert.equal(watch.decided('open', logger), false);
  now = 90000;
  assert.equal(watch.decided(null, logger), true);
  assert.equal(watch.decided(null, logger), false);
  assert.deepEqual(lines, [
    'warn xeroguard: the shared store cannot be reached: the open failure policy decides until it answers ' +
      '(logged once; a count follows)',
    `warn xeroguard: the shared store is still out of reach after ${xg.durationWords(61000)}: 3 decisions by the ` +
      'open failure policy so far',
    `info xeroguard: the shared store answers again after ${xg.durationWords(90000)}; meanwhile the open failure ` +
      'policy made 3 decisions',
  ]);
  // Without a logger the warning is a process warning; info and debug lines go nowhere.
  const warnings = [];
  const onWarning = (w) => warnings.push(w);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  const silent = new statsModule.Watch(() => 0);
  silent.decided('closed', undefined);
  silent.decided(null, undefined);
  await turn();
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0].code, 'XEROGUARD_STORE_OUTAGE');
  assert.match(warnings[0].message, /the closed failure policy decides/);
});

let redis;
after(() => redis?.stop());

test('a shared limiter logs its outage from the decisions it gets, and counts them', async () => {
  redis ??= await RedisServer.start();
  const { lines, logger } = recorder();
  const limiter = await xg.Limiter.connect(
    {},
    {
      redisUrl: redis.url,
      keyPrefix: `node-stats-${process.pid}`,
      onStoreError: 'open',
      deadlineMs: 100,
      breakerCooldownMs: 1,
      logger,
    },
  );
  try {
    assert.equal((await limiter.acquire(T)).fallback, null);
    redis.pause();
    let fallbacks = 0;
    try {
      for (let i = 0; i < 3; i++) {
        const d = await within(10000, limiter.acquire(T), 'an acquire on a stopped store');
        assert.equal(d.fallback, 'open');
        fallbacks++;
      }
    } finally {
      redis.resume();
    }
    let d;
    for (let i = 0; i < 20; i++) {
      d = await within(10000, limiter.acquire(T), 'an acquire on a resumed store');
      if (d.fallback === null) break;
      fallbacks++;
    }
    assert.equal(d.fallback, null, 'the store decides again once it answers');
    const warnings = lines.filter((line) => line.startsWith('warn '));
    assert.equal(warnings.length, 1, lines.join('\n'));
    assert.match(warnings[0], /the open failure policy decides until it answers/);
    // The end of the outage once; beside it only the breaker's changes, as the stats read then show them.
    const ends = lines.filter((line) => /answers again after/.test(line));
    assert.equal(ends.length, 1, lines.join('\n'));
    assert.match(ends[0], new RegExp(`^info .*answers again after .*the open failure policy made ${fallbacks} `));
    const others = lines.filter((line) => line !== warnings[0] && line !== ends[0] && !line.startsWith('debug '));
    assert.ok(others.every((line) => /^info .*breaker/.test(line)), lines.join('\n'));
    assert.equal(limiter.stats().fallbacks.open, fallbacks);
  } finally {
    limiter.close();
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Prometheus

test("the metrics are the Python collector's, by name, in its order", () => {
  const source = fs.readFileSync(
    path.join(REPO, 'bindings', 'python', 'src', 'xeroguard', 'integrations', 'prometheus.py'),
    'utf8',
  );
  const families = [...source.matchAll(/(counter|gauge|HistogramMetricFamily)\("(xeroguard_\w+)"/g)].map((m) =>
    m[1] === 'counter' ? `${m[2]}_total` : m[2],
  );
  assert.equal(families.length, 16);
  assert.deepEqual(prometheus.METRIC_NAMES, families);
});

test('registerMetrics exposes the stats to a prom-client registry', async () => {
  const limiter = new xg.Limiter(oneAMinute, { clock: 'manual' });
  const registry = new prom.Registry();
  const registered = xg.registerMetrics(limiter, registry);
  assert.ok(!registered.names.includes('xeroguard_breaker_open'), 'no store metrics for a limiter of this process');
  assert.ok(!registered.names.includes('xeroguard_tenant_calls'), 'no tenant metrics unless asked');
  await limiter.release(await limiter.acquire(T));
  await limiter.acquire(T);
  await limiter.acquire(''); // tenantless: the app window only
  await limiter.acquireWait(T, { timeoutMs: 1000 }); // given up at once
  await limiter.observe(T, 'HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nX-Rate-Limit-Problem: minute\r\n\r\n');
  const text = await registry.metrics();
  for (const line of [
    '# HELP xeroguard_decisions_total Permits granted and calls refused (by reason).',
    '# TYPE xeroguard_decisions_total counter',
    'xeroguard_decisions_total{reason="",result="granted"} 2',
    'xeroguard_decisions_total{reason="minute",result="refused"} 2',
    'xeroguard_decisions_total{reason="day",result="refused"} 0',
    'xeroguard_waits_started_total 1',
    'xeroguard_waits_total{outcome="given_up"} 1',
    '# TYPE xeroguard_wait_seconds histogram',
    'xeroguard_wait_seconds_bucket{le="0.01"} 1',
    'xeroguard_wait_seconds_bucket{le="+Inf"} 1',
    'xeroguard_wait_seconds_sum 0',
    'xeroguard_wait_seconds_count 1',
    'xeroguard_responses_total{category="rate_limited"} 1',
    'xeroguard_rate_limited_total{problem="minute"} 1',
    'xeroguard_store_fallbacks_total{policy="open"} 0',
  ]) {
    assert.ok(text.split('\n').includes(line), `${line}\nnot in\n${text}`);
  }
  registered.unregister();
  assert.equal(await registry.metrics(), '\n');
  limiter.close();
});

test('named limiters get a limiter label, named tenants their gauges, and one scrape reads each limiter once', async (t) => {
  const a = new xg.Limiter(oneAMinute, { clock: 'manual' });
  const b = new xg.Limiter(oneAMinute, { clock: 'manual' });
  await a.acquire(T);
  let reads = 0;
  const original = a.stats.bind(a);
  a.stats = () => {
    reads++;
    return original();
  };
  const registry = new prom.Registry(prom.Registry.OPENMETRICS_CONTENT_TYPE);
  const registered = xg.registerMetrics({ sync: a, webhooks: b }, registry, { tenants: [T] });
  t.after(() => {
    registered.unregister();
    a.close();
    b.close();
  });
  const text = await registry.metrics();
  assert.equal(reads, 1);
  const lines = text.split('\n');
  for (const line of [
    'xeroguard_decisions_total{limiter="sync",reason="",result="granted"} 1',
    'xeroguard_decisions_total{limiter="webhooks",reason="",result="granted"} 0',
    '# TYPE xeroguard_decisions counter',
    'xeroguard_tenant_calls{limiter="sync",tenant="tenant-a",window="minute"} 1',
    'xeroguard_tenant_remaining{limiter="sync",tenant="tenant-a",window="minute"} 0',
    'xeroguard_tenant_in_flight{limiter="sync",tenant="tenant-a"} 1',
    'xeroguard_tenant_wait_seconds{limiter="webhooks",tenant="tenant-a"} 0',
  ]) {
    assert.ok(lines.includes(line), `${line}\nnot in\n${text}`);
  }
  // A closed limiter is left out of the scrape; the others are still read.
  b.close();
  assert.ok(!(await registry.metrics()).includes('limiter="webhooks"'));
});

test('a shared limiter adds the store metrics; bad arguments are refused', async () => {
  redis ??= await RedisServer.start();
  const limiter = await xg.Limiter.connect({}, { redisUrl: redis.url, keyPrefix: `node-metrics-${process.pid}` });
  const registry = new prom.Registry();
  const registered = xg.registerMetrics(limiter, registry);
  try {
    assert.ok(registered.names.includes('xeroguard_breaker_open'));
    assert.ok(registered.names.includes('xeroguard_store_errors_total'));
    // Their samples come with the store's figures (stats().shared: the library reports them).
    const lines = (await registry.metrics()).split('\n');
    const storeLines = ['xeroguard_breaker_open 0', 'xeroguard_store_errors_total{kind="timeout"} 0'];
    for (const line of storeLines) assert.equal(lines.includes(line), limiter.stats().shared, line);
    assert.throws(() => xg.registerMetrics(limiter, registry), /already been registered/);
    assert.ok((await registry.metrics()).includes('# TYPE xeroguard_breaker_open gauge'), 'a failed one took none');
  } finally {
    registered.unregister();
    limiter.close();
  }
  assert.throws(() => xg.registerMetrics({}, registry), xg.InvalidArgumentError);
  assert.throws(() => xg.registerMetrics({ a: {} }, registry), xg.InvalidArgumentError);
  const local = new xg.Limiter();
  assert.throws(() => xg.registerMetrics(local, {}), /prom-client Registry/);
  local.close();
});

test("without a registry, prom-client's default one", async () => {
  const limiter = new xg.Limiter();
  const registered = xg.registerMetrics(limiter);
  try {
    assert.ok((await prom.register.metrics()).includes('xeroguard_decisions_total{reason="",result="granted"} 0'));
  } finally {
    registered.unregister();
    limiter.close();
  }
  assert.ok(!(await prom.register.metrics()).includes('xeroguard_'));
});

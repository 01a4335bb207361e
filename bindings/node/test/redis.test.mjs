// Limiters shared through Redis (a redis-server of the test's own on a unix socket, stopped by pid): operations run
// off the event loop, windows are shared between two Node processes and a Python one, a store that cannot be reached
// is StoreUnavailableError, and a guard whose store stalls while the request is at the server still hands the
// caller the response the server gave.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { internal, LoopbackServer, PACKAGE, pythonVenv, RedisServer, require, run, within, xg } from './helpers.mjs';

const axios = require('axios');
const pool = internal('pool');
const T = 'tenant-shared';
let redis;

before(async () => {
  redis = await RedisServer.start();
});
after(() => redis?.stop());

let prefixes = 0;
const prefix = () => `node-test-${process.pid}-${++prefixes}`;

test('a shared limiter decides through the store, off the event loop', async () => {
  const limiter = await xg.Limiter.connect(
    { tenantMinute: { limit: 3, windowMs: 60000 } },
    { redisUrl: redis.url, keyPrefix: prefix() },
  );
  assert.equal(limiter.shared, true);
  assert.ok(pool.poolThreads() >= 1, 'a worker thread made the store call');
  const granted = [];
  for (let i = 0; i < 4; i++) granted.push(await limiter.acquire(T));
  assert.deepEqual(
    granted.map((d) => d.granted),
    [true, true, true, false],
  );
  assert.equal(granted[3].reason, 'minute');
  assert.ok(granted[0].permit > 0n);
  await limiter.release(granted[0]);
  const snap = await limiter.snapshot(T);
  assert.equal(snap.minute.count, 3);
  assert.equal(snap.in_flight, 2);
  // While the store is stopped, an operation waits on a worker thread: the event loop keeps turning.
  redis.pause();
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 5);
  try {
    const pending = limiter.acquire('tenant-other').catch((e) => e);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(ticks >= 5, `the event loop turned ${ticks} times while the store was stopped`);
    const outcome = await within(10000, pending, 'an acquire on a stopped store');
    // The default failure policy (closed) refuses, flagged.
    assert.deepEqual([outcome.granted, outcome.fallback], [false, 'closed'], String(outcome));
  } finally {
    clearInterval(ticker);
    redis.resume();
  }
  limiter.close();
});

test('limits that differ from the stored ones are LimitsDifferError unless adopted', async () => {
  const options = { redisUrl: redis.url, keyPrefix: prefix(), clock: 'manual' };
  const ten = { tenantMinute: { limit: 10, windowMs: 60000, marginMs: 0 } };
  const five = { tenantMinute: { limit: 5, windowMs: 60000, marginMs: 0 } };
  const first = await xg.Limiter.connect(ten, options);
  await assert.rejects(
    xg.Limiter.connect(five, options),
    (e) =>
      e instanceof xg.LimitsDifferError &&
      e.status === 18 &&
      /given 5 per 60000 ms.*stored 10 per 60000 ms/.test(e.message),
  );
  const adopted = await xg.Limiter.connect(five, { ...options, adoptStoredLimits: true });
  assert.equal(adopted.limits.tenantMinute.limit, 10, 'after adopting, limits reports the stored ones');
  assert.equal(first.limits.tenantMinute.limit, 10);
  assert.throws(
    () => new xg.Limiter(five, { ...options, adoptStoredLimits: true, replaceLimits: true }),
    (e) => e instanceof xg.InvalidArgumentError && /exclude each other/.test(e.message),
  );
  assert.throws(() => new xg.Limiter(five, { ...options, adoptStoredLimits: 1 }), xg.InvalidArgumentError);
  adopted.close();
  first.close();
});

test('a store that cannot be reached is StoreUnavailableError, from ready and from every operation', async () => {
  const limiter = new xg.Limiter(undefined, { redisUrl: 'redis+unix:///nonexistent/redis.sock', keyPrefix: prefix() });
  await assert.rejects(
    limiter.ready,
    (e) => e instanceof xg.StoreUnavailableError && e.status === 13 && /^xg_limiter_new_redis: /.test(e.message),
  );
  await assert.rejects(limiter.acquire(T), xg.StoreUnavailableError);
  await assert.rejects(
    xg.Limiter.connect(undefined, { redisUrl: 'redis+unix:///nonexistent/redis.sock', keyPrefix: 'x' }),
    xg.StoreUnavailableError,
  );
  limiter.close();
});

test('failure policies: open grants flagged while the store is stopped', async () => {
  const limiter = await xg.Limiter.connect(undefined, {
    redisUrl: redis.url,
    keyPrefix: prefix(),
    onStoreError: 'open',
    deadlineMs: 100,
  });
  redis.pause();
  try {
    const d = await within(10000, limiter.acquire(T), 'an acquire on a stopped store');
    assert.equal(d.granted, true);
    assert.equal(d.fallback, 'open');
  } finally {
    redis.resume();
  }
  limiter.close();
});

const NODE_WORKER = `
const xg = require(process.argv[1]);
(async () => {
  const limiter = await xg.Limiter.connect({ tenantMinute: { limit: 6, windowMs: 60000 } },
    { redisUrl: process.argv[2], keyPrefix: process.argv[3] });
  const wanted = Number(process.argv[4]);
  const out = [];
  for (let i = 0; i < wanted; i++) {
    const d = await limiter.acquire(process.argv[5]);
    out.push(d.granted ? 'granted' : d.reason);
    if (d.granted) await limiter.release(d);
  }
  console.log(JSON.stringify(out));
  limiter.close();
})().catch((e) => { console.error(e); process.exit(1); });
`;

const PYTHON_WORKER = `
import json, sys, xeroguard
limits = xeroguard.Limits(tenant_minute=xeroguard.WindowLimit(6, window_ms=60000))
with xeroguard.Limiter(limits, redis_url=sys.argv[1], key_prefix=sys.argv[2]) as limiter:
    out = []
    for _ in range(int(sys.argv[3])):
        d = limiter.acquire(sys.argv[4])
        out.append("granted" if d.granted else str(d.reason))
        if d.granted:
            limiter.release(d)
    print(json.dumps(out))
`;

test('two Node processes and a Python one share one window', async () => {
  const p = prefix();
  const node = (n) => run(process.execPath, ['-e', NODE_WORKER, PACKAGE, redis.url, p, String(n), T]).then(JSON.parse);
  const python = (n) => run(pythonVenv(), ['-c', PYTHON_WORKER, redis.url, p, String(n), T]).then(JSON.parse);
  // One after another, so the split is known: 6 calls a minute for the tenant, whoever makes them.
  assert.deepEqual(await node(2), ['granted', 'granted']);
  assert.deepEqual(await python(3), ['granted', 'granted', 'granted']);
  assert.deepEqual(await node(3), ['granted', 'minute', 'minute']);
  assert.deepEqual(await python(1), ['minute']);
  // And at once: the six slots of a fresh tenant go to the three processes together, never seven.
  const fresh = `${T}-2`;
  const run3 = await Promise.all([
    run(process.execPath, ['-e', NODE_WORKER, PACKAGE, redis.url, p, '4', fresh]).then(JSON.parse),
    run(process.execPath, ['-e', NODE_WORKER, PACKAGE, redis.url, p, '4', fresh]).then(JSON.parse),
    run(pythonVenv(), ['-c', PYTHON_WORKER, redis.url, p, '4', fresh]).then(JSON.parse),
  ]);
  assert.equal(run3.flat().filter((x) => x === 'granted').length, 6, JSON.stringify(run3));
  // A reader with other limits adopts the stored ones (without adoptStoredLimits it would be LimitsDifferError).
  const limiter = await xg.Limiter.connect(undefined, { redisUrl: redis.url, keyPrefix: p, adoptStoredLimits: true });
  assert.equal((await limiter.snapshot(fresh)).minute.count, 6);
  assert.equal((await limiter.snapshot(T)).minute.limit, 6, "the stored limits are the first process's");
  assert.equal(limiter.limits.tenantMinute.limit, 6);
  limiter.close();
});

for (const [name, make] of [
  [
    'guardFetch',
    (limiter, server, hooks) => (init) =>
      xg
        .guardFetch(fetch, limiter, { prefixes: [server.url], ...hooks })(`${server.url}/api.xro/2.0/Invoices`, init)
        .then(async (r) => ({ status: r.status, body: await r.text() })),
  ],
  [
    'guardAxios',
    (limiter, server, hooks) => {
      const instance = xg.guardAxios(axios.create(), limiter, { axios, prefixes: [server.url], ...hooks });
      return (init) =>
        instance
          .request({
            url: `${server.url}/api.xro/2.0/Invoices`,
            method: init.method,
            headers: init.headers,
            data: init.body,
          })
          .then((r) => ({ status: r.status, body: JSON.stringify(r.data) }));
    },
  ],
]) {
  test(`${name}: a write the server answered reaches the caller though the store stalls meanwhile`, async () => {
    const server = await new LoopbackServer().start();
    const limiter = await xg.Limiter.connect(undefined, { redisUrl: redis.url, keyPrefix: prefix(), deadlineMs: 100 });
    const storeErrors = [];
    const created = JSON.stringify({ Invoices: [{ InvoiceID: 'made-once' }] });
    // The store stops while the request is at the server: observe and release after the response cannot reach it.
    server.respond({ status: 200, body: created, before: () => redis.pause() });
    try {
      const call = make(limiter, server, { onStoreError: (e) => storeErrors.push(e) });
      const response = await within(
        20000,
        call({
          method: 'POST',
          headers: { 'Xero-Tenant-Id': T, 'Content-Type': 'application/json' },
          body: JSON.stringify({ Invoices: [{}] }),
        }),
        'the guarded POST',
      );
      assert.equal(response.status, 200);
      assert.equal(response.body, created);
    } finally {
      redis.resume();
      await server.stop();
    }
    assert.equal(server.log.length, 1, 'sent once');
    assert.ok(storeErrors.length >= 1, 'the failed store calls were reported');
    for (const e of storeErrors) {
      assert.ok(['observe', 'release'].includes(e.operation));
      assert.ok(e.error instanceof xg.XeroGuardError, String(e.error));
      assert.equal(e.method, 'POST');
      assert.equal(e.tenant, T);
    }
    limiter.close();
  });
}

test('without an onStoreError hook, a store error after the response is a warning, not an error', async () => {
  const server = await new LoopbackServer().start();
  const limiter = await xg.Limiter.connect(undefined, { redisUrl: redis.url, keyPrefix: prefix(), deadlineMs: 100 });
  const warnings = [];
  const listener = (w) => warnings.push(w);
  process.on('warning', listener);
  server.respond({ status: 200, before: () => redis.pause() });
  try {
    const response = await xg.guardFetch(fetch, limiter, { prefixes: [server.url] })(
      `${server.url}/api.xro/2.0/Invoices`,
      { method: 'PUT', headers: { 'Xero-Tenant-Id': T } },
    );
    assert.equal(response.status, 200);
  } finally {
    redis.resume();
    await server.stop();
  }
  await new Promise((resolve) => setImmediate(resolve));
  process.off('warning', listener);
  assert.ok(
    warnings.some((w) => w.code === 'XEROGUARD_STORE_ERROR' && /failed after the response/.test(w.message)),
    warnings.map(String).join('\n'),
  );
  limiter.close();
});

test('an interrupted wait on a shared limiter ends at once', async () => {
  const limiter = await xg.Limiter.connect(
    { tenantMinute: { limit: 1, windowMs: 60000 } },
    { redisUrl: redis.url, keyPrefix: prefix() },
  );
  await limiter.record(T);
  const wait = limiter.acquireWait(T);
  await new Promise((resolve) => setTimeout(resolve, 50));
  limiter.interrupt();
  await within(5000, assert.rejects(wait, xg.LimiterInterruptedError), 'the interrupted wait');
  limiter.close();
});

test('inspect reads a prefix and writes nothing', async () => {
  const shared = prefix();
  const writer = await xg.Limiter.connect(
    { tenantMinute: { limit: 5, windowMs: 60000 } },
    { redisUrl: redis.url, keyPrefix: shared },
  );
  await writer.acquire(T);
  const reader = await xg.Limiter.inspect(redis.url, shared, { deadlineMs: 500 });
  assert.equal(reader.shared, true);
  assert.equal(reader.limits.tenantMinute.limit, 5, 'the stored limits');
  assert.equal((await reader.snapshot(T)).minute.count, 1);
  assert.equal((await reader.peek(T)).granted, true);
  for (const write of [() => reader.acquire(T), () => reader.record(T), () => reader.setTenantLimits(T, null)]) {
    await assert.rejects(write(), (e) => e instanceof xg.InvalidArgumentError && /only reads/.test(e.message));
  }
  assert.equal((await writer.snapshot(T)).minute.count, 1, 'nothing counted by the reader');
  reader.close();
  writer.close();
  const before = redis.keys();
  const empty = await xg.Limiter.inspect(redis.url, prefix());
  await assert.rejects(empty.snapshot(T), xg.NoStoredLimitsError);
  empty.close();
  assert.deepEqual(redis.keys(), before, 'an inspected empty prefix stays empty');
  await assert.rejects(xg.Limiter.inspect(redis.url, shared, { workers: 2 }), xg.InvalidArgumentError);
});

test('under open a limiter is made while the store cannot be reached; under closed it is not', async () => {
  const shared = prefix();
  const down = `redis+unix://${redis.socket}.down`;
  const given = { tenantMinute: { limit: 5, windowMs: 60000 } };
  // A socket nothing listens on: the store cannot be reached, and under 'open' the limiter is made all the same.
  const limiter = await xg.Limiter.connect(given, {
    redisUrl: down,
    keyPrefix: shared,
    onStoreError: 'open',
    adoptStoredLimits: true,
    deadlineMs: 200,
  });
  assert.equal(limiter.limits.tenantMinute.limit, 5, 'its own limits until the store answers');
  const decision = await limiter.acquire(T);
  assert.deepEqual([decision.granted, decision.fallback], [true, 'open']);
  limiter.close();
  await assert.rejects(
    xg.Limiter.connect(given, { redisUrl: down, keyPrefix: shared, onStoreError: 'closed', deadlineMs: 200 }),
    xg.StoreUnavailableError,
  );
});

// The limiter of this process through the binding, on a manual clock: decisions, permits, reservations, feedback,
// snapshots, tenant limits, argument checks before anything crosses, and the handle's lifetime.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { xg } from './helpers.mjs';

const T = 'tenant-a';
const small = { tenantMinute: { limit: 2, windowMs: 60000 }, tenantDay: { limit: 100, windowMs: 86400000 } };

test('a window admits exactly its limit, then says how long and why', async () => {
  const limiter = new xg.Limiter(small, { clock: 'manual' });
  const first = await limiter.acquire(T);
  assert.deepEqual(Object.keys(first), ['granted', 'permit', 'waitMs', 'reason', 'fallback']);
  assert.equal(first.granted, true);
  assert.equal(typeof first.permit, 'bigint');
  assert.equal(first.fallback, null);
  assert.equal((await limiter.acquire(T)).granted, true);
  const refused = await limiter.acquire(T);
  assert.deepEqual(refused, { granted: false, permit: 0n, waitMs: 60000, reason: 'minute', fallback: null });
  assert.deepEqual(await limiter.peek(T), refused);
  limiter.advance(59999);
  assert.equal((await limiter.acquire(T)).waitMs, 1);
  limiter.advance(1);
  assert.equal((await limiter.acquire(T)).granted, true);
  assert.equal(limiter.now(), 60000);
  limiter.close();
});

test('permits are released once; an unknown one is an UnknownPermitError', async () => {
  const limiter = new xg.Limiter({ tenantConcurrency: 1 }, { clock: 'manual' });
  const held = await limiter.acquire(T);
  assert.equal((await limiter.acquire(T)).reason, 'concurrency');
  await limiter.release(held);
  await assert.rejects(
    limiter.release(held),
    (e) => e instanceof xg.UnknownPermitError && e.status === 7 && /^xg_limiter_release: /.test(e.message),
  );
  const again = await limiter.acquire(T);
  await limiter.release(again.permit);
  await limiter.release(0n); // tenantless permits hold nothing
  const tenantless = await limiter.acquire(xg.TENANTLESS);
  assert.equal(tenantless.granted, true);
  assert.equal(tenantless.permit, 0n);
  limiter.close();
});

test('reserve books the next free slot; cancel frees it', async () => {
  const limiter = new xg.Limiter(small, { clock: 'manual' });
  await limiter.record(T);
  await limiter.record(T);
  const r = await limiter.reserve(T);
  assert.equal(typeof r.id, 'bigint');
  assert.equal(r.atMs, 60000);
  assert.equal(r.waitMs, 60000);
  await limiter.cancel(r);
  await assert.rejects(limiter.cancel(r.id), xg.UnknownReservationError);
  limiter.close();
});

test("observe takes the server's feedback: a 429 blocks the tenant", async () => {
  const limiter = new xg.Limiter(undefined, { clock: 'manual' });
  await limiter.observe(T, xg.classify(429, { 'X-Rate-Limit-Problem': 'minute', 'Retry-After': '30' }));
  const refused = await limiter.acquire(T);
  assert.equal(refused.reason, 'retry_after');
  assert.equal(refused.waitMs, 30000);
  await limiter.observe('tenant-b', 'HTTP/1.1 200 OK\r\nX-MinLimit-Remaining: 50\r\n\r\n');
  const snap = await limiter.snapshot('tenant-b');
  assert.equal(snap.minute.count, 10); // the calls the server saw and this limiter did not
  await limiter.observe('tenant-c', Buffer.from('HTTP/1.1 503 Service Unavailable\r\n\r\nThe Organisation is offline'));
  assert.equal((await limiter.acquire('tenant-c')).reason, 'organisation_offline');
  await assert.rejects(limiter.observe(T, { status: 429 }), xg.InvalidArgumentError);
  limiter.close();
});

test("a tenant's own limits apply until cleared; its calls are kept", async () => {
  const limiter = new xg.Limiter(undefined, { clock: 'manual' });
  await limiter.setTenantLimits(T, { minuteLimit: 1, dayLimit: 10, concurrency: 5 });
  assert.equal((await limiter.acquire(T)).granted, true);
  assert.equal((await limiter.acquire(T)).reason, 'minute');
  await limiter.setTenantLimits(T, null);
  assert.equal((await limiter.acquire(T)).granted, true);
  await assert.rejects(
    limiter.setTenantLimits(xg.TENANTLESS, { minuteLimit: 1, dayLimit: 1, concurrency: 1 }),
    xg.InvalidArgumentError,
  );
  limiter.close();
});

test("the limits given, the library's defaults for the rest", () => {
  const d = xg.defaultLimits();
  assert.deepEqual(d.tenantMinute, { limit: 60, windowMs: 60000, marginMs: 500 });
  assert.equal(d.tenantConcurrency, 5);
  assert.deepEqual(xg.exactLimits().tenantMinute, { limit: 60, windowMs: 60000, marginMs: 0 });
  const limiter = new xg.Limiter({ tenantMinute: { limit: 6, windowMs: 1000 } });
  assert.deepEqual(limiter.limits.tenantMinute, { limit: 6, windowMs: 1000, marginMs: 0 });
  assert.deepEqual(limiter.limits.tenantDay, d.tenantDay);
  assert.ok(Object.isFrozen(limiter.limits));
  limiter.close();
});

test('bad input is refused before it crosses', async () => {
  const limiter = new xg.Limiter(undefined, { clock: 'manual' });
  for (const tenant of [undefined, null, 42, {}]) {
    await assert.rejects(limiter.acquire(tenant), xg.InvalidArgumentError, String(tenant));
  }
  await assert.rejects(limiter.acquire(undefined), /TENANTLESS/);
  await assert.rejects(limiter.acquire('x'.repeat(257)), xg.TooLargeError);
  await assert.rejects(limiter.acquire('\udc00'), /unpaired surrogate/);
  for (const ms of [-1, 1.5, Number.NaN, '5', 2 ** 60])
    assert.throws(() => limiter.advance(ms), xg.InvalidArgumentError, String(ms));
  await assert.rejects(limiter.release(-1), xg.InvalidArgumentError);
  await assert.rejects(limiter.release(1.5), xg.InvalidArgumentError);
  await assert.rejects(limiter.acquireWait(T, { timeoutMs: -5 }), xg.InvalidArgumentError);
  await assert.rejects(
    limiter.setTenantLimits(T, { minuteLimit: -1, dayLimit: 1, concurrency: 1 }),
    xg.InvalidArgumentError,
  );
  for (const limits of [
    { tenantMinute: { limit: -1, windowMs: 1 } },
    { tenantConcurrency: 2 ** 32 },
    { tenantMinuet: {} },
  ]) {
    assert.throws(() => new xg.Limiter(limits), xg.InvalidArgumentError, JSON.stringify(limits));
  }
  // A limit the library refuses is its InvalidArgumentError, with its message.
  assert.throws(
    () => new xg.Limiter({ tenantMinute: { limit: 5, windowMs: 0 } }),
    (e) => e instanceof xg.InvalidArgumentError && /^xg_limiter_new: /.test(e.message),
  );
  assert.throws(() => new xg.Limiter(undefined, { clock: 'sundial' }), xg.InvalidArgumentError);
  assert.throws(() => new xg.Limiter(undefined, { keyPrefix: 'app' }), /only apply with redisUrl/);
  assert.throws(() => new xg.Limiter(undefined, { redisUrl: 'redis://127.0.0.1:1' }), /keyPrefix is required/);
  assert.throws(
    () => new xg.Limiter(undefined, { redisUrl: 'redis://127.0.0.1:1', keyPrefix: 'a', onStoreError: 'maybe' }),
    xg.InvalidArgumentError,
  );
  assert.throws(
    () => new xg.Limiter(undefined, { redisUrl: 'redis://127.0.0.1:1', keyPrefix: 'a', deadlineMs: 20000 }),
    xg.InvalidArgumentError,
  );
  assert.throws(
    () => new xg.Limiter(undefined, { redisUrl: 'redis://127.0.0.1:1', keyPrefix: 'p'.repeat(129) }),
    xg.InvalidArgumentError,
  );
  assert.throws(() => new xg.Limiter(undefined, { colour: 'red' }), /unknown limiter option/);
  limiter.close();
});

test('the manual clock is the only one that moves by hand', () => {
  const limiter = new xg.Limiter();
  assert.throws(
    () => limiter.advance(5),
    (e) => e instanceof xg.WrongClockError && e.statusName === 'wrong_clock',
  );
  const manual = new xg.Limiter(undefined, { clock: 'manual' });
  manual.setNow(500);
  assert.throws(() => manual.setNow(400), xg.InvalidArgumentError);
  assert.equal(manual.now(), 500);
  limiter.close();
  manual.close();
});

test('close frees the handle once; later calls are refused', async () => {
  const limiter = new xg.Limiter(undefined, { clock: 'manual' });
  assert.equal(limiter.closed, false);
  limiter.close();
  limiter.close();
  assert.equal(limiter.closed, true);
  await assert.rejects(limiter.acquire(T), /the limiter is closed/);
  assert.throws(() => limiter.now(), /the limiter is closed/);
  assert.equal(String(limiter), 'Limiter(clock=manual, closed)');
});

test('Symbol.dispose and Symbol.asyncDispose close it where the runtime has them', async () => {
  if (typeof Symbol.dispose === 'symbol') {
    const limiter = new xg.Limiter();
    limiter[Symbol.dispose]();
    assert.equal(limiter.closed, true);
  }
  if (typeof Symbol.asyncDispose === 'symbol') {
    const limiter = new xg.Limiter();
    await limiter[Symbol.asyncDispose]();
    assert.equal(limiter.closed, true);
  }
  assert.equal(
    typeof xg.Limiter.prototype[Symbol.dispose],
    typeof Symbol.dispose === 'symbol' ? 'function' : 'undefined',
  );
});

test('withPermit releases the permit however the work ends', async () => {
  const limiter = new xg.Limiter({ tenantConcurrency: 1 }, { clock: 'manual' });
  assert.equal(await limiter.withPermit(T, (d) => (d.granted ? 'done' : 'no')), 'done');
  await assert.rejects(
    limiter.withPermit(T, () => {
      throw new Error('work failed');
    }),
    /work failed/,
  );
  assert.equal((await limiter.snapshot(T)).in_flight, 0);
  const day = new xg.Limiter({ tenantDay: { limit: 1, windowMs: 86400000 } }, { clock: 'manual' });
  await day.record(T);
  await assert.rejects(
    day.withPermit(T, () => 'never', { timeoutMs: 1000 }),
    (e) =>
      e instanceof xg.PermitTimeoutError &&
      e.reason === 'day' &&
      e.timeoutMs === 1000 &&
      e.message === "no permit for tenant 'tenant-a' within 1 s: day limit: next call in 24 h",
  );
  limiter.close();
  day.close();
});

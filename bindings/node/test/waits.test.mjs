// Waits: the binding loops the library's step and sleeps exactly its sleep_ms (timers mocked: nothing here sleeps),
// wakes when this process frees capacity, and ends at once on an AbortSignal or interrupt().

import assert from 'node:assert/strict';
import { mock, test } from 'node:test';

import { internal, within, xg } from './helpers.mjs';

const ops = internal('ops');
const T = 'tenant-a';
const oneAMinute = { tenantMinute: { limit: 1, windowMs: 60000 } };

/** Records every step the limiter asks the library for (the library answers; this only watches). */
function watchSteps(t) {
  const original = ops.OPS.step;
  const steps = [];
  ops.OPS.step = (...args) => {
    const result = original(...args);
    steps.push(result.ok ? result.value : result);
    return result;
  };
  t.after(() => {
    ops.OPS.step = original;
  });
  return steps;
}

const settled = (promise) => {
  const state = { done: false };
  promise.then(
    () => (state.done = true),
    () => (state.done = true),
  );
  return state;
};
const turn = () => new Promise((resolve) => setImmediate(resolve));

test('a wait sleeps exactly what the library says, then asks again', async (t) => {
  const steps = watchSteps(t);
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const limiter = new xg.Limiter(oneAMinute, { clock: 'manual' });
  await limiter.record(T);
  const wait = limiter.acquireWait(T, { timeoutMs: 600000 });
  const state = settled(wait);
  await turn();
  assert.equal(steps.length, 1);
  assert.equal(steps[0].outcome, 2); // ask again
  const sleepMs = steps[0].sleepMs;
  assert.ok(sleepMs > 0, `the library asked to sleep ${sleepMs} ms`);
  mock.timers.tick(sleepMs - 1);
  await turn();
  assert.equal(steps.length, 1, "asked again before the library's sleep_ms had passed");
  mock.timers.tick(1);
  await turn();
  assert.equal(steps.length, 2, "asked again once the library's sleep_ms had passed");
  assert.equal(state.done, false); // the manual clock has not moved: still refused
  limiter.setNow(60000); // the window frees, and moving the clock wakes the wait
  await turn();
  assert.equal(state.done, true);
  const granted = await wait;
  assert.equal(granted.granted, true);
  limiter.close();
});

test('a wait the library gives up returns the last refusal at once', async () => {
  const limiter = new xg.Limiter({ tenantDay: { limit: 1, windowMs: 86400000 } }, { clock: 'manual' });
  await limiter.record(T);
  const refused = await within(5000, limiter.acquireWait(T, { timeoutMs: 60000 }));
  assert.deepEqual(refused, { granted: false, permit: 0n, waitMs: 86400000, reason: 'day', fallback: null });
  limiter.close();
});

test('an AbortSignal ends a wait at once, with an AbortError carrying its reason', async () => {
  const limiter = new xg.Limiter(oneAMinute, { clock: 'manual' });
  await limiter.record(T);
  const controller = new AbortController();
  const wait = limiter.acquireWait(T, { signal: controller.signal });
  await turn(); // the wait is asleep: the library asked for up to a minute
  controller.abort(new Error('user left'));
  await within(
    2000,
    assert.rejects(
      wait,
      (e) =>
        e.name === 'AbortError' &&
        e instanceof xg.AbortError &&
        e.code === 'ABORT_ERR' &&
        e.cause.message === 'user left',
    ),
    'the aborted wait',
  );
  await assert.rejects(limiter.acquireWait(T, { signal: AbortSignal.abort() }), { name: 'AbortError' });
  assert.equal((await limiter.snapshot(T)).in_flight, 0);
  limiter.close();
});

test('interrupt ends every wait, now and later, and nothing else', async () => {
  const limiter = new xg.Limiter(oneAMinute, { clock: 'manual' });
  await limiter.record(T);
  const waits = [limiter.acquireWait(T), limiter.acquireWait(T, { timeoutMs: 120000 })];
  await turn();
  limiter.interrupt();
  for (const wait of waits) {
    await within(
      2000,
      assert.rejects(wait, (e) => e instanceof xg.LimiterInterruptedError && e.status === 11),
      'an interrupted wait',
    );
  }
  await assert.rejects(limiter.acquireWait('tenant-b'), xg.LimiterInterruptedError);
  assert.equal((await limiter.acquire('tenant-b')).granted, true); // other calls keep working
  limiter.close();
});

test('a release in this process wakes a wait for a concurrency slot', async () => {
  const limiter = new xg.Limiter({ tenantConcurrency: 1, permitTimeoutMs: 600000 }, { clock: 'manual' });
  const held = await limiter.acquire(T);
  const refusals = [];
  const wait = limiter.wait(Buffer.from(T), 600000, undefined, (d) => refusals.push(d));
  await turn();
  assert.equal(refusals.length, 1);
  assert.equal(refusals[0].reason, 'concurrency');
  await limiter.release(held);
  const granted = await within(5000, wait, 'the woken wait');
  assert.equal(granted.granted, true);
  limiter.close();
});

test('closing a limiter ends its waits', async () => {
  const limiter = new xg.Limiter(oneAMinute, { clock: 'manual' });
  await limiter.record(T);
  const wait = limiter.acquireWait(T);
  await turn();
  limiter.close();
  await within(2000, assert.rejects(wait, /the limiter is closed/), 'the wait of a closed limiter');
});

test("the steps of one wait carry the library's wait state: it counts the wait once", async (t) => {
  const native = internal('native');
  const original = ops.OPS.step;
  let handle = null;
  let steps = 0;
  ops.OPS.step = (h, ...rest) => {
    handle = h;
    steps++;
    return original(h, ...rest);
  };
  t.after(() => {
    ops.OPS.step = original;
  });
  const limiter = new xg.Limiter(oneAMinute, { clock: 'manual' });
  await limiter.record(T);
  const wait = limiter.acquireWait(T, { timeoutMs: 600000 });
  await turn();
  limiter.advance(30000); // wakes the wait: a second step, still refused
  await turn();
  limiter.advance(30000); // the window frees: the third step is granted
  assert.equal((await within(5000, wait, 'the wait')).granted, true);
  assert.equal(steps, 3);
  const S = native.offsets('xg_stats');
  const stats = Buffer.alloc(native.sizeOf('xg_stats'));
  stats.writeUInt32LE(stats.length, 0);
  assert.equal(native.fn.xg_limiter_stats(handle, stats), 0);
  assert.equal(stats.readBigUInt64LE(S.waits_started), 1n);
  assert.equal(stats.readBigUInt64LE(S.waits_granted), 1n);
  assert.equal(stats.readBigUInt64LE(S.wait_ms_total), 60000n);
  limiter.close();
});

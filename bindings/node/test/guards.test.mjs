// The guards (guardFetch, guardAxios) against a scripted loopback server (bindings/python/tests/test_resend.py's
// cases: resends that never duplicate a write, keys, hooks, the body rule) and the local Xero-like server (429s).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { closedPort, LoopbackServer, require, within, XeroServer, xg } from './helpers.mjs';

const axios = require('axios');

const T = 'tenant-a';
const INVOICES = '/api.xro/2.0/Invoices';
const NOW = { 'Retry-After': '0' }; // a retryable answer's wait stays 0; the backoff below is ~1 ms
const POLICY = { maxRetries: 3, baseMs: 1, maxBackoffMs: 5, jitterMs: 0, maxWaitMs: 5000 };
const BODY = JSON.stringify({ Invoices: [] });

function headersFor(key, tenant = T) {
  const headers = { 'Xero-Tenant-Id': tenant, 'Content-Type': 'application/json', Authorization: 'Bearer test' };
  if (key !== undefined) headers['Idempotency-Key'] = key;
  return headers;
}

/** Sends one call through guardFetch; answers the status, or throws what fetch threw. */
const fetchDriver = {
  name: 'guardFetch',
  guard(limiter, server, options) {
    return xg.guardFetch(fetch, limiter, { retries: POLICY, prefixes: [server.url], ...options });
  },
  async send(guarded, server, method, { key, url, signal, tenant } = {}) {
    const response = await guarded(url ?? server.url + INVOICES, {
      method,
      headers: headersFor(key, tenant),
      body: method === 'GET' ? undefined : BODY,
      signal,
    });
    await response.arrayBuffer();
    return response.status;
  },
  isResetError: (e) => e instanceof TypeError && e.message === 'fetch failed',
  isAbortError: (e) => e.name === 'AbortError',
};

/** Sends one call through a guarded axios instance (its adapter resolved through the axios module). */
const axiosDriver = {
  name: 'guardAxios',
  guard(limiter, server, options) {
    return xg.guardAxios(axios.create(), limiter, { axios, retries: POLICY, prefixes: [server.url], ...options });
  },
  async send(instance, server, method, { key, url, signal, tenant } = {}) {
    try {
      const response = await instance.request({
        method,
        url: url ?? server.url + INVOICES,
        headers: headersFor(key, tenant),
        data: method === 'GET' ? undefined : BODY,
        signal,
      });
      return response.status;
    } catch (error) {
      if (error.response) return error.response.status; // axios rejects a non-2xx: the guard left that as it was
      throw error;
    }
  },
  isResetError: (e) => e.isAxiosError === true && e.response === undefined,
  // axios turns any rejection of an aborted request into its own CanceledError, as it does unguarded.
  isAbortError: (e) => axios.isCancel(e),
};

for (const driver of [fetchDriver, axiosDriver]) {
  describe(driver.name, () => {
    let server;
    let limiter;
    const make = (options = {}, l = limiter) => driver.guard(l, server, options);
    const send = (guarded, method, extra) => driver.send(guarded, server, method, extra);

    before(async () => {
      server = await new LoopbackServer().start();
    });
    after(async () => {
      await server.stop();
    });
    const fresh = () => {
      server.script = [];
      server.log = [];
      limiter?.close();
      limiter = new xg.Limiter();
    };

    test('a create answered 500 then 200 is sent twice with one key', async () => {
      fresh();
      server.respond({ status: 500, headers: NOW });
      assert.equal(await send(make(), 'POST'), 200);
      const keys = server.keys();
      assert.equal(keys.length, 2);
      assert.match(keys[0], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(keys[1], keys[0]);
      assert.deepEqual(
        server.log.map((e) => e.body.toString()),
        [BODY, BODY],
      );
    });

    test('each logical call gets its own key; reads get none', async () => {
      fresh();
      const guarded = make();
      await send(guarded, 'PUT');
      await send(guarded, 'PUT');
      await send(guarded, 'GET');
      const [a, b, c] = server.keys();
      assert.ok(a && b && a !== b);
      assert.equal(c, null);
    });

    test('a GET answered 500 is resent', async () => {
      fresh();
      server.respond({ status: 500, headers: NOW });
      assert.equal(await send(make(), 'GET'), 200);
      assert.equal(server.log.length, 2);
    });

    test('a POST answered 500 without a key is not resent', async () => {
      fresh();
      const givenUp = [];
      server.respond({ status: 500, headers: NOW });
      assert.equal(await send(make({ idempotencyKeys: false, onGiveUp: (e) => givenUp.push(e) }), 'POST'), 500);
      assert.deepEqual(server.keys(), [null]);
      assert.equal(givenUp.length, 1);
      assert.equal(givenUp[0].giveUp, 'unsafe_to_resend');
      assert.equal(givenUp[0].classification.status, 500);
    });

    test('a reset after a POST was sent is resent with its key', async () => {
      fresh();
      server.respond({ reset: true });
      assert.equal(await send(make(), 'POST'), 200);
      const keys = server.keys();
      assert.equal(keys.length, 2);
      assert.ok(keys[0] !== null && keys[0] === keys[1]);
    });

    test("a reset after a POST without a key reaches the caller as the client's error", async () => {
      fresh();
      server.respond({ reset: true });
      await assert.rejects(send(make({ idempotencyKeys: false }), 'POST'), driver.isResetError);
      assert.equal(server.log.length, 1);
    });

    test('a POST answered 429 is resent even without a key', async () => {
      fresh();
      server.respond({ status: 429, headers: { ...NOW, 'X-Rate-Limit-Problem': 'minute' } });
      assert.equal(await send(make({ idempotencyKeys: false }), 'POST'), 200);
      assert.deepEqual(server.keys(), [null, null]);
    });

    test("a caller's own key is kept on every resend", async () => {
      fresh();
      server.respond({ status: 500, headers: NOW }, { status: 503, headers: NOW });
      assert.equal(await send(make(), 'PUT', { key: 'my-own-key-7' }), 200);
      assert.deepEqual(server.keys(), ['my-own-key-7', 'my-own-key-7', 'my-own-key-7']);
    });

    test('a connection refused is resent even for a write without a key, until the policy says stop', async () => {
      fresh();
      const retried = [];
      const givenUp = [];
      const url = `http://127.0.0.1:${await closedPort()}${INVOICES}`;
      const guarded = driver.guard(
        limiter,
        { url: 'http://127.0.0.1:' },
        {
          idempotencyKeys: false,
          onRetry: (e) => retried.push(e),
          onGiveUp: (e) => givenUp.push(e),
        },
      );
      let raised;
      await assert.rejects(
        driver.send(guarded, server, 'POST', { url }).catch((e) => {
          raised = e;
          throw e;
        }),
      );
      assert.deepEqual(
        retried.map((e) => e.attempt),
        [1, 2, 3],
      );
      assert.equal(givenUp.length, 1);
      assert.equal(givenUp[0].giveUp, 'attempts_exhausted');
      assert.equal(givenUp[0].attempt, 4);
      assert.equal(givenUp[0].error, raised);
    });

    test('the hooks are told what happened', async () => {
      fresh();
      const retried = [];
      const givenUp = [];
      server.respond({ status: 500, headers: NOW }, { status: 502, headers: NOW });
      const guarded = make({
        retries: { maxRetries: 1, baseMs: 1, jitterMs: 0 },
        onRetry: (e) => retried.push(e),
        onGiveUp: (e) => givenUp.push(e),
      });
      assert.equal(await send(guarded, 'GET'), 502);
      assert.equal(retried.length, 1);
      const [retry] = retried;
      assert.deepEqual(
        [retry.method, retry.tenant, retry.attempt, retry.giveUp, retry.error],
        ['GET', T, 1, null, null],
      );
      assert.ok(retry.url.startsWith(server.url + INVOICES));
      assert.ok(retry.waitMs <= 5);
      assert.equal(retry.classification.category, 'internal_error');
      assert.equal(givenUp.length, 1);
      assert.deepEqual(
        [givenUp[0].attempt, givenUp[0].giveUp, givenUp[0].classification.status],
        [2, 'attempts_exhausted', 502],
      );
    });

    test('a final answer is no give-up', async () => {
      fresh();
      const events = [];
      server.respond({ status: 400, body: '{"Type": "ValidationException", "Message": "A validation exception"}' });
      assert.equal(await send(make({ onRetry: (e) => events.push(e), onGiveUp: (e) => events.push(e) }), 'PUT'), 400);
      assert.deepEqual(events, []);
      assert.equal(server.log.length, 1);
    });

    test('onWait hears of a pacing wait', async () => {
      fresh();
      const one = new xg.Limiter({ tenantConcurrency: 1 });
      const held = await one.acquire(T);
      const waits = [];
      const guarded = make(
        {
          permitTimeoutMs: 5000,
          onWait: (e) => {
            waits.push(e);
            one.release(held);
          },
        },
        one,
      );
      assert.equal(await send(guarded, 'GET'), 200);
      assert.equal(waits.length, 1);
      assert.deepEqual(
        [waits[0].tenant, waits[0].attempt, waits[0].reason, waits[0].fallback],
        [T, 1, 'concurrency', null],
      );
      one.close();
    });

    test('onGiveUp hears of a permit wait given up, and the call fails with PermitTimeoutError', async () => {
      fresh();
      const day = new xg.Limiter({ tenantDay: { limit: 1, windowMs: 86400000 } });
      await day.record(T);
      const givenUp = [];
      await assert.rejects(
        send(make({ onGiveUp: (e) => givenUp.push(e) }, day), 'GET'),
        (e) => e instanceof xg.PermitTimeoutError && e.reason === 'day',
      );
      assert.equal(givenUp.length, 1);
      assert.equal(givenUp[0].giveUp, 'wait_too_long');
      assert.ok(givenUp[0].error instanceof xg.PermitTimeoutError);
      assert.equal(server.log.length, 0);
      day.close();
    });

    test('an AbortSignal ends the wait for a permit', async () => {
      fresh();
      const one = new xg.Limiter({ tenantConcurrency: 1 });
      await one.acquire(T);
      const controller = new AbortController();
      const call = send(make({ permitTimeoutMs: 60000, onWait: () => controller.abort() }, one), 'GET', {
        signal: controller.signal,
      });
      await within(5000, assert.rejects(call, driver.isAbortError), 'the aborted call');
      assert.equal(server.log.length, 0);
      one.close();
    });

    test('the tenant is the Xero-Tenant-Id header; other URLs pass untouched', async () => {
      fresh();
      const guarded = make();
      await send(guarded, 'GET', { tenant: 'tenant-z' });
      assert.equal((await limiter.snapshot('tenant-z')).minute.count, 1);
      const other = driver.guard(limiter, { url: 'https://api.xero.com' }, {});
      await driver.send(other, server, 'GET', { tenant: 'tenant-y' });
      assert.equal((await limiter.snapshot('tenant-y')).minute.count, 0);
      assert.equal(server.log.length, 2);
    });

    test('a failing hook stops the call with its error', async () => {
      fresh();
      server.respond({ status: 500, headers: NOW });
      const guarded = make({
        onRetry: () => {
          throw new Error('hook failed');
        },
      });
      await assert.rejects(send(guarded, 'GET'), /hook failed/);
      assert.equal(server.log.length, 1);
    });

    test('a success body stays readable; a long one is classified from its first MiB and handed on whole', async () => {
      fresh();
      const big = JSON.stringify({
        Invoices: Array.from({ length: 40000 }, (_, i) => ({ InvoiceID: `id-${i}`, Status: 'OK' })),
      });
      assert.ok(big.length > 1024 * 1024);
      server.respond({ status: 200, body: big });
      const guarded = make();
      let text;
      if (driver === fetchDriver) {
        const response = await guarded(server.url + INVOICES, { headers: headersFor() });
        text = await response.text();
      } else {
        text = JSON.stringify((await guarded.get(server.url + INVOICES, { headers: headersFor() })).data);
      }
      assert.equal(text, big);
    });
  });
}

describe('against the local Xero-like server', () => {
  let xero;
  before(async () => {
    xero = await XeroServer.startSmall(7);
  });
  after(async () => {
    await xero.stop();
  });

  const limits = { tenantMinute: { limit: 5, windowMs: 1000, marginMs: 50 }, tenantConcurrency: 2 };
  const calls = 12;

  test('unguarded calls get 429s', async () => {
    await xero.reset();
    const statuses = await Promise.all(
      Array.from({ length: calls }, () =>
        fetch(`${xero.url}${INVOICES}`, { headers: headersFor() }).then(async (r) => (await r.arrayBuffer(), r.status)),
      ),
    );
    assert.ok(statuses.includes(429), `statuses ${statuses}`);
  });

  for (const [name, make] of [
    [
      'guardFetch',
      (limiter) => (path) =>
        xg
          .guardFetch(fetch, limiter, { prefixes: [xero.url] })(xero.url + path, { headers: headersFor() })
          .then(async (r) => (await r.arrayBuffer(), r.status)),
    ],
    [
      'guardAxios',
      (limiter) => {
        const instance = xg.guardAxios(axios.create(), limiter, { axios, prefixes: [xero.url] });
        return (path) => instance.get(xero.url + path, { headers: headersFor() }).then((r) => r.status);
      },
    ],
  ]) {
    test(`${name}: guarded calls all succeed with no 429`, async () => {
      await xero.reset();
      const limiter = new xg.Limiter(limits);
      const call = make(limiter);
      const statuses = await Promise.all(Array.from({ length: calls }, (_, i) => call(`${INVOICES}/${i}`)));
      assert.deepEqual(statuses, Array(calls).fill(200));
      const stats = await xero.stats();
      assert.equal(stats.count_429, 0, JSON.stringify(stats.by_problem));
      assert.equal(stats.admitted[T], calls);
      assert.ok(stats.max_in_flight[T] <= 2);
      limiter.close();
    });
  }

  test('a limiter that allows more than the server learns its count from the remaining headers: no 429', async () => {
    await xero.reset();
    // The margin covers how much later one call can reach the server after its send than another (the server's
    // window may start at the first call's arrival): on a busy machine a few ms, which took a 6th call into it once.
    const limiter = new xg.Limiter({ tenantMinute: { limit: 100, windowMs: 1000, marginMs: 100 } });
    const retried = [];
    const guarded = xg.guardFetch(fetch, limiter, { prefixes: [xero.url], onRetry: (e) => retried.push(e) });
    const statuses = [];
    // 11 calls in a row against 5 per fixed 1 s window: X-MinLimit-Remaining tells the limiter what the server counts.
    for (let i = 0; i < 11; i++)
      statuses.push((await guarded(`${xero.url}${INVOICES}`, { headers: headersFor() })).status);
    assert.deepEqual(statuses, Array(11).fill(200));
    assert.equal((await xero.stats()).count_429, 0);
    assert.deepEqual(retried, []);
    limiter.close();
  });
});

// xero-node (the real package, a devDependency) guarded through the axios instance it uses, against the local
// Xero-like server: the recipe of the README.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';

import { require, XeroServer, xg } from './helpers.mjs';

const { XeroClient } = require('xero-node');
// The axios module xero-node itself loads (its default instance sends every SDK call).
const xeroAxios = createRequire(require.resolve('xero-node'))('axios');
const TENANT = 'tenant-xero-node';
let xero;

before(async () => {
  xero = await XeroServer.startSmall(3);
});
after(async () => {
  await xero.stop();
});

function client() {
  const c = new XeroClient({
    clientId: 'id',
    clientSecret: 'secret',
    redirectUris: ['http://localhost/cb'],
    scopes: ['accounting.transactions'],
  });
  c.setTokenSet({ access_token: 'test-token' });
  c.accountingApi.basePath = `${xero.url}/api.xro/2.0`;
  return c;
}

test('xero-node sends through the axios module guardAxios guards', () => {
  const appAxios = require('axios');
  assert.equal(
    xeroAxios,
    appAxios,
    "one axios in this install (npm dedupes it); the README recipe finds xero-node's either way",
  );
});

test('unguarded, xero-node meets 429s', async () => {
  await xero.reset();
  const api = client().accountingApi;
  const outcomes = await Promise.allSettled(Array.from({ length: 12 }, () => api.getInvoices(TENANT)));
  assert.ok(
    outcomes.some((o) => o.status === 'rejected'),
    'some calls failed',
  );
  assert.ok((await xero.stats()).count_429 > 0);
});

test('guarded, every xero-node call completes with no 429', async () => {
  await xero.reset();
  const limiter = new xg.Limiter({ tenantMinute: { limit: 5, windowMs: 1000, marginMs: 50 }, tenantConcurrency: 2 });
  xg.guardAxios(xeroAxios, limiter, { prefixes: [xero.url] });
  try {
    const api = client().accountingApi;
    const reads = await Promise.all(Array.from({ length: 10 }, () => api.getInvoices(TENANT)));
    assert.ok(reads.every((r) => r.response.status === 200 && Array.isArray(r.body.invoices)));
    const created = await api.createInvoices(TENANT, { invoices: [] });
    assert.equal(created.response.status, 200);
    const stats = await xero.stats();
    assert.equal(stats.count_429, 0, JSON.stringify(stats.by_problem));
    assert.equal(stats.admitted[TENANT], 11);
    const log = await (await fetch(`${xero.url}/__log`)).json();
    assert.equal(log.filter((e) => e.method === 'PUT').length, 1);
  } finally {
    xg.unguardAxios(xeroAxios);
    limiter.close();
  }
  assert.equal(typeof xeroAxios.defaults.adapter === 'function', false, 'unguardAxios put the original adapter back');
});

// A fleet worker in Node (tests/fleet/test_fleet.py runs several, beside C, C# and Python ones): async loops per
// tenant call the Xero-like server through guardFetch, which paces every call through one shared (Redis)
// xeroguard Limiter (the package built in bindings/node).
//
// Protocol (as tests/fleet/worker.c): after setup it prints "READY <unix time, s> <CLOCK_MONOTONIC, ms>", waits for
// "GO <run ms>" on stdin, calls until run ms have passed, then prints one JSON line
//   {"id", "language", "calls": [[seq, sent_ms, status], ...], "errors": [...]}
// where sent_ms is CLOCK_MONOTONIC (process.hrtime) when the request left the guard (permit granted) to be sent.
//
// Usage: node worker.mjs --library PATH --id ID --redis URL --prefix P --port PORT --tenants a,b
//        --threads-per-tenant K --minute L/W/M --day L/W/M --concurrency N --app L/W/M --permit-timeout-ms MS
//        [--breaker-cooldown-ms MS]   (without it, the library's default)
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const name of [
  'library',
  'id',
  'redis',
  'prefix',
  'port',
  'tenants',
  'minute',
  'day',
  'concurrency',
  'app',
  'permit-timeout-ms',
]) {
  if (args[name] === undefined) {
    console.error(`worker.mjs: --${name} is required`);
    process.exit(2);
  }
}
// The library the harness names, as the other workers load it.
process.env.XEROGUARD_LIBRARY = args.library;
const xg = createRequire(import.meta.url)(path.join(HERE, '..', '..', 'bindings', 'node'));

const monotonicMs = () => Number(process.hrtime.bigint()) / 1e6;
const window = (text) => {
  const [limit, windowMs, marginMs] = text.split('/').map(Number);
  return { limit, windowMs, marginMs };
};
const limits = {
  tenantMinute: window(args.minute),
  tenantDay: window(args.day),
  tenantConcurrency: Number(args.concurrency),
  appMinute: window(args.app),
  permitTimeoutMs: Number(args['permit-timeout-ms']),
  maxTenants: 0,
};
const base = `http://127.0.0.1:${args.port}`;
const sent = new Map(); // url -> when the guard handed it on to be sent

/** Between the guard and fetch: stamps the moment a paced request is handed on. */
const stampingFetch = (input, init) => {
  sent.set(String(input), monotonicMs());
  return fetch(input, init);
};

const redis = { redisUrl: args.redis, keyPrefix: args.prefix };
if (args['breaker-cooldown-ms'] !== undefined) redis.breakerCooldownMs = Number(args['breaker-cooldown-ms']);
const limiter = await xg.Limiter.connect(limits, redis);
const guarded = xg.guardFetch(stampingFetch, limiter, { prefixes: [`${base}/`] });
const tenants = Array(Number(args['threads-per-tenant'] ?? 1))
  .fill(args.tenants.split(','))
  .flat();
// Opens keep-alive connections outside the limits (/__stats is not an API call), then one call through the whole
// guarded path with a limiter of its own, so the run's first calls do not pay for first-time work.
await Promise.all(tenants.map(async () => (await fetch(`${base}/__stats`)).arrayBuffer()));
const local = new xg.Limiter(limits);
const warm = await xg.guardFetch(fetch, local, { prefixes: [`${base}/`] })(
  `${base}/api.xro/2.0/Invoices/warm-up-${args.id}`,
  { headers: { 'Xero-Tenant-Id': `warm-up-${args.id}` } },
);
await warm.arrayBuffer();
local.close();

console.log(`READY ${(Date.now() / 1000).toFixed(3)} ${monotonicMs().toFixed(3)}`);
const lines = readline.createInterface({ input: process.stdin });
const go = (await lines[Symbol.asyncIterator]().next()).value?.split(' ') ?? [];
if (go.length !== 2 || go[0] !== 'GO') {
  console.error(`worker.mjs: expected 'GO <run ms>' on stdin, got ${JSON.stringify(go)}`);
  process.exit(2);
}
lines.close();
const until = monotonicMs() + Number(go[1]);
let seq = 0;
const calls = [];
const errors = [];

await Promise.all(
  tenants.map(async (tenant) => {
    try {
      while (monotonicMs() < until) {
        const n = seq++;
        const url = `${base}/api.xro/2.0/Invoices/${args.id}-${n}`;
        const response = await guarded(url, { headers: { 'Xero-Tenant-Id': tenant, Authorization: 'Bearer fleet' } });
        await response.arrayBuffer();
        calls.push([n, sent.get(url), response.status]);
        sent.delete(url);
      }
    } catch (error) {
      errors.push(`${tenant}: ${error?.name}: ${error?.message}`); // reported in the output; the harness fails on any
    }
  }),
);
limiter.close();
console.log(JSON.stringify({ id: args.id, language: 'node', calls, errors }));
process.exit(0);

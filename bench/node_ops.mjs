#!/usr/bin/env node
// Node-side throughput, in real time, through the npm package (bindings/node, built):
//   classify() per response on the Xero responses bench/python_ops.py uses (the 1 KB validation 400 first), beside
//   JSON.parse of the same body (decoded from bytes, as a response arrives);
//   acquire + release per call on a limiter of this process, 1 tenant and 1000 tenants round-robin, limits so high
//   that every call is granted (each op is one granted decision and its release, awaited as an application does).
//
// Run:  node --expose-gc bench/node_ops.mjs [--quick] [--out DIR|FILE.json] [--shared DIR]
// Writes bench/results/node-ops.json (--quick: target/bench-smoke/).
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const option = (name) => {
  const at = argv.indexOf(name);
  return at >= 0 ? argv[at + 1] : undefined;
};
const die = (message) => {
  console.error(`node_ops.mjs: ${message}`);
  process.exit(2);
};

let xg;
try {
  xg = createRequire(import.meta.url)(path.join(ROOT, 'bindings', 'node'));
} catch (error) {
  die(`cannot load bindings/node (${error.message}); build it first: scripts/build-node-package.sh`);
}
const shared = option('--shared') ?? process.env.XEROGUARD_SHARED ?? path.join(ROOT, '..', 'shared');
const REPEATS = quick ? 3 : 7;
const BIG_LIMIT = 1_000_000;

function timePerCall(fn, iterations) {
  fn();
  const samples = [];
  for (let r = 0; r < REPEATS; r++) {
    globalThis.gc?.();
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    samples.push(Number(process.hrtime.bigint() - start) / 1e9 / iterations);
  }
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)], best: samples[0] };
}

async function timeAsync(fn, iterations) {
  await fn(0);
  const samples = [];
  for (let r = 0; r < REPEATS; r++) {
    globalThis.gc?.();
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) await fn(i);
    samples.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)], best: samples[0] };
}

// -----------------------------------------------------------------------------------------------------------------
// classify beside JSON.parse

let body400;
let ok;
try {
  const fixture = path.join(shared, 'fixtures', 'xero', '400_validation_contact_duplicate_name.json');
  body400 = Buffer.from(JSON.stringify(JSON.parse(fs.readFileSync(fixture, 'utf8')))); // compact, as Xero sends it
  ok = JSON.parse(fs.readFileSync(path.join(shared, 'conformance', 'classify-cases.json'), 'utf8')).cases.find(
    (c) => c.name === 'seed_200_ok',
  );
} catch (error) {
  die(`cannot read the reference fixtures under ${shared} (${error.message}); pass --shared DIR`);
}
const jsonCt = ['Content-Type', 'application/json; charset=utf-8'];
const headers429 = [
  ['Retry-After', '42'],
  ['X-Rate-Limit-Problem', 'minute'],
  ['X-MinLimit-Remaining', '0'],
  ['X-DayLimit-Remaining', '4890'],
  ['X-AppMinLimit-Remaining', '9950'],
];
const headers12 = [
  jsonCt,
  ['Date', 'Mon, 30 Nov 2026 14:00:00 GMT'],
  ['Server', 'nginx'],
  ['Xero-Correlation-Id', '0f5e8d6a-1b2c-4d3e-8f9a-0b1c2d3e4f5a'],
  ['X-MinLimit-Remaining', '58'],
  ['X-DayLimit-Remaining', '4890'],
  ['X-AppMinLimit-Remaining', '9950'],
  ['Cache-Control', 'no-cache'],
  ['Content-Length', String(body400.length)],
  ['Connection', 'keep-alive'],
  ['Strict-Transport-Security', 'max-age=31536000'],
  ['X-Frame-Options', 'SAMEORIGIN'],
];
const okBody = Buffer.from(ok.body);
const cases = [
  [`400 validation, ${body400.length} B JSON`, 400, [jsonCt], body400, 'validation_error', null],
  [`400 validation, ${body400.length} B JSON, 12 headers`, 400, headers12, body400, 'validation_error', null],
  [
    `400 validation, ${body400.length} B JSON, then .validationMessages`,
    400,
    [jsonCt],
    body400,
    'validation_error',
    'validationMessages',
  ],
  ['429 headers only', 429, headers429, Buffer.alloc(0), 'rate_limited', null],
  [`200 small JSON, ${okBody.length} B`, ok.status, ok.headers, okBody, 'success', null],
];
const classifyIterations = quick ? 2000 : 50000;
const classifyRows = [];
for (const [name, status, headers, body, category, field] of cases) {
  const check = xg.classify(status, headers, body);
  if (check.category !== category) die(`${name}: classified ${check.category}, expected ${category}`);
  const classify =
    field === null ? () => xg.classify(status, headers, body) : () => xg.classify(status, headers, body)[field];
  const ours = timePerCall(classify, classifyIterations);
  const parse = body.length > 0 ? timePerCall(() => JSON.parse(body.toString('utf8')), classifyIterations) : null;
  classifyRows.push({
    case: name,
    classify_us: +(ours.median * 1e6).toFixed(3),
    classify_best_us: +(ours.best * 1e6).toFixed(3),
    json_parse_us: parse === null ? null : +(parse.median * 1e6).toFixed(3),
    json_parse_best_us: parse === null ? null : +(parse.best * 1e6).toFixed(3),
  });
}

// -----------------------------------------------------------------------------------------------------------------
// acquire + release

const big = { limit: BIG_LIMIT, windowMs: 60000 };
const limits = { tenantMinute: big, tenantDay: { limit: BIG_LIMIT, windowMs: 86400000 }, appMinute: big };
const ops = quick ? 2000 : 20000;
const limiterRows = [];
for (const [scenario, count] of [
  ['1 tenant', 1],
  ['1000 tenants round-robin', 1000],
]) {
  const tenants = Array.from({ length: count }, (_, i) => `tenant-${i}`);
  const limiter = new xg.Limiter(limits, { clock: 'manual' });
  for (const tenant of tenants) await limiter.release(await limiter.acquire(tenant)); // tenants made before timing
  let refused = 0;
  const timing = await timeAsync(async (i) => {
    const d = await limiter.acquire(tenants[i % count]);
    if (!d.granted) refused++;
    await limiter.release(d);
  }, ops);
  limiter.close();
  if (refused > 0) die(`${scenario}: ${refused} refusals; every call should be granted`);
  limiterRows.push({
    scenario,
    tenants: count,
    limiter: `xeroguard ${xg.version}`,
    api: 'await limiter.acquire + await limiter.release (koffi)',
    ops,
    repeats: REPEATS,
    median_s: +timing.median.toFixed(6),
    best_s: +timing.best.toFixed(6),
    ops_per_s: Math.round(ops / timing.median),
    ops_per_s_best: Math.round(ops / timing.best),
    us_per_op: +((timing.median / ops) * 1e6).toFixed(3),
  });
}

const out = option('--out') ?? (quick ? path.join(ROOT, 'target', 'bench-smoke') : path.join(HERE, 'results'));
const file = out.endsWith('.json') ? out : path.join(out, 'node-ops.json');
fs.mkdirSync(path.dirname(file), { recursive: true });
const koffiVersion = createRequire(import.meta.url)(
  path.join(ROOT, 'bindings', 'node', 'node_modules', 'koffi', 'package.json'),
).version;
fs.writeFileSync(
  file,
  `${JSON.stringify(
    {
      date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
      node: process.versions.node,
      koffi: koffiVersion,
      statistic: 'median',
      cpu: os.cpus()[0]?.model ?? '?',
      classify_rows: classifyRows,
      limiter_rows: limiterRows,
      notes: [
        `Times: process.hrtime; each figure is the MEDIAN of ${REPEATS} timed trials (best also in the JSON); ` +
          `gc() before each trial${globalThis.gc ? '' : ' (not exposed: run with --expose-gc)'}.`,
        `classify: ${classifyIterations} calls per trial; JSON.parse is given the body as bytes decoded to a string ` +
          '(Buffer.toString), as a response body arrives.',
        `acquire + release: ${ops} awaited pairs per trial on a limiter of this process (manual clock; every window ` +
          `${BIG_LIMIT.toLocaleString('en')}, so every call is granted: checked), tenants made before timing. A ` +
          'limiter of this process decides on the calling thread; the Promise each call returns is part of the cost.',
      ],
    },
    null,
    1,
  )}\n`,
);
console.log(`node_ops.mjs: wrote ${file}`);
for (const r of classifyRows)
  console.log(`  ${r.case}: classify ${r.classify_us} us, JSON.parse ${r.json_parse_us ?? '-'} us`);
for (const r of limiterRows)
  console.log(`  ${r.scenario}: ${r.ops_per_s.toLocaleString('en')} acquire+release/s (${r.us_per_op} us)`);

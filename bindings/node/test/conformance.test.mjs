// The conformance cases through classify: the shared file (../shared/conformance/classify-cases.json) and the
// project's own (tests/conformance/classify-cases.json, bodies under tests/), as
// bindings/python/tests/test_conformance.py reads them.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { REPO, SHARED, xg } from './helpers.mjs';

const KEYS = [
  'status',
  'category',
  'action',
  'retryable',
  'mayHaveBeenProcessed',
  'rateLimitProblem',
  'retryAfterMs',
  'recommendedWaitMs',
  'minuteRemaining',
  'dayRemaining',
  'appMinuteRemaining',
  'errorNumber',
  'errorType',
  'message',
  'validationMessages',
  'warnings',
  'failedElements',
  'oauthProblem',
  'oauthProblemAdvice',
  'authProblem',
  'problemTitle',
  'problemDetail',
  'correlationId',
];
const camel = (key) => key.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

function cases(base) {
  const file = path.join(base, 'conformance', 'classify-cases.json');
  if (!fs.existsSync(file)) throw new Error(`${file} is missing (set XEROGUARD_SHARED for the shared cases)`);
  return JSON.parse(fs.readFileSync(file, 'utf8')).cases.map((c) => ({ ...c, base }));
}

function body(c) {
  if (c.body_file) return fs.readFileSync(path.join(c.base, c.body_file));
  if (c.body_base64) return Buffer.from(c.body_base64, 'base64');
  return c.body ?? '';
}

function check(c) {
  const result = xg.classify(c.status, c.headers, body(c));
  const got = result.toJSON();
  assert.deepEqual(Object.keys(got), KEYS);
  assert.equal(got.status, c.status);
  for (const [key, expected] of Object.entries(c.expect)) {
    assert.deepEqual(got[camel(key)], expected, `${c.name}: ${key}`);
    assert.deepEqual(result[camel(key)], expected, `${c.name}: ${key} (property)`);
  }
  assert.equal(result.retryable, result.action === 'retry');
}

const shared = cases(SHARED);
const project = cases(path.join(REPO, 'tests'));

test('the 70 shared cases are found', () => assert.equal(shared.length, 70));
test("the project's cases are found, named once each", () => {
  assert.ok(project.length > 0);
  assert.equal(new Set(project.map((c) => c.name)).size, project.length);
});
for (const c of shared) test(`shared: ${c.name}`, () => check(c));
for (const c of project) test(`project: ${c.name}`, () => check(c));

// classify and the pure decisions through the binding: input forms, bad input refused before it crosses, the text
// fields, Retry-After dates, classifyRaw, backoff, resend, needsIdempotencyKey, bodyBytesToClassify, the words.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { SHARED, xg } from './helpers.mjs';

const VALIDATION = fs.readFileSync(path.join(SHARED, 'fixtures', 'xero', '400_validation_minimal_docs.json'));

test('headers in every usual form classify alike, repeated headers kept apart', () => {
  const pairs = [
    ['X-Rate-Limit-Problem', 'day'],
    ['Retry-After', '5'],
  ];
  const forms = [
    pairs,
    { 'x-rate-limit-problem': 'day', 'retry-after': '5', unset: undefined },
    new Map(pairs),
    new Headers(pairs),
    { 'X-Rate-Limit-Problem': ['day'], 'Retry-After': 5 },
  ];
  const expected = xg.classify(429, pairs).toJSON();
  assert.equal(expected.rateLimitProblem, 'day');
  assert.equal(expected.retryAfterMs, 5000);
  for (const headers of forms) assert.deepEqual(xg.classify(429, headers).toJSON(), expected);
  // A duplicate Retry-After: the first occurrence wins (the library's rule), so both must reach it in order.
  assert.equal(
    xg.classify(429, [
      ['Retry-After', '7'],
      ['Retry-After', '9'],
    ]).retryAfterMs,
    7000,
  );
  assert.equal(xg.classify(429, { 'Retry-After': ['7', '9'] }).retryAfterMs, 7000);
});

test('bodies as Buffer, Uint8Array, ArrayBuffer and text classify alike', () => {
  const expected = xg.classify(400, { 'Content-Type': 'application/json' }, VALIDATION).toJSON();
  assert.equal(expected.category, 'validation_error');
  assert.ok(expected.validationMessages.length > 0);
  const u8 = new Uint8Array(VALIDATION);
  const ab = u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength);
  for (const body of [u8, ab, VALIDATION.toString('utf8')]) {
    assert.deepEqual(xg.classify(400, { 'Content-Type': 'application/json' }, body).toJSON(), expected);
  }
  assert.equal(xg.classify(200).category, 'success');
  assert.equal(xg.classify(200, null, null).category, 'success');
});

test('a large body takes its JSON form at once and reads the same', () => {
  const items = Array.from({ length: 3000 }, (_, i) => ({
    InvoiceID: String(i),
    HasErrors: i === 2999,
    ValidationErrors: i === 2999 ? [{ Message: 'last one' }] : [],
  }));
  const body = JSON.stringify({ Invoices: items });
  assert.ok(body.length > 16 * 1024);
  const c = xg.classify(200, { 'Content-Type': 'application/json' }, body);
  assert.equal(c.category, 'partial_success');
  assert.deepEqual(c.failedElements, [2999]);
  assert.deepEqual(c.validationMessages, ['last one']);
});

test('classification fields are typed words, and toJSON gives every field', () => {
  const c = xg.classify(429, { 'X-Rate-Limit-Problem': 'minute', 'Retry-After': '12' });
  assert.equal(c.category, 'rate_limited');
  assert.equal(c.action, 'retry');
  assert.equal(c.retryable, true);
  assert.equal(c.mayHaveBeenProcessed, false);
  assert.equal(c.rateLimitProblem, 'minute');
  assert.equal(c.authProblem, null);
  assert.equal(c.retryAfterMs, 12000);
  assert.deepEqual(JSON.parse(JSON.stringify(c)), c.toJSON());
  assert.equal(xg.classify(500).mayHaveBeenProcessed, true);
  assert.ok(c instanceof xg.Classification);
  assert.throws(() => new xg.Classification(), TypeError);
  // The lists handed out are copies: changing one changes nothing kept.
  const v = xg.classify(400, { 'Content-Type': 'application/json' }, VALIDATION);
  v.validationMessages.push('mine');
  assert.ok(!v.validationMessages.includes('mine'));
});

test('a Retry-After HTTP-date is measured against options.now', () => {
  const headers = [
    ['Retry-After', 'Wed, 21 Oct 2026 07:28:30 GMT'],
    ['X-Rate-Limit-Problem', 'minute'],
  ];
  const at = new Date(Date.UTC(2026, 9, 21, 7, 28, 0));
  assert.equal(xg.classify(429, headers, '', { now: at }).retryAfterMs, 30000);
  assert.equal(xg.classify(429, headers, '', { now: at.getTime() + 10000 }).retryAfterMs, 20000);
  for (const now of [0, -1, 1.5, '2026', Number.NaN]) {
    assert.throws(() => xg.classify(429, headers, '', { now }), xg.InvalidArgumentError, String(now));
  }
});

test('classifyRaw matches classify', () => {
  const raw = Buffer.concat([
    Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nX-MinLimit-Remaining: 7\r\n\r\n'),
    VALIDATION,
  ]);
  assert.deepEqual(
    xg.classifyRaw(raw).toJSON(),
    xg.classify(400, { 'Content-Type': 'application/json', 'X-MinLimit-Remaining': '7' }, VALIDATION).toJSON(),
  );
  assert.equal(xg.classifyRaw(raw.toString('latin1')).minuteRemaining, 7);
});

test("bad input is refused before it crosses, with the library's errors for what it refuses", () => {
  for (const status of [-1, 70000, 1.5, '200', null, 2n ** 70n]) {
    assert.throws(() => xg.classify(status), xg.InvalidArgumentError, String(status));
  }
  assert.throws(() => xg.classify(200, [['X-A', 'a\0b']]), /cannot contain NUL/);
  assert.throws(() => xg.classify(200, [['X\0A', 'v']]), /cannot contain NUL/);
  assert.throws(() => xg.classify(200, [['X-A', '\ud800']]), /unpaired surrogate/);
  assert.throws(() => xg.classify(200, [['X-A', {}]]), xg.InvalidArgumentError);
  assert.throws(() => xg.classify(200, 'Retry-After: 5'), xg.InvalidArgumentError);
  assert.throws(() => xg.classify(200, [['only-a-name']]), xg.InvalidArgumentError);
  assert.throws(() => xg.classify(200, {}, 42), xg.InvalidArgumentError);
  const tooMany = Array.from({ length: 1025 }, () => ['X-H', 'v']);
  assert.throws(
    () => xg.classify(200, tooMany),
    (e) => e instanceof xg.TooLargeError && /xg_classify_flat/.test(e.message),
  );
  const error = (() => {
    try {
      xg.classifyRaw('not http at all');
    } catch (e) {
      return e;
    }
  })();
  assert.ok(error instanceof xg.MalformedResponseError);
  assert.equal(error.status, 4);
  assert.equal(error.statusName, 'malformed_response');
  assert.match(error.message, /^xg_classify_raw: /);
});

test('backoff follows the policy', () => {
  const minute = xg.classify(429, { 'X-Rate-Limit-Problem': 'minute', 'Retry-After': '3' });
  const first = xg.backoff(minute, 1);
  assert.equal(first.retry, true);
  assert.equal(first.giveUp, null);
  assert.ok(first.waitMs >= 3000);
  assert.equal(xg.backoff(minute, 3, { maxRetries: 2, jitterMs: 0 }).giveUp, 'attempts_exhausted');
  const day = xg.classify(429, { 'X-Rate-Limit-Problem': 'day', 'Retry-After': '66975' });
  const tooLong = xg.backoff(day, 1, { maxWaitMs: 60000 });
  assert.equal(tooLong.retry, false);
  assert.equal(tooLong.giveUp, 'wait_too_long');
  assert.ok(tooLong.waitMs >= 66975000);
  assert.equal(xg.backoff(xg.classify(404), 1).giveUp, 'not_retryable');
  const flat = { maxRetries: 10, baseMs: 100, maxBackoffMs: 400, jitterMs: 0 };
  const s500 = xg.classify(500);
  const waits = [1, 2, 3, 4].map((a) => xg.backoff(s500, a, flat).waitMs);
  assert.deepEqual(
    waits,
    [...waits].sort((a, b) => a - b),
  );
  assert.ok(waits.every((w) => w >= s500.recommendedWaitMs));
  assert.deepEqual(xg.DEFAULT_RETRY_POLICY, {
    maxRetries: 5,
    baseMs: 500,
    maxBackoffMs: 30000,
    jitterMs: 250,
    maxWaitMs: 300000,
  });
  assert.throws(() => xg.backoff(minute, -1), xg.InvalidArgumentError);
  assert.throws(() => xg.backoff(minute, 1, { maxRetries: -2 }), xg.InvalidArgumentError);
  assert.throws(() => xg.backoff(minute, 1, { maxRetrys: 2 }), /unknown retry policy field/);
  assert.throws(() => xg.backoff(minute.toJSON(), 1), /must be a Classification/);
});

test('resend never sends a write again that the server may have carried out without a key', () => {
  const s500 = xg.classify(500, { 'Retry-After': '0' });
  assert.equal(xg.resend('POST', s500, 1, { hasIdempotencyKey: false }).giveUp, 'unsafe_to_resend');
  assert.equal(xg.resend('POST', s500, 1, { hasIdempotencyKey: true }).retry, true);
  assert.equal(xg.resend('GET', s500, 1, { hasIdempotencyKey: false }).retry, true);
  const s429 = xg.classify(429, { 'Retry-After': '0', 'X-Rate-Limit-Problem': 'minute' });
  assert.equal(xg.resend('POST', s429, 1, { hasIdempotencyKey: false }).retry, true);
  assert.equal(xg.resend('POST', 'not_sent', 1, { hasIdempotencyKey: false }).retry, true);
  assert.equal(xg.resend('POST', 'no_response', 1, { hasIdempotencyKey: false }).giveUp, 'unsafe_to_resend');
  assert.equal(xg.resend('PUT', 'no_response', 1, { hasIdempotencyKey: true }).retry, true);
  assert.equal(xg.resend('GET', 'no_response', 6, { hasIdempotencyKey: false }).giveUp, 'attempts_exhausted');
  assert.throws(() => xg.resend('POST', 'lost', 1, { hasIdempotencyKey: false }), xg.InvalidArgumentError);
  assert.throws(() => xg.resend('POST', s500, 1), xg.InvalidArgumentError);
  assert.throws(() => xg.resend('POST', s500, 1, { hasIdempotencyKey: 'yes' }), xg.InvalidArgumentError);
  assert.throws(() => xg.resend('', s500, 1, { hasIdempotencyKey: true }), xg.InvalidArgumentError);
});

test('the writes given a key are exactly those resend holds back', () => {
  for (const method of ['POST', 'PUT', 'PATCH', 'patch', 'PROPFIND'])
    assert.equal(xg.needsIdempotencyKey(method), true, method);
  for (const method of ['GET', 'HEAD', 'OPTIONS', 'DELETE', 'get'])
    assert.equal(xg.needsIdempotencyKey(method), false, method);
  assert.throws(() => xg.needsIdempotencyKey(''), xg.InvalidArgumentError);
  assert.throws(() => xg.needsIdempotencyKey(undefined), xg.InvalidArgumentError);
});

test("bodyBytesToClassify is the library's body rule", () => {
  assert.equal(xg.bodyBytesToClassify(200, 'application/json'), 1048576);
  assert.equal(xg.bodyBytesToClassify(200, 'application/pdf'), 0);
  assert.equal(xg.bodyBytesToClassify(400, 'application/pdf'), 33554432);
  assert.equal(xg.bodyBytesToClassify(200, null), 0);
  assert.throws(() => xg.bodyBytesToClassify(-5, null), xg.InvalidArgumentError);
});

test('waits are worded by the library', () => {
  assert.equal(xg.refusalWords('day', 43140000), 'day limit: next call in 11 h 59 min');
  assert.match(xg.refusalWords('concurrency', 120000, 5), /^concurrency: 5 calls in flight/);
  assert.equal(xg.durationWords(90000), '1 min 30 s');
  assert.equal(xg.durationWords(850), '850 ms');
  assert.throws(() => xg.refusalWords('sometime', 5), xg.InvalidArgumentError);
  assert.throws(() => xg.durationWords(-1), xg.InvalidArgumentError);
});

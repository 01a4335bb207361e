// The koffi layer against the header: struct layouts (a C compiler's sizeof and offsetof beside koffi's), field
// names in order, the declaration table, the constants, the vocabulary, the error classes and library loading.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

import { internal, PACKAGE, REPO, require, run, xg } from './helpers.mjs';

const koffi = require(path.join(PACKAGE, 'node_modules', 'koffi'));
const native = internal('native');
const vocabulary = internal('vocabulary');
const errors = internal('errors');
const HEADER = fs.readFileSync(path.join(REPO, 'include', 'xeroguard.h'), 'utf8');

test("every struct mirror has the header's fields, in order", () => {
  for (const [name, type] of Object.entries(native.STRUCTS)) {
    const body = HEADER.match(new RegExp(`typedef struct \\{([^{}]*)\\} ${name};`));
    assert.ok(body, `${name} is not in the header`);
    const fields = [...body[1].replace(/\/\/.*$/gm, '').matchAll(/(\w+)(?:\[\w+\])?;\s*$/gm)].map((m) => m[1]);
    assert.deepEqual(Object.keys(type.members), fields, name);
  }
  const headerStructs = [...HEADER.matchAll(/typedef struct \{[^{}]*\} (\w+);/g)].map((m) => m[1]).sort();
  assert.deepEqual(Object.keys(native.STRUCTS).sort(), headerStructs);
});

test("struct sizes and offsets are the C compiler's", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xg-probe-'));
  try {
    const lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "xeroguard.h"', 'int main(void) {'];
    for (const [name, type] of Object.entries(native.STRUCTS)) {
      lines.push(`printf("${name} %zu\\n", sizeof(${name}));`);
      for (const field of Object.keys(type.members))
        lines.push(`printf("${name}.${field} %zu\\n", offsetof(${name}, ${field}));`);
    }
    lines.push('return 0; }');
    fs.writeFileSync(path.join(dir, 'probe.c'), lines.join('\n'));
    await run('cc', [
      '-std=c99',
      '-I',
      path.join(REPO, 'include'),
      path.join(dir, 'probe.c'),
      '-o',
      path.join(dir, 'probe'),
    ]);
    const c = Object.fromEntries(
      (await run(path.join(dir, 'probe'), []))
        .trim()
        .split('\n')
        .map((l) => l.split(' ')),
    );
    const js = {};
    for (const [name, type] of Object.entries(native.STRUCTS)) {
      js[name] = String(koffi.sizeof(type));
      for (const field of Object.keys(type.members)) js[`${name}.${field}`] = String(koffi.offsetof(type, field));
    }
    assert.deepEqual(js, c);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the declaration table covers every function of the header', () => {
  const declared = new Set([...HEADER.matchAll(/^[\w\s*]*?\b(xg_\w+)\(/gm)].map((m) => m[1]));
  assert.deepEqual(new Set(native.DECLARATIONS.map(([name]) => name)), declared);
  for (const [name] of native.DECLARATIONS) assert.equal(typeof native.fn[name], 'function', name);
});

test("the constants are the header's", () => {
  const define = (name) => {
    const m = HEADER.match(new RegExp(`#define ${name} (\\S+)`));
    assert.ok(m, name);
    return m[1];
  };
  assert.equal(native.EXPECTED_ABI_VERSION, Number(define('XG_ABI_VERSION')));
  assert.equal(native.XG_MAX_TENANT_ID_BYTES, Number(define('XG_MAX_TENANT_ID_BYTES')));
  assert.equal(native.XG_MAX_STORE_DEADLINE_MS, Number(define('XG_MAX_STORE_DEADLINE_MS')));
  assert.equal(native.XG_MAX_KEY_PREFIX_BYTES, Number(define('XG_MAX_KEY_PREFIX_BYTES')));
  for (const name of [
    'XG_STATS_REASONS',
    'XG_STATS_FAILURE_POLICIES',
    'XG_STATS_WAIT_BUCKETS',
    'XG_STATS_CATEGORIES',
    'XG_STATS_RATE_LIMIT_PROBLEMS',
    'XG_STATS_STORE_FAILURE_KINDS',
  ]) {
    assert.equal(native[name], Number(define(name)), name);
  }
  assert.equal(native.XG_CLOCK_MONOTONIC, Number(define('XG_CLOCK_MONOTONIC')));
  assert.equal(native.XG_CLOCK_MANUAL, Number(define('XG_CLOCK_MANUAL')));
  for (const name of ['XG_STORED_LIMITS_MUST_MATCH', 'XG_STORED_LIMITS_REPLACE', 'XG_STORED_LIMITS_ADOPT']) {
    assert.equal(native[name], Number(define(name)), name);
  }
  assert.equal(define('XG_NO_DEADLINE'), 'UINT64_MAX');
  assert.equal(native.XG_NO_DEADLINE, 2n ** 64n - 1n);
  const enumValue = (name) => Number(HEADER.match(new RegExp(`\\b${name} = (\\d+)`))[1]);
  assert.equal(native.XG_WAIT_OUTCOME_GRANTED, enumValue('XG_WAIT_OUTCOME_GRANTED'));
  assert.equal(native.XG_WAIT_OUTCOME_ASK_AGAIN, enumValue('XG_WAIT_OUTCOME_ASK_AGAIN'));
  assert.equal(native.XG_WAIT_OUTCOME_GIVE_UP, enumValue('XG_WAIT_OUTCOME_GIVE_UP'));
  assert.equal(native.XG_TRANSPORT_FAILURE_NOT_SENT, enumValue('XG_TRANSPORT_FAILURE_NOT_SENT'));
  assert.equal(native.XG_TRANSPORT_FAILURE_NO_RESPONSE, enumValue('XG_TRANSPORT_FAILURE_NO_RESPONSE'));
  assert.equal(xg.version, JSON.parse(fs.readFileSync(path.join(PACKAGE, 'package.json'), 'utf8')).version);
});

test("every vocabulary union is the library's words", () => {
  const lists = {
    xg_category_name: vocabulary.CATEGORIES,
    xg_action_name: vocabulary.ACTIONS,
    xg_rate_limit_problem_name: vocabulary.RATE_LIMIT_PROBLEMS,
    xg_auth_problem_name: vocabulary.AUTH_PROBLEMS,
    xg_reason_name: vocabulary.REASONS,
    xg_give_up_name: vocabulary.GIVE_UPS,
    xg_failure_policy_name: vocabulary.FAILURE_POLICIES,
    xg_store_failure_kind_name: vocabulary.STORE_FAILURE_KINDS,
  };
  for (const [fn, words] of Object.entries(lists)) {
    const library = [];
    for (let code = 0; code < 256; code++) {
      const word = native.fn[fn](code);
      if (word !== null) library.push(word);
    }
    assert.deepEqual([...words].sort(), library.sort(), fn);
  }
});

test('one error class per status code of the header', () => {
  const codes = [...HEADER.matchAll(/#define XG_STATUS_(\w+) (\d+)/g)].filter((m) => m[1] !== 'OK');
  assert.deepEqual(
    [...errors.STATUS_CODES].sort((a, b) => a - b),
    codes.map((m) => Number(m[2])).sort((a, b) => a - b),
  );
  for (const [, name, code] of codes) {
    const error = errors.errorFor(Number(code), name.toLowerCase(), 'message');
    assert.equal(error.status, Number(code));
    assert.equal(native.statusName(Number(code)), name.toLowerCase());
    assert.ok(error instanceof xg.XeroGuardError && error instanceof Error);
    assert.notEqual(error.constructor, xg.XeroGuardError, `${name} has a class of its own`);
  }
  assert.ok(new xg.StoreUnavailableError('x') instanceof xg.XeroGuardError);
  assert.equal(new xg.InvalidArgumentError('x').status, 3);
});

test('a library serving another ABI, or older than the package, is refused with what to do', () => {
  assert.equal(native.refusal('lib.so', '0.1.0', 3, 2), null);
  assert.equal(native.refusal('lib.so', '0.2.0', 4, 3), null);
  assert.match(
    native.refusal('lib.so', '0.9.0', 5, 4),
    /serves ABI 4 to 5 but this package needs ABI 3; install the library/,
  );
  assert.match(native.refusal('lib.so', '0.1.0', 2, 2), /serves ABI 2 but this package needs ABI 3/);
  assert.match(native.refusal('lib.so', '0.0.9', 3, 2), /is version 0\.0\.9, older than this package \(0\.1\.0\)/);
  assert.match(native.refusal('lib.so', '0.0.9', 3, 2), /XEROGUARD_LIBRARY/);
});

function load(env) {
  return spawnSync(
    process.execPath,
    ['-e', 'const x = require(process.argv[1]); console.log(x.libraryPath)', PACKAGE],
    {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    },
  );
}

test('a library that cannot be found names every place tried and the fix', () => {
  // A copy of the package without its bundled library: only XEROGUARD_LIBRARY is left, and it is wrong.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xg-pkg-'));
  try {
    fs.cpSync(path.join(PACKAGE, 'dist'), path.join(dir, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(PACKAGE, 'package.json'), path.join(dir, 'package.json'));
    fs.symlinkSync(path.join(PACKAGE, 'node_modules'), path.join(dir, 'node_modules'));
    const done = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', dir], {
      env: { ...process.env, XEROGUARD_LIBRARY: '/nonexistent/libxeroguard.so' },
      encoding: 'utf8',
    });
    assert.notEqual(done.status, 0);
    assert.match(
      done.stderr,
      /LibraryLoadError: xeroguard: cannot load the native library libxeroguard\.so for linux-x64/,
    );
    assert.match(done.stderr, /XEROGUARD_LIBRARY: \/nonexistent\/libxeroguard\.so \(/);
    assert.match(done.stderr, /@xeroguard\/linux-x64: not installed/);
    assert.match(
      done.stderr,
      /the copy bundled in this package: .*prebuilds\/linux-x64\/libxeroguard\.so does not exist/,
    );
    assert.match(
      done.stderr,
      /Fix: set XEROGUARD_LIBRARY to the path of a libxeroguard\.so of version 0\.1\.0 or later/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('XEROGUARD_LIBRARY comes first; a broken one falls back to the bundled copy with a warning', () => {
  const bundled = native.BUNDLED_LIBRARY;
  assert.ok(fs.existsSync(bundled), `${bundled} is missing: scripts/build-node-package.sh puts it there`);
  const override = load({ XEROGUARD_LIBRARY: path.join(REPO, 'target', 'release', 'libxeroguard.so') });
  if (fs.existsSync(path.join(REPO, 'target', 'release', 'libxeroguard.so'))) {
    assert.equal(override.status, 0, override.stderr);
    assert.equal(override.stdout.trim(), path.join(REPO, 'target', 'release', 'libxeroguard.so'));
  }
  const broken = load({ XEROGUARD_LIBRARY: '/nonexistent/libxeroguard.so' });
  assert.equal(broken.status, 0, broken.stderr);
  assert.equal(broken.stdout.trim(), bundled);
  assert.match(broken.stderr, /XEROGUARD_LIBRARY=\/nonexistent\/libxeroguard\.so could not be loaded; using /);
  const plain = load({ XEROGUARD_LIBRARY: '' });
  assert.equal(plain.stdout.trim(), bundled);
  assert.equal(plain.stderr, '');
});

test('the loaded library is the one the package checked', () => {
  assert.equal(xg.libraryVersion, native.libraryVersion);
  assert.ok(
    native.refusal(xg.libraryPath, xg.libraryVersion, native.fn.xg_abi_version(), native.fn.xg_abi_oldest_version()) ===
      null,
  );
  assert.equal(xg.ABI_VERSION, 3);
});

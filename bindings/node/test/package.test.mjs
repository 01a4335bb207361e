// The npm tarball (scripts/build-node-package.sh; its path in XEROGUARD_NODE_TARBALL) installed with
// `npm install ./xeroguard-VERSION.tgz` in an empty project by a PATH that has node and npm and nothing else (no
// cargo, no compiler): require() and import both load it, classify and acquire run on its bundled library.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

import { PACKAGE, run } from './helpers.mjs';

const tarball = process.env.XEROGUARD_NODE_TARBALL;

function sandboxPath(dir) {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const which = (tool) => {
    for (const entry of (process.env.PATH ?? '').split(':')) {
      const candidate = path.join(entry, tool);
      if (entry && fs.existsSync(candidate)) return fs.realpathSync(candidate);
    }
    throw new Error(`${tool} is not on PATH`);
  };
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  // npm's own launcher script; npm runs package scripts with sh.
  fs.symlinkSync(which('npm'), path.join(bin, 'npm'));
  fs.symlinkSync(which('sh'), path.join(bin, 'sh'));
  return bin;
}

const CJS = `
const xg = require('xeroguard');
const c = xg.classify(429, { 'Retry-After': '17', 'X-Rate-Limit-Problem': 'minute' }, '');
const limiter = new xg.Limiter();
limiter.acquire('tenant-a').then((d) => {
  const lib = xg.libraryPath;
  console.log(JSON.stringify({ category: c.category, wait: c.recommendedWaitMs, granted: d.granted, lib }));
  limiter.close();
});
`;
const ESM = `
import { classify, Limiter, libraryPath } from 'xeroguard';
const body = JSON.stringify({ Type: 'ValidationException',
  Elements: [{ ValidationErrors: [{ Message: 'Email address must be valid.' }] }] });
const c = classify(400, { 'Content-Type': 'application/json' }, body);
const limiter = new Limiter();
const d = await limiter.acquire('tenant-a');
const lib = libraryPath;
console.log(JSON.stringify({ category: c.category, messages: c.validationMessages, granted: d.granted, lib }));
limiter.close();
`;

test('the tarball installs without cargo or a compiler, and loads by require() and import', async () => {
  assert.ok(tarball, 'XEROGUARD_NODE_TARBALL is not set: bindings/node/run-tests.sh builds the tarball and sets it');
  assert.ok(fs.existsSync(tarball), `${tarball} does not exist`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xg-npm-install-'));
  try {
    const bin = sandboxPath(dir);
    const project = path.join(dir, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(
      path.join(project, 'package.json'),
      '{ "name": "empty-project", "version": "1.0.0", "private": true }\n',
    );
    const env = {
      HOME: dir,
      PATH: bin,
      npm_config_cache: path.join(dir, 'npm-cache'),
      npm_config_update_notifier: 'false',
    };
    for (const tool of ['cargo', 'cc', 'gcc', 'make', 'python3']) {
      assert.ok(!fs.existsSync(path.join(bin, tool)), `${tool} must not be on the install's PATH`);
    }
    await run('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: project, env });
    const installed = path.join(project, 'node_modules', 'xeroguard');
    const bundled = path.join(installed, 'prebuilds', 'linux-x64', 'libxeroguard.so');
    assert.ok(fs.existsSync(bundled));
    const cjs = JSON.parse(await run('node', ['-e', CJS], { cwd: project, env }));
    assert.deepEqual(cjs, { category: 'rate_limited', wait: 17000, granted: true, lib: fs.realpathSync(bundled) });
    fs.writeFileSync(path.join(project, 'main.mjs'), ESM);
    const esm = JSON.parse(await run('node', ['main.mjs'], { cwd: project, env }));
    assert.deepEqual(esm, {
      category: 'validation_error',
      messages: ['Email address must be valid.'],
      granted: true,
      lib: fs.realpathSync(bundled),
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the tarball carries what the package needs and nothing of the checkout', async () => {
  assert.ok(tarball, 'XEROGUARD_NODE_TARBALL is not set');
  const listing = (await run('tar', ['tzf', tarball])).trim().split('\n').sort();
  for (const needed of [
    'package/package.json',
    'package/README.md',
    'package/LICENSE',
    'package/dist/cjs/index.js',
    'package/dist/cjs/index.d.ts',
    'package/dist/cjs/worker.js',
    'package/dist/esm/index.js',
    'package/dist/esm/index.d.ts',
    'package/dist/esm/package.json',
    'package/prebuilds/linux-x64/libxeroguard.so',
  ]) {
    assert.ok(listing.includes(needed), `${needed} is missing from the tarball`);
  }
  assert.deepEqual(
    listing.filter((f) => /node_modules|\/src\/|\/test\/|\.tgz$/.test(f)),
    [],
  );
  const version = JSON.parse(fs.readFileSync(path.join(PACKAGE, 'package.json'), 'utf8')).version;
  assert.equal(path.basename(tarball), `xeroguard-${version}.tgz`);
});

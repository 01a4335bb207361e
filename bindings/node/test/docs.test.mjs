// tsc --strict --noEmit over examples/ and the `ts` blocks of this README and the repository's README, as ES modules
// importing the package by its name (the package's own exports resolve it: the types users get).

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

import { PACKAGE, REPO, run } from './helpers.mjs';

export function tsBlocks(file) {
  const blocks = [];
  let open = null;
  fs.readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (open === null && /^```ts( fragment)?$/.test(line)) open = { line: i + 1, code: [] };
      else if (open !== null && line === '```') {
        blocks.push({ line: open.line, code: `${open.code.join('\n')}\n` });
        open = null;
      } else if (open !== null) open.code.push(line);
    });
  return blocks;
}

test('the examples and the README ts blocks compile with tsc --strict', async () => {
  const dir = path.join(PACKAGE, 'test', '.docs-check');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  try {
    const files = [];
    for (const [name, doc] of [
      ['node', path.join(PACKAGE, 'README.md')],
      ['root', path.join(REPO, 'README.md')],
    ]) {
      for (const block of tsBlocks(doc)) {
        const file = path.join(dir, `${name}_readme_line_${block.line}.mts`);
        fs.writeFileSync(file, block.code);
        files.push(file);
      }
    }
    assert.ok(files.length >= 5, `only ${files.length} ts blocks found`);
    for (const example of fs.readdirSync(path.join(PACKAGE, 'examples'))) {
      fs.copyFileSync(path.join(PACKAGE, 'examples', example), path.join(dir, example));
      files.push(path.join(dir, example));
    }
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify(
        {
          compilerOptions: {
            target: 'ES2022',
            module: 'nodenext',
            moduleResolution: 'nodenext',
            strict: true,
            noEmit: true,
            types: ['node'],
            skipLibCheck: false,
            isolatedModules: true,
          },
          include: ['*.mts'],
        },
        null,
        1,
      ),
    );
    await run(path.join(PACKAGE, 'node_modules', '.bin', 'tsc'), ['-p', dir]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

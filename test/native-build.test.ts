// native/build.cjs, which `npm install @stitch/native` runs: a missing build tool stops it before
// node-gyp with one message naming what is missing and the apt-get command that installs it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { killAll, outcome, ROOT, run, userEnv } from './fixtures/packing.js';

const work = mkdtempSync(join(tmpdir(), 'stitch-native-build-'));
after(() => {
  killAll();
  rmSync(work, { recursive: true, force: true });
});

/** A directory holding only links to the given programs, to be the whole PATH of a build. */
function binDir(name: string, programs: Record<string, string>): string {
  const dir = join(work, name);
  mkdirSync(dir);
  for (const [prog, target] of Object.entries(programs)) symlinkSync(target, join(dir, prog));
  return dir;
}

/** Runs build.cjs with only `dir` on PATH and no tool chosen through the environment. */
function build(dir: string) {
  const { PYTHON: _p, CXX: _c, MAKE: _m, ...env } = userEnv({ PATH: dir });
  return run(process.execPath, [join(ROOT, 'native', 'build.cjs')], { cwd: work, env, timeoutMs: 60_000 });
}

test('without python3, make and a C++ compiler it names all three and one apt-get command', async () => {
  const r = await build(binDir('node-only', { node: process.execPath }));
  assert.equal(r.code, 1, outcome('build.cjs', r));
  assert.match(r.stderr, /cannot build the native addon from source/);
  assert.match(r.stderr, /Missing: python3 .*; make; a C\+\+ compiler \(g\+\+ or clang\+\+\)\./);
  assert.match(r.stderr, /apt-get install -y python3 make g\+\+\n/);
  assert.doesNotMatch(r.stderr + r.stdout, /gyp (info|ERR!)/, 'node-gyp never ran');
});

test('with python3 and make but no compiler it asks for g++ only', async () => {
  const python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], {
    encoding: 'utf8',
  }).trim();
  const make = execFileSync('sh', ['-c', 'command -v make'], { encoding: 'utf8' }).trim();
  const r = await build(binDir('no-compiler', { node: process.execPath, python3: python, make }));
  assert.equal(r.code, 1, outcome('build.cjs', r));
  assert.match(r.stderr, /Missing: a C\+\+ compiler \(g\+\+ or clang\+\+\)\./);
  assert.match(r.stderr, /apt-get install -y g\+\+\n/);
});

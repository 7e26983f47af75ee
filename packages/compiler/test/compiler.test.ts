import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  compileKernel,
  defaultCacheDir,
  generateKernel,
  InvalidKernelSpec,
  type KernelSpec,
  kernelArgs,
  runnableTargets,
  sha256,
} from '../src/index.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'stitch-compiler-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

test('artifacts are content-addressed per target, cached, and described by their manifest', async () => {
  const spec: KernelSpec = { op: 'nn.softmax', rows: null, cols: 16 };
  const v3 = await compileKernel(spec, { target: 'x86-64-v3', cacheDir });
  const base = await compileKernel(spec, { target: 'x86-64', cacheDir });
  assert.notEqual(v3.manifest.hash, base.manifest.hash);
  assert.equal(v3.cached, false);
  const again = await compileKernel(spec, { target: 'x86-64-v3', cacheDir });
  assert.equal(again.cached, true);
  assert.deepEqual(again.manifest, v3.manifest);
  assert.equal(sha256(readFileSync(v3.soPath)), v3.manifest.soSha256);
  assert.deepEqual(v3.manifest.entryPoints, [{ symbol: '_mlir_ciface_softmax', args: kernelArgs(spec) }]);
  assert.match(v3.manifest.toolchain, /clang version 19/);
  assert.match(v3.manifest.pipeline, /-march=x86-64-v3/);
});

test('a cache entry whose shared object no longer matches its manifest is rebuilt', async () => {
  const spec: KernelSpec = { op: 'nn.add', rows: 2, cols: 3 };
  const first = await compileKernel(spec, { target: 'x86-64', cacheDir });
  writeFileSync(first.soPath, 'not an elf');
  const second = await compileKernel(spec, { target: 'x86-64', cacheDir });
  assert.equal(second.cached, false);
  assert.equal(sha256(readFileSync(second.soPath)), second.manifest.soSha256);
});

test("a compile removes what compiles killed half-way left in the cache dir, not a running one's files", async () => {
  // A directory no compile of this process has used yet: the sweep runs once per directory.
  const other = join(cacheDir, 'sweep');
  mkdirSync(other);
  const spec: KernelSpec = { op: 'nn.add', rows: 1, cols: 5 };
  const old = (Date.now() - 2 * 60 * 60 * 1000) / 1000;
  const stale = ['ab.1.x.tmp.so', 'cd.2.y.tmp.json', 'ef.so.3.z.tmp', 'ij.5.v.tmp.o', '--0a1b2c.o'];
  const fresh = ['gh.4.w.tmp.so', '--3d4e5f.o'];
  const kept = ['unrelated.o', 'notes.tmp.txt'];
  for (const name of [...stale, ...fresh, ...kept]) writeFileSync(join(other, name), 'x');
  for (const name of [...stale, ...kept]) utimesSync(join(other, name), old, old);
  const a = await compileKernel(spec, { target: 'x86-64', cacheDir: other });
  const left = readdirSync(other);
  for (const name of stale) assert.ok(!left.includes(name), `${name} was left`);
  for (const name of [...fresh, ...kept]) assert.ok(left.includes(name), `${name} was removed`);
  // The object clang compiled to is removed once linked: only the artifact is new.
  assert.deepEqual(
    left.filter((n) => ![...fresh, ...kept].includes(n)).sort(),
    [`${a.manifest.hash}.json`, `${a.manifest.hash}.so`].sort(),
  );
});

test('matmul uses the tiled, vectorised schedule only when the register tile divides the shape', () => {
  const fast = generateKernel({ op: 'nn.matmul', m: 64, k: 64, n: 64 }, 'x86-64-v4');
  assert.equal(fast.scheduled, true);
  assert.match(fast.mlir, /transform\.loop\.hoist_loop_invariant_subsets/);
  assert.match(fast.mlir, /tile_sizes \[8, 32, 1\]/);
  assert.match(
    generateKernel({ op: 'nn.matmul', m: 48, k: 8, n: 32 }, 'x86-64-v3').mlir,
    /tile_sizes \[6, 16, 1\]/,
  );
  assert.match(
    generateKernel({ op: 'nn.matmul', m: 8, k: 8, n: 32 }, 'x86-64-v3').mlir,
    /tile_sizes \[4, 16, 1\]/,
  );
  const odd = generateKernel({ op: 'nn.matmul', m: 63, k: 64, n: 64 }, 'x86-64-v4');
  assert.equal(odd.scheduled, false);
  assert.match(odd.mlir, /linalg\.generic .*iterator_types = \["parallel", "reduction", "parallel"\]/);
  assert.match(odd.mlir, /fastmath<reassoc,contract>/);
});

test('a matvec reads a large matrix of short rows as four streams, and tiles any other', () => {
  const streams = generateKernel({ op: 'nn.matvec', m: 32000, k: 288 }, 'x86-64-v4');
  assert.equal(streams.scheduled, false);
  assert.match(streams.mlir, /%acc:4 = scf\.for/);
  assert.match(streams.mlir, /%ch = arith\.constant 8000 : index/);
  for (const [m, k] of [
    [4096, 288],
    [4096, 4096],
    [8192, 1032],
  ] as const) {
    const tiled = generateKernel({ op: 'nn.matvec', m, k }, 'x86-64-v4');
    assert.equal(tiled.scheduled, true, `${m}×${k}`);
    assert.doesNotMatch(tiled.mlir, /%acc:4/);
  }
});

test('invalid specs are refused with KERNEL_SPEC before any tool runs', () => {
  const bad: KernelSpec[] = [
    { op: 'nn.matmul', m: 0, k: 2, n: 2 },
    { op: 'nn.rope', seq: 2, heads: 1, headDim: 3, theta: 10000 },
    { op: 'nn.attention_decode', len: null, heads: 3, kvHeads: 2, headDim: 4 },
    { op: 'nn.rmsnorm', rows: 1, dim: 4, eps: 0 },
  ];
  for (const spec of bad) {
    assert.throws(
      () => generateKernel(spec, 'x86-64'),
      (e: unknown) => e instanceof InvalidKernelSpec && e.code === 'KERNEL_SPEC',
    );
  }
});

test('cache dir defaults to $STITCH_KERNEL_CACHE and targets run at or below the host level', () => {
  const saved = process.env.STITCH_KERNEL_CACHE;
  process.env.STITCH_KERNEL_CACHE = '/tmp/somewhere';
  try {
    assert.equal(defaultCacheDir(), '/tmp/somewhere');
  } finally {
    if (saved === undefined) delete process.env.STITCH_KERNEL_CACHE;
    else process.env.STITCH_KERNEL_CACHE = saved;
  }
  assert.deepEqual(runnableTargets('x86-64-v3'), ['x86-64', 'x86-64-v3']);
  assert.deepEqual(runnableTargets(null), []);
});

test('a missing toolchain is a typed TOOLCHAIN_MISSING error', () => {
  // A child process whose PATH holds no LLVM tools; the compiler resolves tools through PATH.
  const src = new URL('../src/index.ts', import.meta.url).href;
  const script = `import { compileKernel } from '${src}';
    compileKernel({ op: 'nn.add', rows: 1, cols: 1 }, { target: 'x86-64', cacheDir: '${cacheDir}' })
      .then(() => console.log('compiled'), (e) => console.log(e.code));`;
  const out = execFileSync(
    process.execPath,
    ['--import', '@stitch/typescript-loader', '--input-type=module', '-e', script],
    {
      env: { ...process.env, PATH: '/nonexistent' },
    },
  );
  assert.equal(out.toString().trim(), 'TOOLCHAIN_MISSING');
});

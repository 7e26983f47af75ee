import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultCacheDir, generateKernel, type KernelSpec, runnableTargets } from '@stitch/compiler';
import { KernelRuntime, probeHost, reference, threadedKernel } from '../src/index.js';

// Shared with every other test and the demo: a kernel compiled once is not compiled again.
const cacheDir = defaultCacheDir();
const runtime = new KernelRuntime({ threads: 2 });
const seed = Number(process.env.STITCH_TEST_SEED ?? Date.now() % 100000);
let state = seed;
const floats = (n: number) =>
  Float32Array.from({ length: n }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state / 2 ** 32) * 2 - 1;
  });
const maxAbs = (v: Float32Array) => v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

// B over 2 MiB takes the packed schedule. k = 1030 divides no cache block evenly (k blocks of
// 206); k = 1536 runs three full 512-k blocks, and its 352 columns make 11 panels of 32 on
// AVX-512 (one panel per cache block).
const SHAPES = [
  [24, 1030, 640],
  [16, 1536, 352],
] as const;
const spec: KernelSpec = { op: 'nn.matmul', m: 24, k: 1030, n: 640 };

test('a matmul with a large B packs it (the schedule copies B into panels)', () => {
  for (const target of runnableTargets(probeHost().x86Level)) {
    const { mlir } = generateKernel(spec, target);
    assert.match(mlir, /linalg\.transpose/, target);
    assert.doesNotMatch(generateKernel({ ...spec, k: 64 }, target).mlir, /linalg\.transpose/, target);
  }
});

for (const [m, k, n] of SHAPES)
  for (const target of runnableTargets(probeHost().x86Level)) {
    test(`the packed ${m}×${k}×${n} matmul equals the reference on ${target}, on 1 and 2 threads (seed ${seed})`, async () => {
      const spec: KernelSpec = { op: 'nn.matmul', m, k, n };
      assert.match(generateKernel(spec, target).mlir, /linalg\.transpose/);
      const [a, b] = [floats(m * k), floats(k * n)];
      const want = reference.matmul(a, b, m, k, n);
      // Rounding scales with the sums of |terms| (the kernel tests' dot-product bound).
      const bound = 1e-4 * maxAbs(reference.matmul(a.map(Math.abs), b.map(Math.abs), m, k, n));
      const outs = [];
      for (const threads of [1, 2]) {
        const c = new Float32Array(m * n).fill(Number.NaN);
        await (await threadedKernel(runtime, spec, { target, cacheDir, threads })).run([a, b, c]);
        const err = c.reduce((e, x, i) => Math.max(e, Math.abs(x - want[i]!)), 0);
        assert.ok(err <= bound, `${threads} thread(s): max error ${err} > ${bound}`);
        outs.push(c);
      }
      assert.deepEqual(outs[1], outs[0]);
    });
  }

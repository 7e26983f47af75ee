import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileKernel, defaultCacheDir, InvalidKernelSpec, runnableTargets } from '@stitch/compiler';
import { KernelRuntime, KernelShapeMismatch, probeHost, reference } from '../src/index.js';

// Shared with every other test and the demo: a kernel compiled once is not compiled again.
const cacheDir = defaultCacheDir();
const runtime = new KernelRuntime();
const seed = Number(process.env.STITCH_TEST_SEED ?? Date.now() % 100000);
let state = seed;
const rand = () => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return state / 2 ** 32;
};

for (const target of runnableTargets(probeHost().x86Level)) {
  test(`q8_0 matvec equals the reference on ${target} (seed ${seed})`, async () => {
    for (const [m, k] of [
      [1, 32],
      [3, 64],
      [6, 96],
      [37, 288],
      [64, 512],
    ] as const) {
      const kernel = runtime.load(await compileKernel({ op: 'nn.matvec_q8', m, k }, { target, cacheDir }));
      const q = Int8Array.from({ length: m * k }, () => Math.floor(rand() * 255) - 127);
      const scales = Float32Array.from({ length: (m * k) / 32 }, () => rand() * 0.02);
      const x = Float32Array.from({ length: k }, () => rand() * 2 - 1);
      const y = new Float32Array(m).fill(Number.NaN);
      await kernel.run([q, scales, x, y]);
      const want = reference.matvecQ8(q, scales, x, m, k);
      const magnitude = reference.matvecQ8(q.map(Math.abs), scales, x.map(Math.abs), m, k);
      const bound = 1e-4 * magnitude.reduce((a, b) => Math.max(a, b), 0);
      const err = y.reduce((e, v, i) => Math.max(e, Math.abs(v - want[i]!)), 0);
      assert.ok(err <= bound, `${m}×${k}: max |out − ref| ${err} > ${bound}`);
    }
  });
}

test('a q8_0 matvec above 8 MiB, its rows read as four streams, gives the bits of its rows read four by four', async () => {
  const target = runnableTargets(probeHost().x86Level).at(-1)!;
  // 2 112 × 4 096 int8 is 8.7 MB; its first 256 rows are grouped as neighbours.
  const [m, k, head] = [2112, 4096, 256];
  const q = Int8Array.from({ length: m * k }, () => Math.floor(rand() * 255) - 127);
  const scales = Float32Array.from({ length: (m * k) / 32 }, () => rand() * 0.02);
  const x = Float32Array.from({ length: k }, () => rand() * 2 - 1);
  const run = async (rows: number) => {
    const kernel = runtime.load(
      await compileKernel({ op: 'nn.matvec_q8', m: rows, k }, { target, cacheDir }),
    );
    const y = new Float32Array(rows).fill(Number.NaN);
    await kernel.run([q.subarray(0, rows * k), scales.subarray(0, (rows * k) / 32), x, y]);
    return y;
  };
  const [whole, first] = [await run(m), await run(head)];
  const want = reference.matvecQ8(q, scales, x, m, k);
  const magnitude = reference.matvecQ8(q.map(Math.abs), scales, x.map(Math.abs), m, k);
  const bound = 1e-4 * magnitude.reduce((a, b) => Math.max(a, b), 0);
  assert.ok(whole.every((v, i) => Math.abs(v - want[i]!) <= bound));
  for (let r = 0; r < head; r++)
    assert.ok(Object.is(whole[r], first[r]), `row ${r}: ${whole[r]} against ${first[r]}`);
});

test('q8_0 matvec: int8 weights must come as an Int8Array; k must be a multiple of 32', async () => {
  const options = { target: probeHost().x86Level ?? 'x86-64', cacheDir } as const;
  const kernel = runtime.load(await compileKernel({ op: 'nn.matvec_q8', m: 2, k: 32 }, options));
  const scales = new Float32Array(2);
  const x = new Float32Array(32);
  assert.throws(
    () => kernel.run([new Float32Array(64), scales, x, new Float32Array(2)]),
    KernelShapeMismatch,
  );
  assert.throws(() => kernel.run([new Int8Array(63), scales, x, new Float32Array(2)]), KernelShapeMismatch);
  await assert.rejects(compileKernel({ op: 'nn.matvec_q8', m: 2, k: 48 }, options), InvalidKernelSpec);
});

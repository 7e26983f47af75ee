import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { generateKernel, type KernelSpec, runnableTargets } from '@stitch/compiler';
import { KernelRuntime, probeHost, reference, threadedKernel } from '../src/index.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'stitch-packed-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));
const runtime = new KernelRuntime({ threads: 2 });
const seed = Number(process.env.STITCH_TEST_SEED ?? Date.now() % 100000);
let state = seed;
const floats = (n: number) =>
  Float32Array.from({ length: n }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state / 2 ** 32) * 2 - 1;
  });
const maxAbs = (v: Float32Array) => v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

// B over 2 MiB (1030 × 640 floats) takes the packed schedule; k = 1030 divides no cache block evenly.
const [m, k, n] = [24, 1030, 640];
const spec: KernelSpec = { op: 'nn.matmul', m, k, n };

test('a matmul with a large B packs it (the schedule copies B into panels)', () => {
  for (const target of runnableTargets(probeHost().x86Level)) {
    const { mlir } = generateKernel(spec, target);
    assert.match(mlir, /linalg\.transpose/, target);
    assert.doesNotMatch(generateKernel({ ...spec, k: 64 }, target).mlir, /linalg\.transpose/, target);
  }
});

for (const target of runnableTargets(probeHost().x86Level)) {
  test(`the packed matmul equals the reference on ${target}, on 1 and 2 threads (seed ${seed})`, async () => {
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

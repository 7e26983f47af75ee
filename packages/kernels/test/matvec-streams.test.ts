import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileKernel, defaultCacheDir, runnableTargets } from '@stitch/compiler';
import { KernelRuntime, probeHost, threadedKernel } from '../src/index.js';

const cacheDir = defaultCacheDir();
const runtime = new KernelRuntime({ threads: 2 });

// 8 192 rows of 288 columns is 9.4 MB: rows this short in a matrix this large are read as streams.
// Its first 1 024 rows (1.2 MB) and its halves (4.7 MB) are tiled.
const [m, k, head] = [8192, 288, 1024];
let state = 11;
const rand = () => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return (state / 2 ** 32) * 2 - 1;
};
const a = Float32Array.from({ length: m * k }, rand);
const x = Float32Array.from({ length: k }, rand);

const run = async (rows: number, target: (typeof targets)[number], input = a) => {
  const kernel = runtime.load(await compileKernel({ op: 'nn.matvec', m: rows, k }, { target, cacheDir }));
  const y = new Float32Array(rows);
  await kernel.run([input.subarray(0, rows * k), x, y]);
  return y;
};
const targets = runnableTargets(probeHost().x86Level);

for (const target of targets) {
  test(`a large matrix of short rows read as streams gives the tiled kernel's bits (${target})`, async () => {
    const y = await run(m, target);
    for (let r = 0; r < m; r++) {
      let exact = 0;
      let magnitude = 0;
      for (let j = 0; j < k; j++) {
        exact += a[r * k + j]! * x[j]!;
        magnitude += Math.abs(a[r * k + j]! * x[j]!);
      }
      // k roundings of at most 2^-24 of a partial sum each.
      assert.ok(Math.abs(y[r]! - exact) <= k * 2 ** -23 * magnitude, `row ${r}: ${y[r]} against ${exact}`);
    }
    const tiled = await run(head, target);
    for (let r = 0; r < head; r++)
      assert.ok(Object.is(y[r], tiled[r]), `row ${r}: ${y[r]} against ${tiled[r]}`);
  });
}

test('the streams kernel on one thread and tiled halves on two give the same bits', async () => {
  const target = targets[targets.length - 1]!;
  const whole = await run(m, target);
  const split = await threadedKernel(runtime, { op: 'nn.matvec', m, k }, { target, cacheDir, threads: 2 });
  const y = new Float32Array(m);
  await split.run([a, x, y]);
  for (let r = 0; r < m; r++) assert.ok(Object.is(y[r], whole[r]), `row ${r}: ${y[r]} against ${whole[r]}`);
});

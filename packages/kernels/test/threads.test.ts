import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { compileKernel, defaultCacheDir, type KernelSpec, runnableTargets } from '@stitch/compiler';
import type { RawKernelPart } from '@stitch/native';
import {
  fusedDecode,
  type KernelArray,
  KernelOptionsInvalid,
  KernelRuntime,
  KernelShapeMismatch,
  kernelOps,
  Llama,
  probeHost,
  splitRows,
  syntheticWeights,
  threadedKernel,
} from '../src/index.js';

// Shared with every other test and the demo: a kernel compiled once is not compiled again.
const cacheDir = defaultCacheDir();
const runtime = new KernelRuntime({ threads: 4 });
const seed = Number(process.env.STITCH_TEST_SEED ?? Date.now() % 100000);
let state = seed;
const rand = () => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return state / 2 ** 32 - 0.5;
};
const f32 = (n: number) => Float32Array.from({ length: n }, rand);

/** Inputs for a spec, and how long its output is (given the row count of dynamic specs). */
const CASES: { spec: KernelSpec; inputs: () => KernelArray[]; out: number }[] = [
  {
    spec: { op: 'nn.matmul', m: 64, k: 96, n: 128 },
    inputs: () => [f32(64 * 96), f32(96 * 128)],
    out: 64 * 128,
  },
  {
    spec: { op: 'nn.matmul', m: 40, k: 32, n: 32 },
    inputs: () => [f32(40 * 32), f32(32 * 32)],
    out: 40 * 32,
  },
  {
    spec: { op: 'nn.matmul', m: null, k: 48, n: 24, transposeB: true },
    inputs: () => [f32(13 * 48), f32(24 * 48)],
    out: 13 * 24,
  },
  { spec: { op: 'nn.matvec', m: 256, k: 64 }, inputs: () => [f32(256 * 64), f32(64)], out: 256 },
  { spec: { op: 'nn.matvec', m: 100, k: 36 }, inputs: () => [f32(3600), f32(36)], out: 100 },
  {
    spec: { op: 'nn.matvec_q8', m: 72, k: 64 },
    inputs: () => [Int8Array.from({ length: 72 * 64 }, () => Math.round(rand() * 250)), f32(144), f32(64)],
    out: 72,
  },
  {
    spec: { op: 'nn.rmsnorm', rows: null, dim: 48, eps: 1e-5 },
    inputs: () => [f32(7 * 48), f32(48)],
    out: 7 * 48,
  },
  { spec: { op: 'nn.softmax', rows: null, cols: 33 }, inputs: () => [f32(9 * 33)], out: 9 * 33 },
  { spec: { op: 'nn.add', rows: null, cols: 16 }, inputs: () => [f32(5 * 16), f32(5 * 16)], out: 5 * 16 },
  {
    spec: { op: 'nn.embedding', vocab: 10, dim: 8, count: null },
    inputs: () => [f32(80), Int32Array.from([3, 9, 0, 4, 4, 7, 1])],
    out: 7 * 8,
  },
];

for (const target of runnableTargets(probeHost().x86Level)) {
  test(`threaded results equal single-threaded on ${target} (seed ${seed})`, async () => {
    for (const { spec, inputs, out } of CASES) {
      const args = inputs();
      const one = new Float32Array(out);
      await (await threadedKernel(runtime, spec, { target, cacheDir, threads: 1 })).run([...args, one]);
      for (const threads of [2, 3, 4]) {
        const many = new Float32Array(out).fill(Number.NaN);
        const kernel = await threadedKernel(runtime, spec, { target, cacheDir, threads });
        assert.ok(kernel.threads > 1 && kernel.threads <= threads);
        await kernel.run([...args, many]);
        assert.deepEqual(many, one, `${spec.op} ${JSON.stringify(spec)} on ${threads} threads`);
      }
    }
  });
}

test('row slices cover every row once, aligned but for the last', () => {
  assert.deepEqual(splitRows(1024, 2, 8), [
    [0, 512],
    [512, 512],
  ]);
  assert.deepEqual(splitRows(40, 3, 8), [
    [0, 16],
    [16, 16],
    [32, 8],
  ]);
  assert.deepEqual(splitRows(5, 4, 8), [[0, 5]]);
  for (let total = 1; total < 70; total++) {
    for (const parts of [1, 2, 3, 7]) {
      const slices = splitRows(total, parts, 4);
      assert.ok(slices.length <= parts);
      let next = 0;
      for (const [start, rows] of slices) {
        assert.equal(start, next);
        next += rows;
      }
      assert.equal(next, total);
    }
  }
});

test('threads beyond the budget, or an op that cannot be split, are refused', async () => {
  const target = 'x86-64';
  const spec: KernelSpec = { op: 'nn.matvec', m: 16, k: 16 };
  await assert.rejects(
    threadedKernel(new KernelRuntime({ threads: 2 }), spec, { target, threads: 3 }),
    KernelOptionsInvalid,
  );
  await assert.rejects(threadedKernel(runtime, spec, { target, threads: 0 }), KernelOptionsInvalid);
  await assert.rejects(
    threadedKernel(
      runtime,
      { op: 'nn.attention_decode', len: null, heads: 2, kvHeads: 1, headDim: 4 },
      { target, cacheDir, threads: 2 },
    ),
    KernelOptionsInvalid,
  );
  const emb = await threadedKernel(
    runtime,
    { op: 'nn.embedding', vocab: 4, dim: 2, count: null },
    { target, cacheDir, threads: 2 },
  );
  assert.throws(() => emb.run([f32(8), Int32Array.from([0, 4]), new Float32Array(4)]), KernelShapeMismatch);
});

test('runs wider than the budget wait for threads, and all finish correct', async () => {
  const target = 'x86-64';
  const small = new KernelRuntime({ threads: 2 });
  const kernel = await threadedKernel(
    small,
    { op: 'nn.add', rows: null, cols: 64 },
    { target, cacheDir, threads: 2 },
  );
  const runs = Array.from({ length: 6 }, (_, i) => {
    const a = new Float32Array(32 * 64).fill(i);
    const out = new Float32Array(a.length);
    return kernel.run([a, a, out]).then(() => out.every((v) => v === 2 * i));
  });
  assert.deepEqual(await Promise.all(runs), Array(6).fill(true));
  assert.equal(small.calls, 6);
});

test('the addon refuses a slice that runs past its array', async () => {
  const native = createRequire(import.meta.url)('@stitch/native') as {
    runKernelParts(parts: RawKernelPart[]): Promise<void>;
  };
  const artifact = await compileKernel({ op: 'nn.add', rows: null, cols: 4 }, { target: 'x86-64', cacheDir });
  const { handle } = runtime.load(artifact);
  const a = new Float32Array(8);
  const part = (offset: number) => ({
    handle,
    args: [a, a, a].map((data) => ({ data, shape: [1, 4], offset })),
  });
  await native.runKernelParts([part(0), part(4)]);
  for (const offset of [5, -1, 9])
    assert.throws(() => native.runKernelParts([part(0), part(offset)]), RangeError);
});

test('a Llama on 2 threads (linear layers and the fused classifier split) decodes the same logits as on 1', async () => {
  const config = { dim: 64, hiddenDim: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 72, seqLen: 12 };
  const weights = syntheticWeights(config, 5);
  const target = probeHost().x86Level ?? 'x86-64';
  const build = async (threads: number) => {
    const rt = new KernelRuntime({ threads });
    const opts = { target, cacheDir, threads };
    const ops = await kernelOps(config, rt, opts);
    return [new Llama(weights, ops), new Llama(weights, ops, await fusedDecode(weights, rt, opts))];
  };
  const [one, two] = await Promise.all([build(1), build(2)]);
  const prompt = [1, 2, 3];
  for (const m of [...one!, ...two!]) await m.prefill(prompt);
  for (let t = 0; t < 4; t++) {
    const [u1, f1, u2, f2] = await Promise.all([...one!, ...two!].map((m) => m.decode((t * 5) % 72)));
    assert.deepEqual(u2, u1, `unfused, step ${t}`);
    assert.deepEqual(f2, f1, `fused, step ${t}`);
  }
});

test('a threaded run leaves the event loop free', async () => {
  // Baseline-ISA loops matmul (rows dynamic), 2 GFLOP per run split 2 ways: milliseconds or more.
  const n = 1024;
  const spec: KernelSpec = { op: 'nn.matmul', m: null, k: n, n, transposeB: true };
  const kernel = await threadedKernel(runtime, spec, { target: 'x86-64', cacheDir, threads: 2 });
  const a = new Float32Array(n * n).fill(1);
  const c = new Float32Array(n * n);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  let mostTicksInOneRun = 0;
  try {
    for (const t0 = performance.now(); performance.now() - t0 < 300; ) {
      ticks = 0;
      await kernel.run([a, a, c]);
      mostTicksInOneRun = Math.max(mostTicksInOneRun, ticks);
    }
  } finally {
    clearInterval(timer);
  }
  assert.ok(c.every((v) => v === n));
  // A run on the event loop would let no timer fire until it returned.
  assert.ok(mostTicksInOneRun >= 3, `at most ${mostTicksInOneRun} timer ticks during one kernel run`);
});

test('threaded runs from several libuv threads at once each get their own pool threads', async () => {
  const spec: KernelSpec = { op: 'nn.matvec', m: 512, k: 256 };
  const kernel = await threadedKernel(runtime, spec, { target: 'x86-64', cacheDir, threads: 2 });
  const a = f32(512 * 256);
  const want = new Float32Array(512);
  await (await threadedKernel(runtime, spec, { target: 'x86-64', cacheDir, threads: 1 })).run([
    a,
    f32(256).fill(1),
    want,
  ]);
  // Budget 4, two threads a run: two runs at a time, on two libuv threads.
  const outs = Array.from({ length: 8 }, () => new Float32Array(512));
  await Promise.all(outs.map((y) => kernel.run([a, new Float32Array(256).fill(1), y])));
  for (const y of outs) assert.deepEqual(y, want);
});

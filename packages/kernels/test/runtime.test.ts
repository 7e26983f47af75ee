import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { compileKernel } from '@stitch/compiler';
import fc from 'fast-check';
import {
  calibrate,
  KernelIntegrityError,
  KernelRuntime,
  KernelShapeMismatch,
  probeHost,
  reference,
} from '../src/index.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'stitch-runtime-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));
const runtime = new KernelRuntime({ threads: 1 });

test('a corrupted artifact is refused with KERNEL_INTEGRITY', async () => {
  const artifact = await compileKernel({ op: 'nn.add', rows: null, cols: 4 }, { target: 'x86-64', cacheDir });
  const bad = join(cacheDir, 'corrupt.so');
  const bytes = readFileSync(artifact.soPath);
  bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
  writeFileSync(bad, bytes);
  assert.throws(
    () => runtime.load({ ...artifact, soPath: bad }),
    (e: unknown) => {
      assert.ok(e instanceof KernelIntegrityError);
      assert.equal(e.code, 'KERNEL_INTEGRITY');
      return true;
    },
  );
  copyFileSync(artifact.soPath, bad);
  assert.ok(runtime.load({ ...artifact, soPath: bad }), 'the intact copy loads');
});

test('shape and dtype mismatches are typed errors before any native call', async () => {
  const artifact = await compileKernel({ op: 'nn.matmul', m: 3, k: 4, n: 5 }, { target: 'x86-64', cacheDir });
  const kernel = runtime.load(artifact);
  const [a, b, c] = [new Float32Array(12), new Float32Array(20), new Float32Array(15)];
  for (const args of [
    [a, b],
    [a, b, new Float32Array(14)],
    [a, new Int32Array(20), c],
    [new Float32Array(13), b, c],
  ]) {
    assert.throws(
      () => kernel.run(args),
      (e: unknown) => e instanceof KernelShapeMismatch && e.code === 'KERNEL_SHAPE',
    );
  }
  const embed = runtime.load(
    await compileKernel(
      { op: 'nn.embedding', vocab: 4, dim: 2, count: null },
      { target: 'x86-64', cacheDir },
    ),
  );
  assert.throws(
    () => embed.run([new Float32Array(8), Int32Array.of(1, 4), new Float32Array(4)]),
    (e: unknown) => e instanceof KernelShapeMismatch,
  );
  await kernel.run([a, b, c]);
});

test('any argument lengths either run correctly or throw KERNEL_SHAPE (property)', async () => {
  const kernel = runtime.load(
    await compileKernel(
      { op: 'nn.attention_decode', len: null, heads: 4, kvHeads: 2, headDim: 4 },
      { target: 'x86-64', cacheDir },
    ),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.integer({ min: 1, max: 5 }).map((len) => [16, 8 * len, 8 * len, 16]),
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 3, maxLength: 5 }),
      ),
      async (lengths) => {
        const arrays = lengths.map((n, i) => Float32Array.from({ length: n }, (_, j) => Math.sin(i * 7 + j)));
        const valid =
          lengths.length === 4 &&
          lengths[0] === 16 &&
          lengths[3] === 16 &&
          lengths[1] === lengths[2] &&
          lengths[1]! > 0 &&
          lengths[1]! % 8 === 0;
        if (!valid) {
          assert.throws(() => kernel.run(arrays), KernelShapeMismatch);
          return;
        }
        await kernel.run(arrays);
        const [q, k, v, out] = arrays as [Float32Array, Float32Array, Float32Array, Float32Array];
        const expected = reference.attentionDecode(q, k, v, k.length / 8, 4, 2, 4);
        assert.ok(reference.relativeError(out, expected) <= 1e-4);
      },
    ),
    { numRuns: 200 },
  );
});

test('arrays over a SharedArrayBuffer run in place; a detached array is refused', async () => {
  const kernel = runtime.load(
    await compileKernel({ op: 'nn.add', rows: null, cols: 3 }, { target: 'x86-64', cacheDir }),
  );
  const shared = new Float32Array(new SharedArrayBuffer(4 * 9), 4 * 3, 6);
  shared.set([1, 2, 3, 4, 5, 6]);
  const out = new Float32Array(6);
  await kernel.run([shared, shared, out]);
  assert.deepEqual([...out], [2, 4, 6, 8, 10, 12]);
  const detached = new Float32Array(6);
  structuredClone(detached.buffer, { transfer: [detached.buffer] });
  assert.throws(() => kernel.run([detached, shared, out]), KernelShapeMismatch);
});

test('a long kernel run does not block the event loop', async () => {
  // Baseline-ISA loops matmul, 2 GFLOP per run: tens of milliseconds or more on any host.
  const n = 1024;
  const spec = { op: 'nn.matmul', m: null, k: n, n, transposeB: true } as const;
  const kernel = runtime.load(await compileKernel(spec, { target: 'x86-64', cacheDir }));
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
  assert.equal(c[0], n);
  // A run on the event loop would let no timer fire until it returned.
  assert.ok(mostTicksInOneRun >= 3, `at most ${mostTicksInOneRun} timer ticks during one kernel run`);
});

test('calibrate reports positive 1-thread and all-thread throughput for the host target', async () => {
  const level = probeHost().x86Level;
  assert.ok(level, 'x86-64 host');
  const cal = await calibrate(level, { cacheDir, threads: 2 });
  assert.equal(cal.target, level);
  assert.equal(cal.threads, 2);
  for (const v of [cal.matmulGflops, cal.matvecGbps, cal.matmulGflopsAllThreads, cal.matvecGbpsAllThreads])
    assert.ok(v > 0 && Number.isFinite(v));
});

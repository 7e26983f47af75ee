import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { compileKernel } from '@stitch/compiler';
import {
  calibrate,
  KernelIntegrityError,
  KernelRuntime,
  KernelShapeMismatch,
  probeHost,
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

test('a long kernel run does not block the event loop', async () => {
  // Loops-lowered (not tiled) matmul: takes a good fraction of a second.
  const m = 300;
  const artifact = await compileKernel(
    { op: 'nn.matmul', m: null, k: m, n: m, transposeB: true },
    { target: 'x86-64', cacheDir },
  );
  const kernel = runtime.load(artifact);
  const a = new Float32Array(m * m).fill(1);
  const c = new Float32Array(m * m);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const t0 = performance.now();
  let runs = 0;
  try {
    while (performance.now() - t0 < 300) {
      await kernel.run([a, a, c]);
      runs++;
    }
  } finally {
    clearInterval(timer);
  }
  const elapsed = performance.now() - t0;
  assert.equal(c[0], m);
  // A blocked loop would tick at most once per run; a free one ticks about every 5 ms.
  assert.ok(ticks > runs + 10, `${ticks} timer ticks during ${runs} runs in ${elapsed.toFixed(0)} ms`);
});

test('calibrate reports positive throughput for the host target', async () => {
  const level = probeHost().x86Level;
  assert.ok(level, 'x86-64 host');
  const cal = await calibrate(level, { cacheDir });
  assert.equal(cal.target, level);
  assert.ok(cal.matmulGflops > 0 && Number.isFinite(cal.matmulGflops));
  assert.ok(cal.matvecGbps > 0 && Number.isFinite(cal.matvecGbps));
});

// pnpm bench kernels: MLIR-compiled kernels per target vs OpenBLAS (1 thread, same core), compile
// times cold and cached. One JSON object per line.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileKernel, type KernelSpec, runnableTargets, type Target } from '@stitch/compiler';
import {
  KernelRuntime,
  kernelOps,
  Llama,
  type LlamaConfig,
  probeHost,
  syntheticWeights,
  timeRuns,
} from '@stitch/kernels';

const here = dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'stitch-bench-'));
const cacheDir = join(work, 'cache');
const runtime = new KernelRuntime({ threads: 1 });
const emit = (o: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ bench: 'kernels', ...o })}\n`);

// Pin to one core so MLIR and OpenBLAS are measured on the same one.
try {
  execFileSync('taskset', ['-cp', '0', String(process.pid)], { stdio: 'ignore' });
} catch {}
const blas = join(work, 'openblas');
execFileSync('clang-19', [
  '-O2',
  join(here, 'openblas.c'),
  '-o',
  blas,
  '-I/usr/include/x86_64-linux-gnu',
  '-lopenblas',
]);
const blasSeconds = (op: string, n: number) =>
  Number(
    execFileSync('taskset', ['-c', '0', blas, op, String(n), '0.5'], {
      env: { ...process.env, OPENBLAS_NUM_THREADS: '1' },
    }).toString(),
  );

async function measure(spec: KernelSpec, target: Target, arrays: Float32Array[]) {
  const t0 = performance.now();
  const artifact = await compileKernel(spec, { target, cacheDir });
  const cold = performance.now() - t0;
  const t1 = performance.now();
  await compileKernel(spec, { target, cacheDir });
  emit({
    op: spec.op,
    target,
    size: JSON.stringify(spec),
    compileMsCold: +cold.toFixed(1),
    compileMsCached: +(performance.now() - t1).toFixed(1),
  });
  const kernel = runtime.load(artifact);
  return timeRuns(() => kernel.run(arrays), 0.5);
}

try {
  const targets = runnableTargets(probeHost().x86Level);
  for (const n of [256, 512, 1024]) {
    const ref = (2 * n ** 3) / blasSeconds('sgemm', n) / 1e9;
    emit({ op: 'openblas.sgemm', target: 'native', size: n, gflops: +ref.toFixed(2), ref: 'self', ratio: 1 });
    const a = new Float32Array(n * n).fill(0.5);
    for (const target of targets) {
      const s = await measure({ op: 'nn.matmul', m: n, k: n, n }, target, [a, a, new Float32Array(n * n)]);
      const gflops = (2 * n ** 3) / s / 1e9;
      emit({
        op: 'nn.matmul',
        target,
        size: n,
        gflops: +gflops.toFixed(2),
        ref: 'openblas.sgemm 1 thread',
        ratio: +(gflops / ref).toFixed(3),
      });
    }
  }
  const n = 4096;
  const ref = (4 * n * n) / blasSeconds('sgemv', n) / 1e9;
  emit({ op: 'openblas.sgemv', target: 'native', size: n, gbps: +ref.toFixed(2), ref: 'self', ratio: 1 });
  const big = new Float32Array(n * n).fill(0.25);
  for (const target of targets) {
    const s = await measure({ op: 'nn.matvec', m: n, k: n }, target, [
      big,
      new Float32Array(n).fill(1),
      new Float32Array(n),
    ]);
    const gbps = (4 * n * n) / s / 1e9;
    emit({
      op: 'nn.matvec',
      target,
      size: n,
      gbps: +gbps.toFixed(2),
      ref: 'openblas.sgemv 1 thread',
      ratio: +(gbps / ref).toFixed(3),
    });
  }
  // Memory-bound row kernels: bytes read + written per call.
  const rows = 64;
  const cols = 4096;
  const x = new Float32Array(rows * cols).fill(0.3);
  const out = new Float32Array(rows * cols);
  for (const target of targets) {
    for (const [spec, arrays, bytes] of [
      [{ op: 'nn.add', rows, cols }, [x, x, out], 12 * rows * cols],
      [{ op: 'nn.softmax', rows, cols }, [x, out], 8 * rows * cols],
      [
        { op: 'nn.rmsnorm', rows, dim: cols, eps: 1e-5 },
        [x, new Float32Array(cols).fill(1), out],
        8 * rows * cols,
      ],
    ] as [KernelSpec, Float32Array[], number][]) {
      const s = await measure(spec, target, arrays);
      emit({
        op: spec.op,
        target,
        size: `${rows}x${cols}`,
        gbps: +(bytes / s / 1e9).toFixed(2),
        ref: 'none',
        ratio: null,
      });
    }
  }
  await transformer(targets[targets.length - 1]!);
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** Tokens/s of the Llama decoder on compiled kernels; weights are synthetic (deterministic, untrained). */
async function transformer(target: Target) {
  const config: LlamaConfig = {
    dim: 256,
    hiddenDim: 768,
    layers: 4,
    heads: 8,
    kvHeads: 4,
    vocab: 512,
    seqLen: 256,
  };
  const model = new Llama(syntheticWeights(config), await kernelOps(config, runtime, { target, cacheDir }));
  const prompt = Array.from({ length: 64 }, (_, i) => (i * 7) % config.vocab);
  const prefillS = await timeRuns(async () => {
    await model.prefill(prompt);
  }, 1);
  const steps = 64;
  const t1 = performance.now();
  for (let i = 0; i < steps; i++) await model.decode(i % config.vocab);
  const decodeS = (performance.now() - t1) / 1000;
  const size = `dim${config.dim} L${config.layers} H${config.heads}/${config.kvHeads} prompt${prompt.length}`;
  const common = { target, size, weights: 'synthetic', ref: 'none', ratio: null };
  emit({ op: 'llama.prefill', ...common, tokensPerS: +(prompt.length / prefillS).toFixed(1) });
  emit({ op: 'llama.decode', ...common, tokensPerS: +(steps / decodeS).toFixed(1) });
}

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
/**
 * OpenBLAS kernels restricted to each target's ISA (OPENBLAS_CORETYPE), so a baseline or AVX2 build
 * is also compared with a library using the same instructions; `native` is OpenBLAS's own choice.
 */
const CORETYPE: Record<Target | 'native', string | undefined> = {
  native: undefined,
  'x86-64': 'Core2',
  'x86-64-v3': 'Haswell',
  'x86-64-v4': 'SkylakeX',
};
const blasSeconds = (op: string, n: number, coretype: string | undefined) =>
  Number(
    execFileSync('taskset', ['-c', '0', blas, op, String(n), '0.5'], {
      env: {
        ...process.env,
        OPENBLAS_NUM_THREADS: '1',
        ...(coretype ? { OPENBLAS_CORETYPE: coretype } : {}),
      },
    }).toString(),
  );

/** OpenBLAS throughput for the native core and per target ISA; emits one line each. */
function blasRefs(op: 'sgemm' | 'sgemv', n: number, targets: Target[]): Record<string, number> {
  const work = op === 'sgemm' ? 2 * n ** 3 : 4 * n * n;
  const unit = op === 'sgemm' ? 'gflops' : 'gbps';
  const refs: Record<string, number> = {};
  for (const key of ['native', ...targets] as const) {
    refs[key] = work / blasSeconds(op, n, CORETYPE[key]) / 1e9;
    const coretype = CORETYPE[key] ?? 'auto';
    emit({
      op: `openblas.${op}`,
      target: key,
      size: n,
      [unit]: +refs[key]!.toFixed(2),
      ref: `self (core ${coretype})`,
      ratio: 1,
    });
  }
  return refs;
}

/** One result line: ratio against native OpenBLAS, and against OpenBLAS limited to the same ISA. */
function emitVsBlas(
  op: string,
  target: Target,
  n: number,
  unit: 'gflops' | 'gbps',
  value: number,
  refs: Record<string, number>,
) {
  const blasOp = unit === 'gflops' ? 'openblas.sgemm' : 'openblas.sgemv';
  emit({
    op,
    target,
    size: n,
    [unit]: +value.toFixed(2),
    ref: `${blasOp} 1 thread, native core`,
    ratio: +(value / refs.native!).toFixed(3),
    ratioSameIsa: +(value / refs[target]!).toFixed(3),
    refSameIsa: `${blasOp} 1 thread, core ${CORETYPE[target]}`,
  });
}

async function measure(spec: KernelSpec, target: Target, arrays: Float32Array[]) {
  const t0 = performance.now();
  const artifact = await compileKernel(spec, { target, cacheDir });
  const cold = performance.now() - t0;
  const t1 = performance.now();
  await compileKernel(spec, { target, cacheDir });
  emit({
    op: `compile ${spec.op}`,
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
    const refs = blasRefs('sgemm', n, targets);
    const a = new Float32Array(n * n).fill(0.5);
    for (const target of targets) {
      const s = await measure({ op: 'nn.matmul', m: n, k: n, n }, target, [a, a, new Float32Array(n * n)]);
      emitVsBlas('nn.matmul', target, n, 'gflops', (2 * n ** 3) / s / 1e9, refs);
    }
  }
  const n = 4096;
  const refs = blasRefs('sgemv', n, targets);
  const big = new Float32Array(n * n).fill(0.25);
  for (const target of targets) {
    const s = await measure({ op: 'nn.matvec', m: n, k: n }, target, [
      big,
      new Float32Array(n).fill(1),
      new Float32Array(n),
    ]);
    emitVsBlas('nn.matvec', target, n, 'gbps', (4 * n * n) / s / 1e9, refs);
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

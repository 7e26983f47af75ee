// pnpm bench kernels: MLIR-compiled kernels per target vs OpenBLAS (1 thread, same core), compile
// times cold and cached, then the best target's kernels split across every core against OpenBLAS
// on as many threads. One JSON object per line. --quick: the best target only, small sizes (the
// test command runs this). --only=matmul,matvec,rows,llama,threads runs those parts;
// --sizes=1024,2048 sets matmul's sizes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  compileKernel,
  defaultCacheDir,
  type KernelSpec,
  runnableTargets,
  type Target,
} from '@stitch/compiler';
import {
  KernelRuntime,
  kernelOps,
  Llama,
  type LlamaConfig,
  probeHost,
  syntheticWeights,
  threadedKernel,
  timeRuns,
} from '@stitch/kernels';
import { CORETYPE, openblas } from './lib/openblas.js';

const QUICK = process.argv.includes('--quick');
const option = (name: string) =>
  process.argv
    .find((a) => a.startsWith(`--${name}=`))
    ?.slice(name.length + 3)
    .split(',');
const only = option('only');
const runs = (part: 'matmul' | 'matvec' | 'rows' | 'llama' | 'threads') => !only || only.includes(part);
const MATMUL_SIZES = option('sizes')?.map(Number) ?? (QUICK ? [256] : [256, 512, 1024, 2048]);
const work = mkdtempSync(join(tmpdir(), 'stitch-bench-'));
const cacheDir = join(work, 'cache');
const runtime = new KernelRuntime({ threads: 1 });
const emit = (o: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ bench: 'kernels', ...o })}\n`);

// Pin to one core so MLIR and OpenBLAS are measured on the same one.
try {
  execFileSync('taskset', ['-cp', '0', String(process.pid)], { stdio: 'ignore' });
} catch {}
const blas = openblas(work);

/** Rounds of the OpenBLAS-vs-ours comparison; each side keeps its best (the machine is shared). */
const ROUNDS = QUICK ? 1 : 3;
/** Seconds each timing repeats its call for, keeping the best: --quick only shows that it runs. */
const TIMING_S = QUICK ? 0.05 : 0.5;

/**
 * OpenBLAS (native core and per target ISA) and our kernel per target, interleaved over ROUNDS
 * rounds so that load from other processes hits both sides alike; emits one line each.
 */
async function compare(
  op: 'sgemm' | 'sgemv',
  spec: KernelSpec,
  n: number,
  arrays: Float32Array[],
  targets: Target[],
) {
  const work = op === 'sgemm' ? 2 * n ** 3 : 4 * n * n;
  const unit = op === 'sgemm' ? 'gflops' : 'gbps';
  const kernels = [];
  for (const target of targets) kernels.push(await load(spec, target));
  const refs: Record<string, number> = {};
  const ours = targets.map(() => 0);
  for (let r = 0; r < ROUNDS; r++) {
    for (const key of ['native', ...targets] as const)
      refs[key] = Math.max(refs[key] ?? 0, work / blas(op, n, CORETYPE[key], 1, TIMING_S) / 1e9);
    for (const [i, kernel] of kernels.entries())
      ours[i] = Math.max(ours[i]!, work / (await timeRuns(() => kernel.run(arrays), TIMING_S)) / 1e9);
  }
  for (const key of ['native', ...targets] as const) {
    emit({
      op: `openblas.${op}`,
      target: key,
      size: n,
      [unit]: +refs[key]!.toFixed(2),
      ref: `self (core ${CORETYPE[key] ?? 'auto'})`,
      ratio: 1,
    });
  }
  for (const [i, target] of targets.entries()) emitVsBlas(spec.op, target, n, unit, ours[i]!, refs);
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
    // The yardstick: the fastest OpenBLAS build of this run, whatever its core type.
    ratioBest: +(value / Math.max(...Object.values(refs))).toFixed(3),
  });
}

/** Compiles (cold, then from the cache: both timed and emitted) and loads a kernel. */
async function load(spec: KernelSpec, target: Target) {
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
  return runtime.load(artifact);
}

async function measure(spec: KernelSpec, target: Target, arrays: Float32Array[]) {
  const kernel = await load(spec, target);
  return timeRuns(() => kernel.run(arrays), TIMING_S);
}

try {
  const all = runnableTargets(probeHost().x86Level);
  const targets = QUICK ? all.slice(-1) : all;
  for (const n of runs('matmul') ? MATMUL_SIZES : []) {
    const a = new Float32Array(n * n).fill(0.5);
    await compare('sgemm', { op: 'nn.matmul', m: n, k: n, n }, n, [a, a, new Float32Array(n * n)], targets);
  }
  const n = QUICK ? 1024 : 4096;
  if (runs('matvec'))
    await compare(
      'sgemv',
      { op: 'nn.matvec', m: n, k: n },
      n,
      [new Float32Array(n * n).fill(0.25), new Float32Array(n).fill(1), new Float32Array(n)],
      targets,
    );
  // Row kernels: bytes read + written per call; 64×4096 (1 MiB an array) stays in the caches,
  // 1024×4096 (16 MiB an array) does not.
  // softmax and rmsnorm are also given as a fraction of add's GB/s at the same size.
  const cols = 4096;
  for (const rows of !runs('rows') ? [] : QUICK ? [64] : [64, 1024]) {
    const x = new Float32Array(rows * cols).fill(0.3);
    // add reads two arrays: given x twice it would read half the bytes it is credited with.
    const y = new Float32Array(rows * cols).fill(0.2);
    const out = new Float32Array(rows * cols);
    for (const target of targets) {
      let addGbps = 0;
      for (const [spec, arrays, bytes] of [
        [{ op: 'nn.add', rows, cols }, [x, y, out], 12 * rows * cols],
        [{ op: 'nn.softmax', rows, cols }, [x, out], 8 * rows * cols],
        [
          { op: 'nn.rmsnorm', rows, dim: cols, eps: 1e-5 },
          [x, new Float32Array(cols).fill(1), out],
          8 * rows * cols,
        ],
      ] as [KernelSpec, Float32Array[], number][]) {
        const gbps = bytes / (await measure(spec, target, arrays)) / 1e9;
        if (spec.op === 'nn.add') addGbps = gbps;
        emit({
          op: spec.op,
          target,
          size: `${rows}x${cols}`,
          gbps: +gbps.toFixed(2),
          ref: spec.op === 'nn.add' ? 'none' : 'nn.add, same size',
          ratio: spec.op === 'nn.add' ? null : +(gbps / addGbps).toFixed(3),
        });
      }
    }
  }
  if (runs('llama')) await transformer(targets[targets.length - 1]!);
  // The host's cores, not availableParallelism(): this process is pinned to one so far.
  if (runs('threads')) await threaded(targets[targets.length - 1]!, probeHost().logicalCores);
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
  // Not timed here: the shared cache (the compile rows above time a cold compile).
  const ops = await kernelOps(config, runtime, { target, cacheDir: defaultCacheDir() });
  const model = new Llama(syntheticWeights(config), ops);
  const prompt = Array.from({ length: 64 }, (_, i) => (i * 7) % config.vocab);
  const prefillS = await timeRuns(async () => {
    await model.prefill(prompt);
  }, TIMING_S * 2);
  const steps = QUICK ? 8 : 64;
  const t1 = performance.now();
  for (let i = 0; i < steps; i++) await model.decode(i % config.vocab);
  const decodeS = (performance.now() - t1) / 1000;
  const size = `dim${config.dim} L${config.layers} H${config.heads}/${config.kvHeads} prompt${prompt.length}`;
  const common = { target, size, weights: 'synthetic', ref: 'none', ratio: null };
  emit({ op: 'llama.prefill', ...common, tokensPerS: +(prompt.length / prefillS).toFixed(1) });
  emit({ op: 'llama.decode', ...common, tokensPerS: +(steps / decodeS).toFixed(1) });
}

/**
 * matmul and matvec with their rows split across `threads` threads (threadedKernel), against the
 * same kernel on one thread and OpenBLAS on `threads` threads; the process is unpinned first.
 */
async function threaded(target: Target, threads: number) {
  try {
    execFileSync('taskset', ['-a', '-cp', `0-${threads - 1}`, String(process.pid)], { stdio: 'ignore' });
  } catch {}
  const rt = new KernelRuntime({ threads });
  const options = { target, cacheDir };
  const cases: [KernelSpec, number, 'sgemm' | 'sgemv', Float32Array[]][] = [];
  for (const n of QUICK ? [256] : [1024, 2048]) {
    const a = new Float32Array(n * n).fill(0.5);
    cases.push([{ op: 'nn.matmul', m: n, k: n, n }, n, 'sgemm', [a, a, new Float32Array(n * n)]]);
  }
  const mv = QUICK ? 1024 : 4096;
  cases.push([
    { op: 'nn.matvec', m: mv, k: mv },
    mv,
    'sgemv',
    [new Float32Array(mv * mv).fill(0.25), new Float32Array(mv).fill(1), new Float32Array(mv)],
  ]);
  for (const [spec, n, blasOp, arrays] of cases) {
    const work = blasOp === 'sgemm' ? 2 * n ** 3 : 4 * n * n;
    const unit = blasOp === 'sgemm' ? 'gflops' : 'gbps';
    const one = await threadedKernel(rt, spec, { ...options, threads: 1 });
    const many = await threadedKernel(rt, spec, { ...options, threads });
    const single = work / (await timeRuns(() => one.run(arrays), TIMING_S)) / 1e9;
    const value = work / (await timeRuns(() => many.run(arrays), TIMING_S)) / 1e9;
    const ref = Math.max(
      ...[undefined, CORETYPE[target]].map((ct) => work / blas(blasOp, n, ct, threads, TIMING_S) / 1e9),
    );
    emit({
      op: spec.op,
      target,
      size: n,
      threads,
      [unit]: +value.toFixed(2),
      [`${unit}OneThread`]: +single.toFixed(2),
      scaling: +(value / single).toFixed(2),
      ref: `openblas.${blasOp} ${threads} threads, best core type (${+ref.toFixed(2)})`,
      ratio: +(value / ref).toFixed(3),
    });
  }
}

import { obtainKernel, type Target } from '@stitch/compiler';
import { KernelRuntime } from './runtime.js';

export interface Calibration {
  target: Target;
  /** Achieved single-thread matmul throughput (512³, tiled schedule). */
  matmulGflops: number;
  /** Achieved matvec streaming bandwidth over a 2048×2048 f32 matrix (16 MiB). */
  matvecGbps: number;
}

/**
 * Short micro-benchmark of this host's compiled kernels for `target` (≈1 s once the two kernels
 * are cached; the first call compiles them). The node actor puts the result in its capability record.
 */
export async function calibrate(target: Target, options: { cacheDir?: string } = {}): Promise<Calibration> {
  const runtime = new KernelRuntime({ threads: 1 });
  const n = 512;
  const mv = 2048;
  const [mm, vec] = await Promise.all([
    obtainKernel({ op: 'nn.matmul', m: n, k: n, n }, { target, ...options }),
    obtainKernel({ op: 'nn.matvec', m: mv, k: mv }, { target, ...options }),
  ]);
  const a = new Float32Array(n * n).fill(0.5);
  const c = new Float32Array(n * n);
  const mmSeconds = await timeRuns(() => runtime.load(mm).run([a, a, c]), 0.4);
  const big = new Float32Array(mv * mv).fill(0.25);
  const x = new Float32Array(mv).fill(1);
  const y = new Float32Array(mv);
  const mvSeconds = await timeRuns(() => runtime.load(vec).run([big, x, y]), 0.4);
  return {
    target,
    matmulGflops: (2 * n ** 3) / mmSeconds / 1e9,
    matvecGbps: (4 * mv * mv) / mvSeconds / 1e9,
  };
}

/** Best time of repeated runs within a budget of `seconds` (best-of filters scheduler noise). */
export async function timeRuns(run: () => Promise<void>, seconds: number): Promise<number> {
  await run();
  let best = Number.POSITIVE_INFINITY;
  const end = performance.now() + seconds * 1000;
  do {
    const t0 = performance.now();
    await run();
    best = Math.min(best, (performance.now() - t0) / 1000);
  } while (performance.now() < end);
  return best;
}

// OpenBLAS reference timings (bench/openblas.c built with clang-19), per core type.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Target } from '@stitch/compiler';

const here = dirname(fileURLToPath(import.meta.url));

/** OPENBLAS_CORETYPE whose kernels use a target's ISA; `native` is OpenBLAS's own choice. */
export const CORETYPE: Record<Target | 'native', string | undefined> = {
  native: undefined,
  'x86-64': 'Core2',
  'x86-64-v3': 'Haswell',
  'x86-64-v4': 'SkylakeX',
};

/** Builds the timing helper into `workDir`; returns a function giving best seconds per call. */
export function openblas(workDir: string) {
  const bin = join(workDir, 'openblas');
  execFileSync('clang-19', [
    '-O2',
    join(here, '..', 'openblas.c'),
    '-o',
    bin,
    '-I/usr/include/x86_64-linux-gnu',
    '-lopenblas',
  ]);
  // One thread runs on core 0 (where the caller pins itself); more run where the OS puts them.
  return (op: 'sgemm' | 'sgemv', n: number, coretype: string | undefined, threads = 1, seconds = 0.5) =>
    Number(
      execFileSync(
        threads === 1 ? 'taskset' : bin,
        [...(threads === 1 ? ['-c', '0', bin] : []), op, String(n), String(seconds)],
        {
          env: {
            ...process.env,
            OPENBLAS_NUM_THREADS: String(threads),
            ...(coretype ? { OPENBLAS_CORETYPE: coretype } : {}),
          },
        },
      ).toString(),
    );
}

// Runs the real mlir-opt-19 the way the brief asks: unregistered dialects allowed, verify each, generic print.
import { execFileSync } from 'node:child_process';

/** `flags` go after the standard ones, e.g. `--mlir-print-elementsattrs-with-hex-if-larger=1`. */
export function mlirOpt(text: string, flags: readonly string[] = []): string {
  return execFileSync(
    'mlir-opt-19',
    ['--allow-unregistered-dialect', '--verify-each', '--mlir-print-op-generic', ...flags, '-'],
    {
      input: text,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: 30_000,
    },
  );
}

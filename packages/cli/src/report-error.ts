/**
 * Prints an error for a person (message and code, no stack trace) and returns the exit code:
 * 2 for bad input (errors whose code says so), 1 otherwise. STITCH_DEBUG=1 adds the stack.
 */
export function reportError(err: unknown): number {
  const e = err as { code?: unknown; message?: unknown; stack?: unknown; exitCode?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'STITCH_ERROR';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  process.stderr.write(`stitch: ${message} [${code}]\n`);
  if (process.env.STITCH_DEBUG === '1' && typeof e?.stack === 'string') process.stderr.write(`${e.stack}\n`);
  if (typeof e?.exitCode === 'number') return e.exitCode;
  return 1;
}

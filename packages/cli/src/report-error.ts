/**
 * Prints an error for a person and returns the exit status for it, never 0. Errors come from several
 * packages (IrError, PlanError, CostError, CompilerError, KernelError, AgentsError, the runtime's
 * StitchError, Node's system errors), so the error is duck-typed: a string `code` is printed after the
 * message, as `stitch: <message> [<code>]`; an error without one is reported as STITCH_ERROR. No stack
 * trace unless STITCH_DEBUG=1. The status is the error's own `exitCode` where it has one in 1..255
 * (2 marks bad input), else 1.
 */
export function reportError(err: unknown): number {
  const e = (typeof err === 'object' && err !== null ? err : {}) as {
    code?: unknown;
    message?: unknown;
    stack?: unknown;
    exitCode?: unknown;
  };
  const code = typeof e.code === 'string' && e.code !== '' ? e.code : 'STITCH_ERROR';
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(err);
  process.stderr.write(`stitch: ${message} [${code}]\n`);
  if (process.env.STITCH_DEBUG === '1' && typeof e.stack === 'string') process.stderr.write(`${e.stack}\n`);
  const status = e.exitCode;
  return typeof status === 'number' && Number.isInteger(status) && status >= 1 && status <= 255 ? status : 1;
}

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reportError } from '../src/report-error.js';

/** Runs reportError with stderr captured; its exit status and what it printed. */
function report(err: unknown): { status: number; printed: string } {
  const write = process.stderr.write;
  const debug = process.env.STITCH_DEBUG;
  delete process.env.STITCH_DEBUG;
  let printed = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    printed += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { status: reportError(err), printed };
  } finally {
    process.stderr.write = write;
    if (debug !== undefined) process.env.STITCH_DEBUG = debug;
  }
}

class CodedError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode?: unknown,
  ) {
    super(message);
  }
}

test('any error with a string code: its message and code are printed, no stack, exit status non-zero', () => {
  const cases: [unknown, string, number][] = [
    [new CodedError('PLAN_INPUT', 'bad --rate', 2), 'stitch: bad --rate [PLAN_INPUT]\n', 2],
    [new CodedError('KERNEL_SPEC', 'fix the spec'), 'stitch: fix the spec [KERNEL_SPEC]\n', 1],
    [Object.assign(new Error('open x'), { code: 'ENOENT' }), 'stitch: open x [ENOENT]\n', 1],
    [{ code: 'ACTOR_TIMEOUT', message: 'raise timeoutMs' }, 'stitch: raise timeoutMs [ACTOR_TIMEOUT]\n', 1],
    // An exit status of 0 or out of range would report success or wrap around: 1 instead.
    [new CodedError('X_ZERO', 'zero', 0), 'stitch: zero [X_ZERO]\n', 1],
    [new CodedError('X_BIG', 'big', 256), 'stitch: big [X_BIG]\n', 1],
    [new CodedError('X_NAN', 'nan', Number.NaN), 'stitch: nan [X_NAN]\n', 1],
  ];
  for (const [err, printed, status] of cases) assert.deepEqual(report(err), { status, printed });
});

test('errors without a string code, and thrown non-errors, still print and exit 1', () => {
  assert.deepEqual(report(new Error('plain')), { status: 1, printed: 'stitch: plain [STITCH_ERROR]\n' });
  assert.deepEqual(report(Object.assign(new Error('numeric'), { code: 5 })), {
    status: 1,
    printed: 'stitch: numeric [STITCH_ERROR]\n',
  });
  assert.deepEqual(report('a string'), { status: 1, printed: 'stitch: a string [STITCH_ERROR]\n' });
  assert.deepEqual(report(undefined), { status: 1, printed: 'stitch: undefined [STITCH_ERROR]\n' });
  assert.deepEqual(report(null), { status: 1, printed: 'stitch: null [STITCH_ERROR]\n' });
});

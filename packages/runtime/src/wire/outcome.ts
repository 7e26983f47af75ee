import { RuntimeErrorCode } from '../errors.js';

/** Result of one handler run: the encoded reply, or the error that crosses back to the caller. */
export type Outcome =
  | { ok: true; data: Uint8Array }
  | { ok: false; code: string; name: string; message: string };

/** The outcome of a thrown value; an error without a code of its own crosses as HANDLER_ERROR. */
export function failure(error: unknown): Outcome {
  const e = error as { code?: unknown; name?: unknown; message?: unknown } | null;
  return {
    ok: false,
    code: typeof e?.code === 'string' && e.code ? e.code : RuntimeErrorCode.HandlerError,
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: typeof e?.message === 'string' ? e.message : String(error),
  };
}

import { AgentsErrorCode } from '@stitch/agents';
import { RuntimeErrorCode } from '@stitch/runtime';
import { ServeError, ServeErrorCode } from './errors.js';

/** OpenAI's error body: what its clients parse into typed errors. */
export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface HttpFailure {
  status: number;
  body: OpenAiErrorBody;
  /** Seconds for a `Retry-After` header (429 and 503). */
  retryAfterS?: number;
}

export function failure(
  status: number,
  message: string,
  code: string | null,
  param: string | null = null,
  retryAfterS?: number,
): HttpFailure {
  const type = status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  return {
    status,
    body: { error: { message, type, param, code } },
    ...(retryAfterS !== undefined ? { retryAfterS } : {}),
  };
}

/** Operator errors caused by what the caller sent (an expression, an oversized field). */
const CALLER_CODES = new Set<string>([
  AgentsErrorCode.CalcSyntax,
  AgentsErrorCode.CalcMath,
  AgentsErrorCode.InputTooLarge,
  RuntimeErrorCode.PayloadTooLarge,
]);
const UNREACHABLE = new Set<string>([
  RuntimeErrorCode.Timeout,
  RuntimeErrorCode.NoResponders,
  RuntimeErrorCode.ActorStopped,
  RuntimeErrorCode.NoNode,
]);

function codes(err: unknown): string[] {
  const out: string[] = [];
  for (let e = err as { code?: unknown; cause?: unknown } | undefined; e && out.length < 8; ) {
    if (typeof e.code === 'string') out.push(e.code);
    e = e.cause as typeof e;
  }
  return out;
}

/** Fastify's own request errors (body too large, not JSON, schema) carry a 4xx statusCode. */
interface FastifyishError {
  statusCode?: number;
  code?: string;
  message: string;
  validation?: { instancePath?: string }[];
  validationContext?: string;
}

/** The HTTP answer to an error of a request: status, OpenAI body and, for back-pressure, Retry-After. */
export function failureOf(err: unknown, retryAfterS: number): HttpFailure {
  if (err instanceof ServeError) {
    switch (err.code) {
      case ServeErrorCode.InvalidRequest:
        return failure(400, err.message, err.code);
      case ServeErrorCode.ModelNotFound:
        return failure(404, err.message, 'model_not_found', 'model');
      case ServeErrorCode.Overloaded:
        return failure(429, err.message, 'rate_limit_exceeded', null, retryAfterS);
      default:
        break;
    }
  }
  const f = err as FastifyishError;
  if (typeof f.statusCode === 'number' && f.statusCode >= 400 && f.statusCode < 500) {
    const path = f.validation?.[0]?.instancePath?.replace(/^\//, '').replace(/\//g, '.');
    return failure(f.statusCode, f.message, f.code ?? null, path || null);
  }
  const chain = codes(err);
  const message = (err as Error)?.message ?? String(err);
  if (chain.includes(RuntimeErrorCode.Overloaded)) {
    return failure(
      429,
      `the graph is overloaded: ${message}; retry after the Retry-After seconds`,
      'rate_limit_exceeded',
      null,
      retryAfterS,
    );
  }
  const own = chain.find((c) => CALLER_CODES.has(c));
  if (own) return failure(400, message, own);
  if (chain.some((c) => UNREACHABLE.has(c))) {
    return failure(
      503,
      `the graph's operators did not answer: ${message}`,
      ServeErrorCode.Unavailable,
      null,
      retryAfterS,
    );
  }
  return failure(500, message, chain.at(-1) ?? ServeErrorCode.GraphFailed);
}

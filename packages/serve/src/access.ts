import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ServeError, ServeErrorCode } from './errors.js';
import { failure } from './http-errors.js';

/** Whether binding to `host` keeps the server on this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

const MIN_TOKEN_CHARS = 16;

/**
 * The bearer token a server bound to `host` requires: any reachable from other machines must have
 * one, and one too short to resist guessing is refused.
 */
export function checkAccess(host: string, token: string | undefined): void {
  if (token === undefined) {
    if (isLoopback(host)) return;
    throw new ServeError(
      ServeErrorCode.Options,
      `binding to ${host} makes the server reachable from other machines; give an API key that clients send as a bearer token (--api-key, or $STITCH_SERVE_API_KEY) or bind to 127.0.0.1`,
    );
  }
  if (token.length < MIN_TOKEN_CHARS || /\s/.test(token)) {
    throw new ServeError(
      ServeErrorCode.Options,
      `the API key must be at least ${MIN_TOKEN_CHARS} characters without spaces (e.g. openssl rand -hex 24)`,
    );
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * An onRequest hook that answers 401 (OpenAI's invalid_api_key) unless `Authorization: Bearer <token>`
 * or, with `inQuery` (a browser page's EventSource cannot set headers), `?key=<token>`.
 */
export function bearerHook(token: string, inQuery = false) {
  const want = digest(token);
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const header = request.headers.authorization ?? '';
    const query = inQuery ? (request.query as { key?: unknown }).key : undefined;
    const given = /^Bearer (.+)$/i.exec(header)?.[1] ?? (typeof query === 'string' ? query : '');
    // Hashing first makes the comparison constant-time whatever the lengths.
    if (timingSafeEqual(digest(given), want)) return;
    const f = failure(
      401,
      'a valid bearer token is required: send Authorization: Bearer <token>',
      'invalid_api_key',
    );
    return reply.code(f.status).header('www-authenticate', 'Bearer').send(f.body);
  };
}

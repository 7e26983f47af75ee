import { AgentsError, AgentsErrorCode } from './errors.js';

/** Environment variable capping the hosts any HTTP-speaking operator in this process may be configured for. */
export const OPERATOR_HTTP_HOSTS_ENV = 'STITCH_OPERATOR_HTTP_HOSTS';
export const MAX_URL_CHARS = 2048;
export const MAX_ALLOWED_HOSTS = 64;
export const MAX_REDIRECTS = 5;
const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443' };

/** What one HTTP exchange may take: wall time for everything (redirects and body included) and body bytes. */
export interface HttpLimits {
  timeoutMs: number;
  maxResponseBytes: number;
}

function fail(code: AgentsErrorCode, message: string, cause?: unknown): never {
  throw new AgentsError(code, message, cause === undefined ? undefined : { cause });
}

/** An http(s) URL without credentials, or HTTP_REQUEST_INVALID. */
export function parseHttpUrl(raw: unknown): URL {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_URL_CHARS)
    fail(AgentsErrorCode.HttpRequestInvalid, `url must be a string of 1 to ${MAX_URL_CHARS} characters`);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return fail(AgentsErrorCode.HttpRequestInvalid, `url ${raw.slice(0, 80)} does not parse`);
  }
  if (!DEFAULT_PORT[u.protocol])
    fail(AgentsErrorCode.HttpRequestInvalid, `url must be http:// or https://, found ${u.protocol}`);
  if (u.username || u.password) fail(AgentsErrorCode.HttpRequestInvalid, 'url must not carry credentials');
  return u;
}

const key = (hostname: string, port: string) => `${hostname}:${port}`;

// URL.parse arrived in Node 20.18; the engines field allows 20.17.
function tryUrl(s: string): URL | undefined {
  try {
    return new URL(s);
  } catch {
    return undefined;
  }
}

/**
 * Hosts a request may go to, each `host` (the scheme's default port) or `host:port`, matched exactly
 * against the parsed URL: no suffix or wildcard matching, so `example.com` does not allow
 * `evil-example.com`, `example.com.evil.net` or `sub.example.com`.
 */
export class HostAllowList {
  readonly #entries = new Set<string>();
  readonly #any: boolean;
  readonly #bare = new Set<string>();

  constructor(entries: readonly string[] | '*') {
    this.#any = entries === '*';
    if (entries === '*') return;
    if (entries.length > MAX_ALLOWED_HOSTS)
      fail(AgentsErrorCode.HttpRequestInvalid, `more than ${MAX_ALLOWED_HOSTS} allowed hosts`);
    for (const entry of entries) {
      const u = tryUrl(`http://${entry.trim()}`);
      if (!u || u.username || u.password || u.pathname !== '/' || u.search || u.hash || !u.hostname)
        fail(
          AgentsErrorCode.HttpRequestInvalid,
          `allowed host "${entry.slice(0, 80)}" is not host or host:port`,
        );
      if (u.port) this.#entries.add(key(u.hostname, u.port));
      else this.#bare.add(u.hostname);
    }
  }

  allows(u: URL): boolean {
    if (this.#any) return true;
    const port = u.port || DEFAULT_PORT[u.protocol]!;
    return this.#entries.has(key(u.hostname, port)) || (u.port === '' && this.#bare.has(u.hostname));
  }

  check(u: URL): void {
    if (!this.allows(u))
      fail(
        AgentsErrorCode.HttpHostNotAllowed,
        `${u.host} is not an allowed host; add it to the operator's allow_hosts${capNote()}`,
      );
  }
}

const capNote = () =>
  process.env[OPERATOR_HTTP_HOSTS_ENV] ? ` and to ${OPERATOR_HTTP_HOSTS_ENV} of the hosting process` : '';

/** The process's cap (`STITCH_OPERATOR_HTTP_HOSTS`), or undefined when unset: then configs alone decide. */
export function processHostCap(): HostAllowList | undefined {
  const raw = process.env[OPERATOR_HTTP_HOSTS_ENV]?.trim();
  if (!raw) return undefined;
  return new HostAllowList(raw === '*' ? '*' : raw.split(',').filter((s) => s.trim()));
}

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: string;
  headers?: Record<string, string>;
  /** A form is sent as multipart/form-data (fetch writes its boundary into the content type). */
  body?: string | FormData;
}

/** An open exchange: the final response (body unread) and the signal that aborts it at the deadline. */
export interface OpenResponse {
  response: Response;
  url: string;
  signal: AbortSignal;
  /** Stops the deadline timer; call once the body is read or abandoned. */
  done(): void;
}

/**
 * Sends a request, following at most MAX_REDIRECTS redirects, each of which must also be allowed.
 * The deadline covers the whole exchange including the body the caller reads with `readBounded`.
 */
export async function openHttp(
  req: HttpRequest,
  allow: HostAllowList,
  limits: HttpLimits,
): Promise<OpenResponse> {
  let url = parseHttpUrl(req.url);
  const abort = new AbortController();
  const timer = setTimeout(
    () =>
      abort.abort(
        new AgentsError(AgentsErrorCode.HttpTimeout, `no complete response within ${limits.timeoutMs} ms`),
      ),
    limits.timeoutMs,
  );
  const done = () => clearTimeout(timer);
  let method: string = req.method;
  let body = req.body;
  try {
    for (let hop = 0; ; hop++) {
      allow.check(url);
      const response = await fetch(url, {
        method,
        headers: req.headers,
        body,
        redirect: 'manual',
        signal: abort.signal,
      });
      const location = response.headers.get('location');
      if (response.status < 300 || response.status > 399 || response.status === 304 || !location)
        return { response, url: url.href, signal: abort.signal, done };
      await response.body?.cancel();
      if (hop >= MAX_REDIRECTS)
        fail(AgentsErrorCode.HttpFailed, `more than ${MAX_REDIRECTS} redirects from ${req.url}`);
      url = parseHttpUrl(new URL(location, url).href);
      // As browsers do: 303 always, and 301/302 after a POST, continue as a GET without the body.
      if (
        response.status === 303 ||
        ((response.status === 301 || response.status === 302) && method === 'POST')
      ) {
        method = 'GET';
        body = undefined;
      }
    }
  } catch (e) {
    done();
    throw asHttpError(e, abort.signal, url);
  }
}

/** A fetch failure as the typed error it stands for. */
export function asHttpError(e: unknown, signal: AbortSignal, url: URL): AgentsError {
  if (e instanceof AgentsError) return e;
  if (signal.aborted && signal.reason instanceof AgentsError) return signal.reason;
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return new AgentsError(
    AgentsErrorCode.HttpFailed,
    `request to ${url.host} failed: ${cause?.code ?? cause?.message ?? (e as Error).message}`,
    { cause: e },
  );
}

/** Reads the body, aborting the exchange as soon as it passes `maxBytes` (a Content-Length over it is refused unread). */
export async function readBounded(
  open: OpenResponse,
  maxBytes: number,
  onChunk?: (chunk: Uint8Array) => void,
): Promise<Uint8Array> {
  const { response } = open;
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  const tooLarge = () =>
    new AgentsError(
      AgentsErrorCode.HttpResponseTooLarge,
      `response from ${new URL(open.url).host} is larger than ${maxBytes} bytes`,
    );
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    if (declared > maxBytes) throw tooLarge();
    if (!response.body) return new Uint8Array();
    for await (const chunk of response.body) {
      total += chunk.byteLength;
      if (total > maxBytes) throw tooLarge();
      if (onChunk) onChunk(chunk);
      else chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  } catch (e) {
    await response.body?.cancel().catch(() => undefined);
    throw asHttpError(e, open.signal, new URL(open.url));
  } finally {
    open.done();
  }
}

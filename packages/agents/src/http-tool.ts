import { AgentsError, AgentsErrorCode } from './errors.js';
import { HostAllowList, type HttpRequest, openHttp, processHostCap, readBounded } from './http.js';
import { perConfig } from './memo.js';

export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;
export const MAX_HTTP_TIMEOUT_MS = 120_000;
export const DEFAULT_HTTP_RESPONSE_BYTES = 1024 * 1024;
export const MAX_HTTP_RESPONSE_BYTES = 16 * 1024 * 1024;
export const MAX_HTTP_BODY_BYTES = 1024 * 1024;
const MAX_HEADERS = 32;
const MAX_HEADER_CHARS = 4096;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
// The transport sets these; a caller that could would smuggle requests or lie about the body.
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'upgrade',
  'te',
  'trailer',
]);

export interface HttpToolOptions {
  /** `host` or `host:port` entries; see HostAllowList. */
  allowHosts: readonly string[];
  timeoutMs?: number;
  maxResponseBytes?: number;
}

export interface HttpToolResult {
  status: number;
  /** The URL that answered, after redirects. */
  url: string;
  contentType: string | null;
  /** The body as UTF-8 text. */
  body: string;
  bytes: number;
}

const invalid = (message: string): never => {
  throw new AgentsError(AgentsErrorCode.HttpRequestInvalid, message);
};

function bounded(name: string, v: number | undefined, fallback: number, max: number): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < 1 || v > max)
    invalid(`${name} must be an integer from 1 to ${max}, found ${v}`);
  return v;
}

/** Checks a request that came from outside (a message) before anything is sent. */
export function validateHttpRequest(raw: unknown): HttpRequest {
  if (typeof raw !== 'object' || raw === null)
    return invalid('the request must be an object { method, url, headers?, body? }');
  const r = raw as Record<string, unknown>;
  const method = r.method ?? 'GET';
  if (method !== 'GET' && method !== 'POST')
    invalid(`method must be GET or POST, found ${String(method).slice(0, 20)}`);
  if (typeof r.url !== 'string') invalid('url must be a string');
  const headers: Record<string, string> = {};
  if (r.headers !== undefined) {
    if (typeof r.headers !== 'object' || r.headers === null) invalid('headers must be an object of strings');
    const entries = Object.entries(r.headers as object);
    if (entries.length > MAX_HEADERS) invalid(`more than ${MAX_HEADERS} headers`);
    for (const [k, v] of entries) {
      if (!HEADER_NAME.test(k) || RESERVED_HEADERS.has(k.toLowerCase()))
        invalid(`header ${k.slice(0, 64)} is not allowed (reserved or not a token)`);
      if (typeof v !== 'string' || v.length > MAX_HEADER_CHARS || /[\r\n\0]/.test(v))
        invalid(`header ${k} must be a single-line string of at most ${MAX_HEADER_CHARS} characters`);
      headers[k] = v;
    }
  }
  const body = r.body;
  if (body !== undefined) {
    if (method === 'GET') invalid('a GET request has no body');
    if (typeof body !== 'string' || Buffer.byteLength(body) > MAX_HTTP_BODY_BYTES)
      invalid(`body must be a string of at most ${MAX_HTTP_BODY_BYTES} bytes`);
  }
  return {
    method: method as HttpRequest['method'],
    url: r.url as string,
    headers,
    ...(typeof body === 'string' ? { body } : {}),
  };
}

/**
 * An HTTP client for agents: GET and POST to allowed hosts only (redirects included), one deadline
 * per request, and a response size limit enforced while streaming.
 */
export class HttpTool {
  readonly #allow: HostAllowList;
  readonly #limits;

  constructor(options: HttpToolOptions) {
    if (options.allowHosts.length === 0) invalid('allowHosts is empty: name the hosts this tool may reach');
    const cap = processHostCap();
    this.#allow = new HostAllowList(options.allowHosts);
    if (cap) for (const h of options.allowHosts) cap.check(new URL(`http://${h.trim()}`));
    this.#limits = {
      timeoutMs: bounded('timeoutMs', options.timeoutMs, DEFAULT_HTTP_TIMEOUT_MS, MAX_HTTP_TIMEOUT_MS),
      maxResponseBytes: bounded(
        'maxResponseBytes',
        options.maxResponseBytes,
        DEFAULT_HTTP_RESPONSE_BYTES,
        MAX_HTTP_RESPONSE_BYTES,
      ),
    };
  }

  async request(raw: unknown): Promise<HttpToolResult> {
    const req = validateHttpRequest(raw);
    const open = await openHttp(req, this.#allow, this.#limits);
    const body = await readBounded(open, this.#limits.maxResponseBytes);
    return {
      status: open.response.status,
      url: open.url,
      contentType: open.response.headers.get('content-type'),
      body: new TextDecoder().decode(body),
      bytes: body.byteLength,
    };
  }
}

/** The tool of an op's config (attrs `allow_hosts`, `timeout_ms`, `max_response_bytes`), built once per config. */
export const httpToolFor = perConfig((cfg: { attrs: Record<string, string | number | boolean> }) => {
  const { allow_hosts, timeout_ms, max_response_bytes } = cfg.attrs;
  return new HttpTool({
    allowHosts: typeof allow_hosts === 'string' ? allow_hosts.split(',').filter((h) => h.trim()) : [],
    ...(typeof timeout_ms === 'number' ? { timeoutMs: timeout_ms } : {}),
    ...(typeof max_response_bytes === 'number' ? { maxResponseBytes: max_response_bytes } : {}),
  });
});

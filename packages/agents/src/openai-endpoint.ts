import { AgentsError, type AgentsErrorCode } from './errors.js';
import { HostAllowList, openHttp, parseHttpUrl, processHostCap, readBounded } from './http.js';

/** What a failed exchange is called: an error status, and an answer that is not what was asked for. */
export interface EndpointCodes {
  status: AgentsErrorCode;
  invalid: AgentsErrorCode;
}

/**
 * One route of an OpenAI-compatible server (`…/v1` plus `route`, or the full URL): POSTs a body
 * and returns the JSON answer. Only the endpoint's host is reachable, redirects included, and
 * within STITCH_OPERATOR_HTTP_HOSTS when that is set.
 */
export class OpenAiEndpoint {
  readonly url: URL;
  readonly #allow: HostAllowList;

  constructor(
    endpoint: string,
    route: string,
    private readonly codes: EndpointCodes,
    private readonly limits: { timeoutMs: number; maxResponseBytes: number },
    private readonly apiKey?: string,
  ) {
    const raw = endpoint.replace(/\/+$/, '');
    this.url = parseHttpUrl(raw.endsWith(route) ? raw : `${raw}${route}`);
    this.#allow = new HostAllowList([this.url.host]);
    processHostCap()?.check(this.url);
  }

  async post(body: string | FormData): Promise<unknown> {
    const headers: Record<string, string> = this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {};
    if (typeof body === 'string') headers['content-type'] = 'application/json';
    const open = await openHttp(
      { method: 'POST', url: this.url.href, headers, body },
      this.#allow,
      this.limits,
    );
    let text: string;
    try {
      text = new TextDecoder().decode(await readBounded(open, this.limits.maxResponseBytes));
    } finally {
      open.done();
    }
    const status = open.response.status;
    const host = this.url.host;
    if (status < 200 || status > 299)
      throw new AgentsError(this.codes.status, `${host} answered ${status}: ${text.slice(0, 200)}`);
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new AgentsError(this.codes.invalid, `${host} answered with something that is not JSON`, {
        cause: e,
      });
    }
  }
}

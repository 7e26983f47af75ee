import { ChatReply, type LlmUsage } from './chat-reply.js';
import { AgentsError, AgentsErrorCode } from './errors.js';
import { HostAllowList, openHttp, parseHttpUrl, processHostCap, readBounded } from './http.js';
import { SseParser } from './sse.js';
import { countChatTokens, countTokens } from './tokens.js';

export type { LlmUsage } from './chat-reply.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface RemoteLlmOptions {
  /** `…/v1` (then `/chat/completions` is appended) or the full `…/chat/completions` URL. */
  endpoint: string;
  model: string;
  /** Sent as `Authorization: Bearer …` when set. */
  apiKey?: string;
  /** @default 256 */
  maxTokens?: number;
  /** @default true */
  stream?: boolean;
  /** Per attempt, headers and body included. @default 60 000 */
  timeoutMs?: number;
  /** Extra attempts after a 429, a 5xx or a failed connection. @default 3 */
  retries?: number;
  /** First backoff; it doubles per retry, with jitter, up to `maxBackoffMs`. @default 500 */
  backoffMs?: number;
  /** @default 8 000 */
  maxBackoffMs?: number;
  /** Bytes of one response (a whole stream). @default 4 MiB */
  maxResponseBytes?: number;
}

export const LLM_LIMITS = {
  maxTokens: 32_768,
  timeoutMs: 600_000,
  retries: 10,
  backoffMs: 60_000,
  maxResponseBytes: 64 * 1024 * 1024,
  messages: 256,
  promptChars: 1024 * 1024,
} as const;

export interface LlmCompletion {
  text: string;
  finishReason: string | null;
  usage: LlmUsage;
  /** Attempts made, 1 when the first succeeded. */
  attempts: number;
}

const RETRY_STATUS = (s: number) => s === 429 || (s >= 500 && s <= 599);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function invalid(message: string): never {
  throw new AgentsError(AgentsErrorCode.HttpRequestInvalid, message);
}

function int(name: keyof typeof LLM_LIMITS, v: number | undefined, fallback: number, min = 1): number {
  if (v === undefined) return fallback;
  const max = LLM_LIMITS[name];
  if (!Number.isInteger(v) || v < min || v > max)
    invalid(`${name} must be an integer from ${min} to ${max}, found ${v}`);
  return v;
}

/** An attempt's failure, and whether another attempt may fix it. */
class Attempt extends Error {
  constructor(
    readonly error: AgentsError,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(error.message);
  }
}

/**
 * A client of any OpenAI-compatible `/v1/chat/completions` endpoint: streaming (SSE) or not,
 * a deadline per attempt, retries with exponential backoff on 429, 5xx and connection failures,
 * and token usage for every call.
 */
export class RemoteLlm {
  readonly #url: URL;
  readonly #allow: HostAllowList;
  readonly #o;
  readonly #apiKey: string | undefined;
  /** Totals over this client's calls, for cost accounting. */
  readonly totals = { calls: 0, attempts: 0, promptTokens: 0, completionTokens: 0 };

  constructor(options: RemoteLlmOptions) {
    const raw = options.endpoint.replace(/\/+$/, '');
    this.#url = parseHttpUrl(raw.endsWith('/chat/completions') ? raw : `${raw}/chat/completions`);
    this.#allow = new HostAllowList([this.#url.host]);
    processHostCap()?.check(this.#url);
    if (typeof options.model !== 'string' || options.model.length === 0 || options.model.length > 256)
      invalid('model must be a string of 1 to 256 characters');
    this.#apiKey = options.apiKey;
    this.#o = {
      model: options.model,
      maxTokens: int('maxTokens', options.maxTokens, 256),
      stream: options.stream ?? true,
      timeoutMs: int('timeoutMs', options.timeoutMs, 60_000),
      retries: int('retries', options.retries, 3, 0),
      backoffMs: int('backoffMs', options.backoffMs, 500),
      maxBackoffMs: int('backoffMs', options.maxBackoffMs, 8_000),
      maxResponseBytes: int('maxResponseBytes', options.maxResponseBytes, 4 * 1024 * 1024),
    };
  }

  /** `onText` sees each streamed piece as it arrives. */
  async complete(messages: readonly ChatMessage[], onText?: (piece: string) => void): Promise<LlmCompletion> {
    checkMessages(messages);
    const o = this.#o;
    const body = JSON.stringify({
      model: o.model,
      messages,
      max_tokens: o.maxTokens,
      stream: o.stream,
      ...(o.stream ? { stream_options: { include_usage: true } } : {}),
    });
    this.totals.calls++;
    for (let attempt = 1; ; attempt++) {
      this.totals.attempts++;
      try {
        const r = await this.#attempt(body, onText);
        const usage = r.usage ?? (await counted(messages, r.text));
        this.totals.promptTokens += usage.promptTokens;
        this.totals.completionTokens += usage.completionTokens;
        return { text: r.text, finishReason: r.finishReason, usage, attempts: attempt };
      } catch (e) {
        if (!(e instanceof Attempt)) throw e;
        if (!e.retryable || attempt > o.retries) {
          throw attempt > 1
            ? new AgentsError(e.error.code, `${e.error.message} (after ${attempt} attempts)`, {
                cause: e.error,
              })
            : e.error;
        }
        const backoff =
          Math.min(o.maxBackoffMs, o.backoffMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
        await sleep(Math.min(o.maxBackoffMs, Math.max(backoff, e.retryAfterMs ?? 0)));
      }
    }
  }

  async #attempt(body: string, onText?: (piece: string) => void) {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'text/event-stream, application/json',
    };
    if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
    const limits = { timeoutMs: this.#o.timeoutMs, maxResponseBytes: this.#o.maxResponseBytes };
    let open: Awaited<ReturnType<typeof openHttp>>;
    try {
      open = await openHttp({ method: 'POST', url: this.#url.href, headers, body }, this.#allow, limits);
    } catch (e) {
      throw new Attempt(e as AgentsError, (e as AgentsError).code === AgentsErrorCode.HttpFailed);
    }
    const status = open.response.status;
    if (status !== 200) {
      const text = await readBounded(open, 64 * 1024).then(
        (b) => new TextDecoder().decode(b),
        () => '',
      );
      const retryAfter = Number(open.response.headers.get('retry-after'));
      throw new Attempt(
        new AgentsError(
          AgentsErrorCode.LlmFailed,
          `${this.#url.host} answered ${status}: ${text.slice(0, 200)}`,
        ),
        RETRY_STATUS(status),
        Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter * 1000 : undefined,
      );
    }
    const reply = new ChatReply(onText);
    const sse = (open.response.headers.get('content-type') ?? '').includes('text/event-stream');
    try {
      if (sse) {
        const parser = new SseParser((data) => reply.event(data));
        await readBounded(open, this.#o.maxResponseBytes, (chunk) => parser.push(chunk));
        parser.end();
      } else {
        reply.whole(new TextDecoder().decode(await readBounded(open, this.#o.maxResponseBytes)));
      }
    } catch (e) {
      // A stream that broke before any text can be asked again; after text, the caller has seen it.
      const err = e as AgentsError;
      throw new Attempt(err, err.code === AgentsErrorCode.HttpFailed && reply.text === '');
    }
    if (sse && !reply.done)
      throw new Attempt(
        new AgentsError(AgentsErrorCode.LlmResponseInvalid, 'the stream ended without [DONE]'),
        false,
      );
    return reply;
  }
}

function checkMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages) || messages.length === 0 || messages.length > LLM_LIMITS.messages)
    invalid(`messages must be 1 to ${LLM_LIMITS.messages} chat messages`);
  let chars = 0;
  for (const m of messages) {
    if (!['system', 'user', 'assistant'].includes(m?.role) || typeof m.content !== 'string')
      invalid('each message must be { role: system | user | assistant, content: string }');
    chars += m.content.length;
  }
  if (chars > LLM_LIMITS.promptChars)
    invalid(`the prompt is longer than ${LLM_LIMITS.promptChars} characters`);
}

async function counted(messages: readonly ChatMessage[], text: string): Promise<LlmUsage> {
  const promptTokens = await countChatTokens(messages);
  const completionTokens = await countTokens(text);
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, source: 'counted' };
}

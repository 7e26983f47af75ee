import { AgentsError, AgentsErrorCode } from './errors.js';

/** Tokens of one call: as the server reported them, or counted here (o200k_base BPE) when it did not. */
export interface LlmUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  source: 'reported' | 'counted';
}

function bad(what: string): never {
  throw new AgentsError(AgentsErrorCode.LlmResponseInvalid, what);
}

/** What a chat completion (whole, or streamed chunk by chunk) said; a malformed one is LLM_RESPONSE_INVALID. */
export class ChatReply {
  text = '';
  finishReason: string | null = null;
  usage: LlmUsage | undefined;
  done = false;

  constructor(readonly onText?: (piece: string) => void) {}

  event(data: string): void {
    if (data.trim() === '[DONE]') {
      this.done = true;
      return;
    }
    const chunk = parse(data);
    const choice = chunk.choices?.[0];
    const piece = choice?.delta?.content;
    if (typeof piece === 'string' && piece.length > 0) {
      this.text += piece;
      this.onText?.(piece);
    }
    if (choice?.finish_reason) this.finishReason = choice.finish_reason;
    this.#usage(chunk.usage);
  }

  whole(body: string): void {
    const r = parse(body);
    const content = r.choices?.[0]?.message?.content;
    if (typeof content !== 'string') bad('the response has no choices[0].message.content');
    this.text = content;
    this.finishReason = r.choices?.[0]?.finish_reason ?? null;
    this.#usage(r.usage);
    this.done = true;
  }

  #usage(u: { prompt_tokens?: unknown; completion_tokens?: unknown } | null | undefined): void {
    const p = u?.prompt_tokens;
    const c = u?.completion_tokens;
    if (!Number.isSafeInteger(p) || !Number.isSafeInteger(c) || (p as number) < 0 || (c as number) < 0)
      return;
    this.usage = {
      promptTokens: p as number,
      completionTokens: c as number,
      totalTokens: (p as number) + (c as number),
      source: 'reported',
    };
  }
}

interface Chunk {
  choices?: {
    delta?: { content?: unknown };
    message?: { content?: unknown };
    finish_reason?: string | null;
  }[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null;
}

function parse(data: string): Chunk {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return bad(`the endpoint sent something that is not JSON: ${data.slice(0, 80)}`);
  }
  if (typeof v !== 'object' || v === null) return bad('the endpoint sent JSON that is not an object');
  const c = v as Chunk;
  if (c.choices !== undefined && !Array.isArray(c.choices)) bad('choices is not an array');
  return c;
}

import type { AgentRequest, RequestResult } from '@stitch/agents';
import { ServeError, ServeErrorCode } from './errors.js';

/** Limits of one chat-completions request (the body as a whole is bounded by `bodyLimitBytes`). */
export const CHAT_LIMITS = {
  messages: 256,
  /** Characters of one message's text (a string, or all its text parts). */
  contentChars: 65_536,
  contentParts: 64,
  modelChars: 256,
  /** OpenAI's own metadata limits. */
  metadataKeys: 16,
  metadataKeyChars: 64,
  metadataValueChars: 512,
} as const;

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'];
const TEXT = { type: 'string', maxLength: CHAT_LIMITS.contentChars };

/** JSON schema of the fields this server reads; OpenAI's other fields (sampling, tools) pass unread. */
export const CHAT_SCHEMA = {
  type: 'object',
  required: ['model', 'messages'],
  properties: {
    model: { type: 'string', minLength: 1, maxLength: CHAT_LIMITS.modelChars },
    messages: {
      type: 'array',
      minItems: 1,
      maxItems: CHAT_LIMITS.messages,
      items: {
        type: 'object',
        required: ['role'],
        properties: {
          role: { type: 'string', enum: ROLES },
          content: {
            anyOf: [
              TEXT,
              { type: 'null' },
              {
                type: 'array',
                maxItems: CHAT_LIMITS.contentParts,
                items: {
                  type: 'object',
                  required: ['type'],
                  properties: { type: { type: 'string', maxLength: 64 }, text: TEXT },
                },
              },
            ],
          },
        },
      },
    },
    stream: { type: ['boolean', 'null'] },
    stream_options: {
      anyOf: [{ type: 'null' }, { type: 'object', properties: { include_usage: { type: 'boolean' } } }],
    },
    n: { anyOf: [{ type: 'null' }, { type: 'integer', minimum: 1, maximum: 1 }] },
    metadata: {
      anyOf: [
        { type: 'null' },
        {
          type: 'object',
          maxProperties: CHAT_LIMITS.metadataKeys,
          propertyNames: { maxLength: CHAT_LIMITS.metadataKeyChars },
          additionalProperties: { type: 'string', maxLength: CHAT_LIMITS.metadataValueChars },
        },
      ],
    },
  },
} as const;

type Part = { type: string; text?: string };
export interface ChatBody {
  model: string;
  messages: { role: string; content?: string | Part[] | null }[];
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  metadata?: Record<string, string> | null;
}

function textOf(content: string | Part[] | null | undefined, at: number): string {
  if (typeof content === 'string' || content == null) return content ?? '';
  const other = content.find((p) => p.type !== 'text');
  if (other) {
    throw new ServeError(
      ServeErrorCode.InvalidRequest,
      `messages[${at}].content has a "${other.type}" part; this server takes text parts only`,
    );
  }
  const text = content.map((p) => p.text ?? '').join('\n');
  if (text.length > CHAT_LIMITS.contentChars) {
    throw new ServeError(
      ServeErrorCode.InvalidRequest,
      `messages[${at}].content has ${text.length} characters; at most ${CHAT_LIMITS.contentChars} are accepted`,
    );
  }
  return text;
}

/**
 * The graph's input: the last user message is the query; `metadata.expr` and `metadata.search` are
 * the tool arguments (the sample's synthetic LLM cannot write them). Earlier turns are not sent.
 */
export function agentRequestOf(body: ChatBody): AgentRequest {
  const at = body.messages.findLastIndex((m) => m.role === 'user');
  if (at < 0)
    throw new ServeError(ServeErrorCode.InvalidRequest, 'messages holds no message with role "user"');
  const query = textOf(body.messages[at]!.content, at);
  if (query.trim() === '')
    throw new ServeError(
      ServeErrorCode.InvalidRequest,
      `messages[${at}] (the last user message) has no text`,
    );
  return { query, expr: body.metadata?.expr ?? '', search: body.metadata?.search ?? '' };
}

/** The graph's answer as JSON can carry it: byte fields (a voice agent's speech) as base64. */
export function answerJson(answer: unknown): unknown {
  if (answer instanceof Uint8Array) return Buffer.from(answer).toString('base64');
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) return answer ?? null;
  return Object.fromEntries(
    Object.entries(answer).map(([k, v]) => [
      k,
      v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v,
    ]),
  );
}

/**
 * The assistant's text: the LLM's text (the answer's `llmText`, what a stream sends token by token)
 * when the graph has one; else the answer itself, as a string or its JSON.
 */
export function contentOf(answer: unknown): string {
  const text = (answer as { llmText?: unknown } | null)?.llmText;
  if (typeof text === 'string') return text;
  return typeof answer === 'string' ? answer : JSON.stringify(answerJson(answer));
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/**
 * Tokens in the in-repo decoder's byte vocabulary: the query's UTF-8 bytes, and the characters of the
 * answer's `llmText` (detokenize writes one character per generated token). Counted here: the
 * graph's output op passes no operator counts on.
 */
export function usageOf(request: AgentRequest, answer: unknown): Usage {
  const prompt = Buffer.byteLength(request.query ?? '', 'utf8');
  const text = (answer as { llmText?: unknown } | null)?.llmText;
  const completion = typeof text === 'string' ? text.length : 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/**
 * The extension field `stitch` of responses (clients ignore unknown fields): the graph's whole answer
 * and where the request ran.
 */
export function stitchInfo(r: RequestResult) {
  return {
    answer: answerJson(r.answer),
    latency_ms: Math.round(r.latencyMs * 10) / 10,
    usd: r.usd,
    retries: r.retries,
    ops: Object.fromEntries(
      Object.entries(r.ops).map(([id, o]) => [
        id,
        { node: o.node, device: o.device, ms: o.ms, modelled: o.modelled },
      ]),
    ),
  };
}

export interface Head {
  id: string;
  created: number;
  model: string;
}

export function completion(head: Head, request: AgentRequest, r: RequestResult) {
  return {
    ...head,
    object: 'chat.completion',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: contentOf(r.answer), refusal: null },
        finish_reason: 'stop',
        logprobs: null,
      },
    ],
    usage: usageOf(request, r.answer),
    stitch: stitchInfo(r),
  };
}

export function chunk(
  head: Head,
  delta: Record<string, string>,
  finish: string | null = null,
  extra: Record<string, unknown> = {},
) {
  return {
    ...head,
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
    ...extra,
  };
}

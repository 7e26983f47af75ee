import { AgentsError, AgentsErrorCode } from './errors.js';
import { perConfig } from './memo.js';
import { type LlmUsage, RemoteLlm } from './remote-llm.js';

/** Environment variable holding the API key sent to remote LLM endpoints (never part of a config). */
export const LLM_API_KEY_ENV = 'STITCH_LLM_API_KEY';

type Attrs = Record<string, string | number | boolean>;
const num = (v: unknown) => (typeof v === 'number' ? v : undefined);

/**
 * The client of an `llm.call` op's config (attrs `endpoint`, `remote_model` or `model`,
 * `max_tokens`, `timeout_ms`, `retries`, `stream`), built once per config.
 */
export const remoteLlmFor = perConfig((cfg: { attrs: Attrs }): RemoteLlm => {
  const a = cfg.attrs;
  if (typeof a.endpoint !== 'string')
    throw new AgentsError(
      AgentsErrorCode.HttpRequestInvalid,
      'llm.call needs an endpoint attr (…/v1 of an OpenAI-compatible server)',
    );
  const model = typeof a.remote_model === 'string' ? a.remote_model : a.model;
  const apiKey = process.env[LLM_API_KEY_ENV];
  return new RemoteLlm({
    endpoint: a.endpoint,
    model: typeof model === 'string' ? model : '',
    ...(apiKey ? { apiKey } : {}),
    maxTokens: num(a.max_tokens),
    timeoutMs: num(a.timeout_ms),
    retries: num(a.retries),
    ...(typeof a.stream === 'boolean' ? { stream: a.stream } : {}),
  });
});

/** Usage of one call, priced when the op's attrs give `usd_per_mtok_prompt` / `usd_per_mtok_completion`. */
export interface PricedUsage extends LlmUsage {
  usd?: number;
}

/**
 * Runs an `llm.call` on the remote endpoint: the system prompt from attrs `system`, the user's from
 * `ctx.prompt` or `ctx.query`. Adds `llmText` and this op's tokens under `usage[opId]`, so the
 * request's answer carries what each remote call cost.
 */
export async function llmCall(
  cfg: { attrs: Attrs; opId: string },
  ctx: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const user = typeof ctx.prompt === 'string' ? ctx.prompt : typeof ctx.query === 'string' ? ctx.query : '';
  const system = cfg.attrs.system;
  const r = await remoteLlmFor(cfg).complete([
    ...(typeof system === 'string' ? [{ role: 'system' as const, content: system }] : []),
    { role: 'user', content: user },
  ]);
  const usage: PricedUsage = { ...r.usage };
  const pIn = num(cfg.attrs.usd_per_mtok_prompt);
  const pOut = num(cfg.attrs.usd_per_mtok_completion);
  if (pIn !== undefined || pOut !== undefined)
    usage.usd = (usage.promptTokens * (pIn ?? 0) + usage.completionTokens * (pOut ?? 0)) / 1e6;
  const before = typeof ctx.usage === 'object' && ctx.usage !== null ? ctx.usage : {};
  return { llmText: r.text, usage: { ...before, [cfg.opId]: usage } };
}

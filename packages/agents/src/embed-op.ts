import { AgentsError, AgentsErrorCode } from './errors.js';
import { checkpointFor, encodeText } from './llm.js';
import { LLM_API_KEY_ENV } from './llm-call.js';
import { perConfig } from './memo.js';
import { OpenAiEndpoint } from './openai-endpoint.js';

type Attrs = Record<string, string | number | boolean>;
type Context = Record<string, unknown>;

/** Longest text embedded in one call (characters). */
export const MAX_EMBED_CHARS = 64 * 1024;

const endpointFor = perConfig(
  (cfg: { attrs: Attrs }) =>
    new OpenAiEndpoint(
      String(cfg.attrs.endpoint),
      '/embeddings',
      { status: AgentsErrorCode.LlmFailed, invalid: AgentsErrorCode.LlmResponseInvalid },
      {
        timeoutMs: typeof cfg.attrs.timeout_ms === 'number' ? cfg.attrs.timeout_ms : 30_000,
        maxResponseBytes: 4 * 1024 * 1024,
      },
      process.env[LLM_API_KEY_ENV],
    ),
);

/** An OpenAI-compatible `/v1/embeddings` answer's first vector. */
async function remoteEmbedding(cfg: { attrs: Attrs }, text: string): Promise<Float32Array> {
  const e = endpointFor(cfg);
  const model =
    typeof cfg.attrs.remote_model === 'string' ? cfg.attrs.remote_model : String(cfg.attrs.engine ?? '');
  const answer = (await e.post(JSON.stringify({ model, input: text }))) as {
    data?: { embedding?: unknown }[];
  } | null;
  const v = answer?.data?.[0]?.embedding;
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
    throw new AgentsError(
      AgentsErrorCode.LlmResponseInvalid,
      `${e.url.host} answered without data[0].embedding as numbers`,
    );
  return Float32Array.from(v as number[]);
}

/**
 * `text.embed`: the request's query (or transcript) as a vector in `embedding`, for a vector search
 * after it: from an OpenAI-compatible embeddings endpoint when the op has an `endpoint` attr, else
 * the node's LLM weights on compiled kernels (mean-pooled hidden states). Its width must be the
 * graph's `dim`, which is the index's.
 */
export async function embedOp(cfg: { attrs: Attrs }, ctx: Context): Promise<Context> {
  const text =
    typeof ctx.query === 'string' ? ctx.query : typeof ctx.transcript === 'string' ? ctx.transcript : '';
  if (text.length > MAX_EMBED_CHARS)
    throw new AgentsError(
      AgentsErrorCode.InputTooLarge,
      `text.embed takes at most ${MAX_EMBED_CHARS} characters, got ${text.length}`,
    );
  const remote = typeof cfg.attrs.endpoint === 'string';
  const embedding = remote
    ? await remoteEmbedding(cfg, text)
    : await encodeText(text, checkpointFor(cfg.attrs));
  const dim = cfg.attrs.dim;
  if (embedding.length !== dim)
    throw new AgentsError(
      AgentsErrorCode.VectorInvalid,
      `text.embed's encoder makes ${embedding.length}-dimensional vectors but the graph says dim = ${String(dim)}: set dim (and the index's) to ${embedding.length}`,
    );
  return { embedding, embedEngine: remote ? `openai-compatible ${endpointFor(cfg).url.host}` : 'local' };
}

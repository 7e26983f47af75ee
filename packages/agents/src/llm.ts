import { isAbsolute, relative, resolve } from 'node:path';
import {
  argmax,
  fusedDecode,
  KernelRuntime,
  kernelOps,
  Llama,
  type LlamaConfig,
  loadCheckpoint,
  probeHost,
  syntheticWeights,
  type Tokenizer,
} from '@stitch/kernels';
import { AgentsError, AgentsErrorCode } from './errors.js';

/**
 * The LLM ops' model when no checkpoint is named: a Llama-architecture decoder on **synthetic
 * weights** (deterministic, untrained), byte-level vocabulary, run on compiled kernels. Kernel
 * calls execute on libuv pool threads through the native addon, never on the event loop.
 */
export const TINY_LLAMA: LlamaConfig = {
  dim: 128,
  hiddenDim: 344,
  layers: 4,
  heads: 4,
  kvHeads: 2,
  vocab: 256,
  seqLen: 256,
};

/** Longest prompt fed to the model (bytes, or tokens of a checkpoint's tokenizer). */
export const MAX_PROMPT = 160;
/** Tokens a node generates per request unless STITCH_LLM_MAX_TOKENS says otherwise. */
export const DECODE_TOKENS = 16;
/**
 * The node's cap on generated tokens per request: a decode op's `tokens` attribute (the graph's
 * max_tokens) may ask for more, and the cost model prices what it asks; the node generates at most
 * this many for real. 1..1024.
 */
export const MAX_TOKENS_ENV = 'STITCH_LLM_MAX_TOKENS';

/** Tokens to generate for a decode op asking `asked`: at most the node's cap. */
export function decodeSteps(asked: unknown): number {
  const raw = Number(process.env[MAX_TOKENS_ENV] ?? DECODE_TOKENS);
  const cap = Number.isInteger(raw) && raw >= 1 && raw <= 1024 ? raw : DECODE_TOKENS;
  return typeof asked === 'number' && Number.isInteger(asked) && asked >= 1 ? Math.min(asked, cap) : cap;
}

/** The node's default checkpoint (llama2.c or GGUF) for the LLM ops, when an op names none. */
export const CHECKPOINT_ENV = 'STITCH_LLM_CHECKPOINT';
/** The only directory an op's `checkpoint` attribute may name a file in (a deployment never picks arbitrary node files). */
export const CHECKPOINT_DIR_ENV = 'STITCH_LLM_CHECKPOINT_DIR';

/** Which weights an LLM op runs: a checkpoint file, or the synthetic TINY_LLAMA (`null`). */
export function checkpointFor(attrs: Record<string, string | number | boolean>): string | null {
  const named = attrs.checkpoint;
  if (named === undefined || named === '') return process.env[CHECKPOINT_ENV] || null;
  const dir = process.env[CHECKPOINT_DIR_ENV];
  if (typeof named !== 'string' || !dir) {
    throw new AgentsError(
      AgentsErrorCode.OpConfigInvalid,
      `the op's checkpoint attribute needs a file name and the node's ${CHECKPOINT_DIR_ENV} set to the directory holding it`,
    );
  }
  const path = resolve(dir, named);
  const inside = relative(resolve(dir), path);
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
    throw new AgentsError(
      AgentsErrorCode.OpConfigInvalid,
      `checkpoint ${JSON.stringify(named)} is outside ${CHECKPOINT_DIR_ENV} (${dir}); name a file in it`,
    );
  }
  return path;
}

/** A loaded model and what it is, for the ops' output. */
export interface LlmModel {
  model: Llama;
  /** `synthetic TINY_LLAMA (untrained)` or `checkpoint <file> (<format>)`. */
  label: string;
}

const models = new Map<string, Promise<LlmModel>>();
const tokenizers = new Map<string, Promise<Tokenizer>>();
let runtime: KernelRuntime | undefined;

/**
 * One model per role (prefill, decode) and weights in this process, so KV caches of different
 * actors never mix. A checkpoint decodes with the fused step (two native calls per token).
 */
export function llmModel(role: string, checkpoint: string | null): Promise<LlmModel> {
  const key = `${role}\0${checkpoint ?? ''}`;
  let m = models.get(key);
  if (!m) {
    m = (async () => {
      runtime ??= new KernelRuntime({ threads: 1 });
      const target = (probeHost().x86Level ?? 'x86-64') as 'x86-64';
      if (checkpoint === null) {
        const ops = await kernelOps(TINY_LLAMA, runtime, { target });
        return {
          model: new Llama(syntheticWeights(TINY_LLAMA, 7), ops),
          label: 'synthetic TINY_LLAMA (untrained)',
        };
      }
      const { weights, format } = await loadCheckpoint(checkpoint);
      const ops = await kernelOps(weights.config, runtime, { target });
      const fused = role === 'decode' ? await fusedDecode(weights, runtime, { target }) : undefined;
      return { model: new Llama(weights, ops, fused), label: `checkpoint ${checkpoint} (${format})` };
    })();
    models.set(key, m);
    m.catch(() => models.delete(key));
  }
  return m;
}

/** A checkpoint's tokenizer (the tokenize and detokenize ops need no weights or kernels). */
function checkpointTokenizer(checkpoint: string): Promise<Tokenizer> {
  let t = tokenizers.get(checkpoint);
  if (!t) {
    t = loadCheckpoint(checkpoint).then(({ tokenizer }) => {
      if (!tokenizer) throw noTokenizer(checkpoint);
      return tokenizer;
    });
    tokenizers.set(checkpoint, t);
    t.catch(() => tokenizers.delete(checkpoint));
  }
  return t;
}

/** Prompt ids: the checkpoint's tokenizer (BOS first), else UTF-8 bytes; at most MAX_PROMPT. */
export async function tokenize(text: string, checkpoint: string | null): Promise<number[]> {
  if (checkpoint === null) return [...new TextEncoder().encode(text)].slice(0, MAX_PROMPT);
  const tokenizer = await checkpointTokenizer(checkpoint);
  return tokenizer.encode(text.slice(0, 4 * MAX_PROMPT)).slice(0, MAX_PROMPT);
}

/** Text of generated ids: the checkpoint's pieces, else the synthetic model's bytes mapped onto printable ASCII. */
export async function detokenize(ids: number[], checkpoint: string | null): Promise<string> {
  if (checkpoint === null) return ids.map((id) => String.fromCharCode(32 + (id % 95))).join('');
  const tokenizer = await checkpointTokenizer(checkpoint);
  const vocab = tokenizer.vocab;
  return tokenizer.decode(ids.filter((id) => Number.isInteger(id) && id >= 0 && id < vocab));
}

function noTokenizer(checkpoint: string): AgentsError {
  return new AgentsError(
    AgentsErrorCode.OpConfigInvalid,
    `checkpoint ${checkpoint} has no tokenizer: put its tokenizer.bin beside it (llama2.c) or use a GGUF file`,
  );
}

/** Ids the model can take: in its vocabulary, at least one, short enough to leave room to decode `steps`. */
function promptIds(ids: number[], model: Llama, steps = DECODE_TOKENS): number[] {
  const { vocab, seqLen } = model.weights.config;
  const ok = ids.filter((id) => Number.isInteger(id) && id >= 0 && id < vocab);
  return (ok.length > 0 ? ok : [0]).slice(0, Math.max(1, seqLen - steps - 1));
}

/** First generated token: argmax of the logits after the prompt. */
export async function prefill(ids: number[], checkpoint: string | null): Promise<number> {
  const { model } = await llmModel('prefill', checkpoint);
  return argmax(await model.prefill(promptIds(ids, model)));
}

/** Where a streaming decode sends each token as it is chosen, and what stops it. */
export interface TokenSink {
  emit(token: number): Promise<void>;
  signal: AbortSignal;
}

/**
 * Greedy decode of `steps` tokens. The KV cache is rebuilt here from the prompt (kv.transfer forwards
 * the prompt ids, not the cache), because prefill and decode may run in different processes. With a
 * `sink`, each token goes out as soon as it is chosen and an aborted signal stops before the next step.
 */
export async function decode(
  ids: number[],
  first: number,
  steps: number,
  checkpoint: string | null,
  sink?: TokenSink,
): Promise<number[]> {
  const { model } = await llmModel('decode', checkpoint);
  steps = Math.max(1, Math.min(steps, model.weights.config.seqLen - 2));
  await model.prefill(promptIds(ids, model, steps));
  const vocab = model.weights.config.vocab;
  const out = [Number.isInteger(first) && first >= 0 && first < vocab ? first : 0];
  await sink?.emit(out[0]!);
  let logits = await model.decode(out[0]!);
  while (out.length < steps) {
    sink?.signal.throwIfAborted();
    const next = argmax(logits);
    out.push(next);
    await sink?.emit(next);
    if (out.length < steps) logits = await model.decode(next);
  }
  return out;
}

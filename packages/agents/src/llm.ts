import {
  argmax,
  type FusedDecode,
  fusedDecode,
  KernelRuntime,
  kernelOps,
  Llama,
  type LlamaConfig,
  type LlamaOps,
  type LlamaWeights,
  loadCheckpoint,
  loadCheckpointTokenizer,
  probeHost,
  syntheticExperts,
  syntheticWeights,
  type Tokenizer,
  withExperts,
} from '@stitch/kernels';
import { type BatcherLimits, type BatcherStats, DecodeBatcher, type KvCache } from './decode-batcher.js';
import { AgentsError, AgentsErrorCode } from './errors.js';
import { fileInDir } from './file-in-dir.js';
import { cachedPromise } from './memo.js';
import { inSpan } from './tracing.js';

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
  return fileInDir(dir, named, CHECKPOINT_DIR_ENV, 'checkpoint');
}

/** Sequences a node's decode steps together (continuous batching); 1 = one sequence at a time. */
export const MAX_BATCH_ENV = 'STITCH_LLM_MAX_BATCH';

/** The node's batching limits: STITCH_LLM_MAX_BATCH (1..256, default 1) KV slots and batch, 4× as many waiting. */
export function batchLimits(): BatcherLimits {
  const raw = Number(process.env[MAX_BATCH_ENV] ?? 1);
  const batch = Number.isInteger(raw) && raw >= 1 && raw <= 256 ? raw : 1;
  return { maxSequences: batch, maxBatch: batch, maxQueued: 4 * batch };
}

/** A loaded model and what it is, for the ops' output. */
export interface LlmModel {
  weights: LlamaWeights;
  ops: LlamaOps;
  /** The fused decode step and prefill (checkpoints): prefill and a sequence stepped alone use them. */
  fused: FusedDecode | undefined;
  /** `synthetic TINY_LLAMA (untrained)` or `checkpoint <file> (<format>)`. */
  label: string;
}

/** What runs one checkpoint in this process: the model, one sequence for prefill, the decode batcher. */
interface Engine {
  model: LlmModel;
  prefiller: Llama;
  /** Prefills run one after another: they share `prefiller`'s KV cache until it is exported. */
  prefilling: Promise<unknown>;
  batcher: DecodeBatcher;
}

const engines = new Map<string, Promise<Engine>>();
const tokenizers = new Map<string, Promise<Tokenizer>>();
let runtime: KernelRuntime | undefined;

/**
 * The weights and kernels of `checkpoint` (null: the synthetic TINY_LLAMA), loaded once per process
 * and shared by its prefill and decode ops; KV caches are per sequence, never shared.
 */
function engine(checkpoint: string | null): Promise<Engine> {
  return cachedPromise(engines, checkpoint ?? '', async () => {
    runtime ??= new KernelRuntime({ threads: 1 });
    const target = hostTarget();
    let model: LlmModel;
    if (checkpoint === null) {
      const ops = await kernelOps(TINY_LLAMA, runtime, { target });
      const weights = syntheticWeights(TINY_LLAMA, 7);
      model = { weights, ops, fused: undefined, label: 'synthetic TINY_LLAMA (untrained)' };
    } else {
      const { weights, format } = await loadCheckpoint(checkpoint);
      const ops = await kernelOps(weights.config, runtime, { target });
      const fused = await fusedDecode(weights, runtime, { target, prefill: true });
      model = { weights, ops, fused, label: `checkpoint ${checkpoint} (${format})` };
    }
    return {
      model,
      // A checkpoint's prompt runs as one fused kernel call (two with the classifier).
      prefiller: new Llama(model.weights, model.ops, model.fused),
      prefilling: Promise.resolve(),
      batcher: new DecodeBatcher(model.weights, model.ops, batchLimits(), model.fused),
    };
  });
}

const hostTarget = () => (probeHost().x86Level ?? 'x86-64') as 'x86-64';

/** The synthetic model's mixture of experts (expert parallelism splits it): 4 experts, 2 per token. */
export const TINY_EXPERTS = { experts: 4, perToken: 2 } as const;

const expertModels = new Map<string, Promise<LlmModel>>();

/**
 * The model with a mixture of experts, for an expert-parallel split: the synthetic TINY_LLAMA with
 * TINY_EXPERTS in place of its dense FFN (its other weights are the same). Checkpoints are dense.
 */
export function expertModel(checkpoint: string | null): Promise<LlmModel> {
  if (checkpoint !== null)
    return Promise.reject(
      new AgentsError(
        AgentsErrorCode.OpConfigInvalid,
        `expert parallelism needs a mixture of experts and checkpoint ${checkpoint} has a dense FFN; split it with tp, or use the synthetic model`,
      ),
    );
  return cachedPromise(expertModels, '', async () => {
    const e = await engine(null);
    const moe = syntheticExperts(TINY_LLAMA, TINY_EXPERTS.experts, TINY_EXPERTS.perToken, 7);
    const ops = await kernelOps(TINY_LLAMA, runtime!, {
      target: hostTarget(),
      experts: TINY_EXPERTS.experts,
    });
    return {
      weights: withExperts(e.model.weights, moe),
      ops,
      fused: undefined,
      label: `synthetic TINY_LLAMA with ${TINY_EXPERTS.experts} experts (untrained)`,
    };
  });
}

const rankKernels = new Map<string, Promise<LlamaOps>>();

/** The kernels of one rank of `checkpoint`'s model split `tp` ways (its heads, its share of the FFN). */
export function rankOps(checkpoint: string | null, tp: number): Promise<LlamaOps> {
  return cachedPromise(rankKernels, `${checkpoint ?? ''}\u0000${tp}`, async () =>
    kernelOps((await engine(checkpoint)).model.weights.config, runtime!, { target: hostTarget(), tp }),
  );
}

const embedders = new Map<string, Llama>();

/**
 * `text` as one vector: the model's final-normed hidden states of its tokens, mean-pooled (width:
 * the model's dim). One encoder per checkpoint; embedding writes no KV cache, so calls may overlap.
 */
export async function encodeText(text: string, checkpoint: string | null): Promise<Float32Array> {
  const e = await engine(checkpoint);
  const key = checkpoint ?? '';
  let encoder = embedders.get(key);
  if (!encoder) {
    encoder = new Llama(e.model.weights, e.model.ops);
    embedders.set(key, encoder);
  }
  return encoder.embed(promptIds(await tokenize(text, checkpoint), e.model.weights));
}

/** The model of `checkpoint` in this process, loading it (compiled kernels) on first use. */
export async function llmModel(checkpoint: string | null): Promise<LlmModel> {
  return (await engine(checkpoint)).model;
}

/** The decode batcher's counters in this process (for tests and the node's inspection). */
export async function decodeStats(checkpoint: string | null): Promise<BatcherStats> {
  return (await engine(checkpoint)).batcher.stats();
}

/** A checkpoint's tokenizer (the tokenize and detokenize ops need no weights or kernels). */
function checkpointTokenizer(checkpoint: string): Promise<Tokenizer> {
  return cachedPromise(tokenizers, checkpoint, async () => {
    const tokenizer = await loadCheckpointTokenizer(checkpoint);
    if (!tokenizer) throw noTokenizer(checkpoint);
    return tokenizer;
  });
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

/** Ids the model can take: in its vocabulary, at least one, short enough to leave room to decode the node's cap. */
export function promptIds(ids: number[], weights: LlamaWeights): number[] {
  const { vocab, seqLen } = weights.config;
  const ok = ids.filter((id) => Number.isInteger(id) && id >= 0 && id < vocab);
  return (ok.length > 0 ? ok : [0]).slice(0, Math.max(1, seqLen - decodeSteps(undefined) - 1));
}

/** What prefill hands on: the first generated token and the prompt's KV cache. */
export interface Prefilled {
  first: number;
  kv: KvCache;
}

/**
 * First generated token (argmax of the logits after the prompt) and the KV cache decode continues
 * from. The kernels' run is a span (`kernel llm.prefill`), the child of `traceparent` when given.
 */
export async function prefill(
  ids: number[],
  checkpoint: string | null,
  traceparent?: string,
): Promise<Prefilled> {
  const e = await engine(checkpoint);
  const prompt = promptIds(ids, e.model.weights);
  const run = e.prefilling.then(() =>
    inSpan(
      'kernel llm.prefill',
      { 'stitch.llm.model': e.model.label, 'stitch.llm.tokens': prompt.length },
      async () => ({ first: argmax(await e.prefiller.prefill(prompt)), kv: e.prefiller.exportKv() }),
      traceparent,
    ),
  );
  e.prefilling = run.catch(() => undefined);
  return run;
}

/** Where a streaming decode sends each token as it is chosen, and what stops it. */
export interface TokenSink {
  emit(token: number): Promise<void>;
  signal: AbortSignal;
}

/**
 * Greedy decode of `steps` tokens through the node's batcher (sequences of concurrent requests step
 * together). It continues from prefill's KV cache when one is handed over, else prefills the prompt
 * itself. With a `sink`, each token goes out as soon as it is chosen and an aborted signal takes the
 * sequence out before the next step, freeing its KV slot.
 */
export async function decode(
  ids: number[],
  first: number,
  steps: number,
  checkpoint: string | null,
  sink?: TokenSink,
  kv?: KvCache,
  traceparent?: string,
): Promise<number[]> {
  const e = await engine(checkpoint);
  const { vocab, seqLen } = e.model.weights.config;
  const prompt = promptIds(ids, e.model.weights);
  const start = kv?.position ?? prompt.length;
  const job = {
    ...(kv ? { kv } : {}),
    prompt,
    first: Number.isInteger(first) && first >= 0 && first < vocab ? first : 0,
    steps: Math.max(1, Math.min(steps, seqLen - start)),
    ...(sink ? { emit: sink.emit, signal: sink.signal } : {}),
  };
  // The sequence's steps run in the batcher's loop beside other requests': the span covers its own.
  return inSpan(
    'kernel llm.decode',
    {
      'stitch.llm.model': e.model.label,
      'stitch.llm.steps': job.steps,
      'stitch.llm.prefilled': kv !== undefined,
    },
    async (span) => {
      const tokens = await e.batcher.decode(job);
      span.setAttribute('stitch.llm.tokens', tokens.length);
      return tokens;
    },
    traceparent,
  );
}

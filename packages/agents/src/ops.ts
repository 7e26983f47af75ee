import { calculate } from './calculator.js';
import { embedOp } from './embed-op.js';
import { AgentsError, AgentsErrorCode } from './errors.js';
import { httpToolFor } from './http-tool.js';
import { fetchKv, storeKv } from './kv-handoff.js';
import {
  checkpointFor,
  decode,
  decodeSteps,
  detokenize,
  llmModel,
  prefill,
  type TokenSink,
  tokenize,
} from './llm.js';
import { llmCall, remoteLlmFor } from './llm-call.js';
import { withAnswers, withMemory } from './memory.js';
import {
  decodeSplit,
  decodesSplit,
  isSplitOp,
  type OpActor,
  prepareSplit,
  runSplit,
} from './parallel-split.js';
import { privacyFilterFor, redactContext } from './privacy.js';
import { webSearch } from './search.js';
import { prepareSpeech, speakOp, transcribeOp } from './speech-ops.js';
import { isPartialField, mergePartials } from './vector-partitions.js';

/** What the coordinator tells an operator actor about the op it owns and where it runs. */
export interface OpConfig {
  deployment: string;
  opId: string;
  op: string;
  attrs: Record<string, string | number | boolean>;
  /** Device class it is placed on: `cpu` (real) or a catalog id run as `virtual:<id>` (modelled). */
  device: string;
  modelled: boolean;
  /** The cost model's predicted duration on `device`; the op takes this long when modelled. */
  estimatedMs: number;
  natsUrl: string;
  cluster: string;
}

/** Everything upstream ops produced for one request, merged; each op adds its own fields. */
export type Context = Record<string, unknown>;

/** What one run of an op reports back: its output and how long it took, labelled real or modelled. */
export interface OpReply {
  out: Context;
  /** Duration that counts: measured on `cpu`, the cost model's prediction when modelled. */
  ms: number;
  /** Wall time the handler spent computing the output in this process. */
  computeMs: number;
  device: string;
  modelled: boolean;
  node: string;
  /** True when the request had already been applied (a retry): the recorded reply, no second effect. */
  replay: boolean;
  /** Parts of its time the op measured itself (e.g. `kvStoreMs`, `kvFetchMs`), ms. */
  timings?: Record<string, number>;
}

export type { OpActor } from './parallel-split.js';

type OpFn = (cfg: OpConfig, ctx: Context, rid: string, actor?: OpActor) => Promise<Context>;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const ids = (v: unknown): number[] => (Array.isArray(v) ? v.filter((x) => typeof x === 'number') : []);

/** Fields that stay with the op that made them instead of flowing on (token ids are large-ish and private). */
const LOCAL = new Set(['ids', 'first', 'tokens', 'kv']);
/** …and the addresses of a tensor- or expert-parallel split, which only the LLM ops read. */
const isLocal = (k: string) => LOCAL.has(k) || /^split(\.|Group\.|Hidden$)/.test(k) || isPartialField(k);
/** Fields an op consumes: nothing after it reads them (the KV cache ends at decode, the audio at stt). */
const CONSUMED: Record<string, string> = { 'llm.decode': 'kv', 'text.stt': 'audio' };
/** What an answer carries besides the tool agent's fields, when the graph made them (voice, vector search). */
const ANSWER_FIELDS = [
  'transcript',
  'redactions',
  'spokenText',
  'speech',
  'sttEngine',
  'ttsEngine',
  'neighbours',
];

async function toolInvoke(cfg: OpConfig, ctx: Context): Promise<Context> {
  const tool = str(cfg.attrs.tool);
  // The synthetic LLM cannot write tool arguments, so they come from the request itself.
  if (tool === 'calculator') {
    const expr = str(ctx.expr) || '0';
    return { calc: { expr, value: calculate(expr) } };
  }
  if (tool === 'web_search') return { hits: await webSearch(str(ctx.search) || str(ctx.query)) };
  if (tool === 'http') return { http: await httpToolFor(cfg).request(ctx.http) };
  throw new AgentsError(
    AgentsErrorCode.OpUnknown,
    `tool "${tool}" is not one of calculator, web_search, http`,
  );
}

async function decodeOp(
  cfg: OpConfig,
  ctx: Context,
  rid: string,
  actor?: OpActor,
  sink?: TokenSink,
): Promise<Context> {
  const checkpoint = checkpointFor(cfg.attrs);
  // A split graph (tp or ep): the prompt's state is with the groups and ranks; decode walks the groups.
  if (actor && decodesSplit(cfg.attrs, ctx)) return decodeSplit(cfg.attrs, ctx, rid, actor, sink);
  const first = typeof ctx.first === 'number' ? ctx.first : 0;
  const t0 = performance.now();
  const kv = ctx.kv === undefined ? undefined : await fetchKv(cfg, ctx.kv);
  const kvFetchMs = performance.now() - t0;
  const steps = decodeSteps(cfg.attrs.tokens);
  const tokens = await decode(ids(ctx.ids), first, steps, checkpoint, sink, kv, actor?.traceparent);
  return {
    tokens,
    llmModel: (await llmModel(checkpoint)).label,
    ...(kv ? { $timings: { kvFetchMs } } : {}),
  };
}

/** The function of each op kind this package runs for real (on cpu) or for its output (modelled). */
export const OP_FUNCTIONS: Record<string, OpFn> = {
  'agent.input': async () => ({}),
  'agent.output': async (_cfg, ctx) => {
    const top = Array.isArray(ctx.hits) ? (ctx.hits[0] as { title?: string } | undefined)?.title : undefined;
    const answer: Context = {
      calc: ctx.calc,
      found: top ?? null,
      llmText: ctx.llmText,
      llmModel: ctx.llmModel,
    };
    for (const k of ANSWER_FIELDS) if (ctx[k] !== undefined) answer[k] = ctx[k];
    return { answer };
  },
  'memory.load': (cfg) =>
    withMemory(cfg.natsUrl, cfg.cluster, async (kv) => {
      const e = await kv.get(str(cfg.attrs.key) || 'default');
      return { recall: e?.operation === 'PUT' ? e.string() : null };
    }),
  'memory.store': (cfg, ctx, rid) =>
    withMemory(cfg.natsUrl, cfg.cluster, async (kv) => {
      const key = str(cfg.attrs.key) || 'default';
      const value = JSON.stringify(ctx.calc ?? null);
      await kv.put(key, value);
      await withAnswers(cfg.natsUrl, cfg.cluster, (answers) =>
        answers.put(`${cfg.deployment}.${rid}`, value),
      );
      return { stored: key };
    }),
  'memory.vector_merge': async (cfg, ctx) => ({
    neighbours: mergePartials(ctx, Number(cfg.attrs.partitions), Number(cfg.attrs.k)),
  }),
  'tool.invoke': toolInvoke,
  'text.privacy_filter': async (cfg, ctx) => redactContext(privacyFilterFor(cfg), ctx),
  'text.stt': transcribeOp,
  'text.embed': embedOp,
  'text.tts': speakOp,
  'llm.call': llmCall,
  // The weights: the op's `checkpoint` attribute, else the node's STITCH_LLM_CHECKPOINT, else synthetic.
  'llm.tokenize': async (cfg, ctx) => ({
    ids: await tokenize(`${str(ctx.query)} ${str(ctx.recall)}`, checkpointFor(cfg.attrs)),
  }),
  // The prompt's KV cache goes to decode (stored for it; kv.transfer passes the reference on)
  // instead of decode computing it again.
  'llm.prefill': async (cfg, ctx, rid, actor) => {
    if (isSplitOp(cfg.op, cfg.attrs)) return runSplit(cfg.op, cfg.attrs, ctx, rid, actor);
    const { first, kv } = await prefill(ids(ctx.ids), checkpointFor(cfg.attrs), actor?.traceparent);
    const t0 = performance.now();
    const ref = await storeKv(cfg, rid, kv);
    return ref ? { first, kv: ref, $timings: { kvStoreMs: performance.now() - t0 } } : { first };
  },
  'llm.allreduce': (cfg, ctx, rid, actor) => runSplit(cfg.op, cfg.attrs, ctx, rid, actor),
  'llm.merge': (cfg, ctx, rid, actor) => runSplit(cfg.op, cfg.attrs, ctx, rid, actor),
  'kv.transfer': async () => ({}),
  'llm.decode': (cfg, ctx, rid, actor) => decodeOp(cfg, ctx, rid, actor),
  'llm.detokenize': async (cfg, ctx) => ({
    llmText: await detokenize(ids(ctx.tokens), checkpointFor(cfg.attrs)),
  }),
};

/** Where a streaming op sends its items as it makes them, and what stops it (the caller's cancel). */
export interface OpStream {
  write(item: unknown): Promise<void>;
  readonly signal: AbortSignal;
}

type StreamFn = (
  cfg: OpConfig,
  ctx: Context,
  rid: string,
  stream: OpStream,
  actor?: OpActor,
) => Promise<Context>;

/** The streaming form of the ops in STREAMING_OPS (`GraphRunner.stream` asks them with a stream). */
export const STREAM_FUNCTIONS: Record<string, StreamFn> = {
  'llm.decode': (cfg, ctx, rid, stream, actor) =>
    decodeOp(cfg, ctx, rid, actor, { emit: (token) => stream.write({ token }), signal: stream.signal }),
};

/** How many items an op's streaming form makes (decode: its tokens), for pacing a modelled one. */
export function streamItems(cfg: OpConfig): number {
  return cfg.op === 'llm.decode' ? decodeSteps(cfg.attrs.tokens) : 1;
}

/**
 * Runs the op's function (its streaming form when `stream` is given and it has one); the merged
 * context flows on minus fields downstream ops do not read.
 */
export async function runOp(
  cfg: OpConfig,
  ctx: Context,
  rid: string,
  stream?: OpStream,
  actor?: OpActor,
): Promise<Context> {
  const streaming = stream ? STREAM_FUNCTIONS[cfg.op] : undefined;
  const fn = OP_FUNCTIONS[cfg.op];
  const own = streaming
    ? await streaming(cfg, ctx, rid, stream!, actor)
    : fn
      ? await fn(cfg, ctx, rid, actor)
      : {};
  const keep = cfg.op.startsWith('llm.') || cfg.op === 'kv.transfer';
  const out: Context = {};
  for (const [k, v] of Object.entries(ctx)) if (keep || !isLocal(k)) out[k] = v;
  const consumed = CONSUMED[cfg.op];
  if (consumed) delete out[consumed];
  return Object.assign(out, own);
}

/** Loads what an op needs before its first request (compiled kernels, the memory bucket). */
export async function prepareOp(cfg: OpConfig): Promise<void> {
  if (
    cfg.op === 'llm.prefill' ||
    cfg.op === 'llm.decode' ||
    cfg.op === 'llm.allreduce' ||
    cfg.op === 'llm.merge'
  ) {
    await llmModel(checkpointFor(cfg.attrs));
    await prepareSplit(cfg.op, cfg.attrs);
  } else if (cfg.op === 'memory.load') await withMemory(cfg.natsUrl, cfg.cluster, async () => undefined);
  else if (cfg.op === 'memory.store') {
    await withMemory(cfg.natsUrl, cfg.cluster, async () => undefined);
    await withAnswers(cfg.natsUrl, cfg.cluster, async () => undefined);
  } else if (cfg.op === 'tool.invoke' && cfg.attrs.tool === 'web_search') await webSearch('warm up', 1);
  else if (cfg.op === 'text.privacy_filter') privacyFilterFor(cfg);
  else if (cfg.op === 'tool.invoke' && cfg.attrs.tool === 'http') httpToolFor(cfg);
  else if (cfg.op === 'llm.call') remoteLlmFor(cfg);
  else if (cfg.op === 'text.stt' || cfg.op === 'text.tts') await prepareSpeech(cfg);
  else if (cfg.op === 'text.embed' && typeof cfg.attrs.endpoint !== 'string')
    await llmModel(checkpointFor(cfg.attrs));
}

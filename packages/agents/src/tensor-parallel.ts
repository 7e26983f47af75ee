// Tensor parallelism as the decomposed graph says, on real data. Each `llm.prefill` op with `tp` and
// `shard` attrs is a rank of its layer group: it holds that rank's weight slices and, per request,
// the KV cache of its heads. Each `llm.allreduce` op is its group's all-reduce: it sends the hidden
// state to the group's ranks block by block (attention, then FFN, of every layer), sums their
// partials onto the residual, and keeps the group's output for the next group. `llm.decode` with
// `tp` walks the groups for every new token, and the ranks' KV caches stay where prefill wrote them.
// Addresses travel in the request's context: `tp.<layer_start>.<shard>` (a rank), `tpHidden` (the
// group whose output is the next group's input) and `tpGroup.<layer_start>` (every group, for decode).
import {
  allReduce,
  argmax,
  LlamaShard,
  type ShardKv,
  shardWeights,
  TensorParallelLlama,
} from '@stitch/kernels';
import { findModel } from '@stitch/models';
import type { ActorRef, ActorRefData } from '@stitch/runtime';
import { AgentsError, AgentsErrorCode } from './errors.js';
import { checkpointFor, decodeSteps, llmModel, promptIds, rankOps, type TokenSink } from './llm.js';

type Attrs = Record<string, string | number | boolean>;
type Context = Record<string, unknown>;

/** Requests a rank or group keeps state for at once; past it the oldest is dropped. */
export const MAX_TP_SEQUENCES = 32;
/** State of a request nobody touched for this long is dropped (its decode never came, or died). */
export const TP_SEQUENCE_TTL_MS = 120_000;
const ASK_MS = 30_000;

/** What an op of the TP path needs of its actor: its own address, and refs to the others. */
export interface OpActor {
  self: ActorRefData;
  ref(data: ActorRefData): ActorRef;
}

const fail = (message: string): never => {
  throw new AgentsError(AgentsErrorCode.RequestFailed, message);
};

/** Per-request state, bounded in count and age. */
class Sequences<T> {
  readonly #m = new Map<string, { value: T; at: number }>();

  set(rid: string, value: T): void {
    this.#m.delete(rid);
    this.#m.set(rid, { value, at: Date.now() });
    const old = Date.now() - TP_SEQUENCE_TTL_MS;
    for (const [k, v] of this.#m) if (this.#m.size > MAX_TP_SEQUENCES || v.at < old) this.#m.delete(k);
  }

  get(rid: string, who: string): T {
    const e = this.#m.get(rid);
    if (!e)
      return fail(
        `${who} holds no state for request ${rid.slice(0, 128)} (never prefilled here, released, or dropped: at most ${MAX_TP_SEQUENCES} for ${TP_SEQUENCE_TTL_MS / 1000} s)`,
      );
    e.at = Date.now();
    return e.value;
  }

  delete(rid: string): void {
    this.#m.delete(rid);
  }
}

const int = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) ? v : undefined);

/** The IR's layer numbers (the modelled model's) mapped onto the layers of the weights that run. */
function realLayers(attrs: Attrs, start: number, end: number, layers: number): [number, number] {
  const modelled = findModel(String(attrs.model ?? ''))?.layers ?? layers;
  return [Math.round((start * layers) / modelled), Math.round((end * layers) / modelled)];
}

/** Whether an op is part of a tensor-parallel split (a rank or an all-reduce). */
export function isTensorParallel(op: string, attrs: Attrs): boolean {
  const tp = int(attrs.tp) ?? 1;
  return tp > 1 && ((op === 'llm.prefill' && int(attrs.shard) !== undefined) || op === 'llm.allreduce');
}

// ── ranks ────────────────────────────────────────────────────────────────────────────────────────

interface Rank {
  /** Null when the group's share of the real model's layers is empty. */
  shard: LlamaShard | null;
  kv: Sequences<ShardKv>;
}

const ranks = new Map<string, Promise<Rank>>();
const keyOf = (a: ActorRefData) => `${a.type}/${a.id}`;

function rankOf(attrs: Attrs, self: ActorRefData): Promise<Rank> {
  const key = keyOf(self);
  let r = ranks.get(key);
  if (!r) {
    r = (async () => {
      const checkpoint = checkpointFor(attrs);
      const { weights } = await llmModel(checkpoint);
      const tp = int(attrs.tp)!;
      const [a, b] = realLayers(
        attrs,
        int(attrs.layer_start) ?? 0,
        int(attrs.layer_end) ?? 0,
        weights.config.layers,
      );
      const shard =
        a < b
          ? new LlamaShard(
              shardWeights(weights, tp, int(attrs.shard)!, [a, b]),
              await rankOps(checkpoint, tp),
            )
          : null;
      return { shard, kv: new Sequences<ShardKv>() };
    })();
    ranks.set(key, r);
    r.catch(() => ranks.delete(key));
  }
  return r;
}

/** A rank's run for a request: it opens the request's KV cache and says where it is. */
async function openRank(attrs: Attrs, rid: string, actor: OpActor): Promise<Context> {
  const rank = await rankOf(attrs, actor.self);
  if (rank.shard) rank.kv.set(rid, rank.shard.newKv());
  return { [`tp.${int(attrs.layer_start) ?? 0}.${int(attrs.shard)}`]: { ...actor.self } };
}

// ── all-reduce groups ────────────────────────────────────────────────────────────────────────────

interface GroupRequest {
  /** The group's output for the prompt, until the next group (or decode) has read it. */
  hidden: Float32Array | undefined;
  ranks: ActorRefData[];
  layers: [number, number];
}

const groups = new Map<string, Sequences<GroupRequest>>();
const groupState = (self: ActorRefData) => {
  let g = groups.get(keyOf(self));
  if (!g) {
    g = new Sequences<GroupRequest>();
    groups.set(keyOf(self), g);
  }
  return g;
};

function address(v: unknown, what: string): ActorRefData {
  const a = v as { type?: unknown; id?: unknown } | undefined;
  if (typeof a?.type !== 'string' || typeof a.id !== 'string' || a.type.length > 256 || a.id.length > 512)
    return fail(`the request's context has no address for ${what}`);
  return { type: a.type, id: a.id };
}

/** One block of one layer across the group's ranks, all-reduced onto the residual. */
async function reduceBlock(
  actor: OpActor,
  ranksOf: ActorRefData[],
  rid: string,
  block: 'attention' | 'ffn',
  layer: number,
  x: Float32Array,
  pos: Int32Array,
  checkpoint: string | null,
): Promise<Float32Array> {
  const partials = (await Promise.all(
    ranksOf.map((r) => actor.ref(r).ask({ type: 'tp', rid, block, layer, x, pos }, { timeoutMs: ASK_MS })),
  )) as Float32Array[];
  return allReduce((await llmModel(checkpoint)).ops, x, partials);
}

/** The group's run for a request: the prompt through its layers across its ranks. */
async function runGroup(attrs: Attrs, ctx: Context, rid: string, actor: OpActor): Promise<Context> {
  const tp = int(attrs.tp)!;
  const prev = ctx.tpHidden as { actor?: unknown; layerEnd?: unknown } | undefined;
  const start = prev ? (int(prev.layerEnd) ?? fail('tpHidden has no layerEnd')) : 0;
  const end = start + (int(attrs.layers) ?? 0);
  const ranksOf = Array.from({ length: tp }, (_, r) =>
    address(ctx[`tp.${start}.${r}`], `rank ${r} of layers ${start}–${end}`),
  );
  const checkpoint = checkpointFor(attrs);
  const { weights, ops } = await llmModel(checkpoint);
  const prompt = promptIds(
    Array.isArray(ctx.ids) ? ctx.ids.filter((x): x is number => typeof x === 'number') : [],
    weights,
  );
  const x0 = prev
    ? ((await actor
        .ref(address(prev.actor, 'the previous group'))
        .ask({ type: 'tp', rid, hidden: true }, { timeoutMs: ASK_MS })) as Float32Array)
    : await ops.embedding(weights.tokenEmbedding, Int32Array.from(prompt));
  if (!(x0 instanceof Float32Array) || x0.length !== prompt.length * weights.config.dim)
    fail(
      `the previous group's output for request ${rid} is not ${prompt.length} rows of ${weights.config.dim}`,
    );
  const pos = Int32Array.from(prompt, (_, i) => i);
  const layers = realLayers(attrs, start, end, weights.config.layers);
  let x = x0;
  for (let l = layers[0]; l < layers[1]; l++) {
    x = await reduceBlock(actor, ranksOf, rid, 'attention', l, x, pos, checkpoint);
    x = await reduceBlock(actor, ranksOf, rid, 'ffn', l, x, pos, checkpoint);
  }
  groupState(actor.self).set(rid, { hidden: x, ranks: ranksOf, layers });
  return { tpHidden: { actor: { ...actor.self }, layerEnd: end }, [`tpGroup.${start}`]: { ...actor.self } };
}

// ── decode ───────────────────────────────────────────────────────────────────────────────────────

/** Whether decode has groups to walk (a TP graph); otherwise it decodes on its own. */
export function hasTensorParallelGroups(ctx: Context): boolean {
  return Object.keys(ctx).some((k) => k.startsWith('tpGroup.'));
}

/** Greedy decode through the groups' ranks: the first token from the last group's output, then a walk per token. */
export async function decodeTensorParallel(
  attrs: Attrs,
  ctx: Context,
  rid: string,
  actor: OpActor,
  sink?: TokenSink,
): Promise<{ tokens: number[]; groups: number }> {
  const checkpoint = checkpointFor(attrs);
  const { weights, ops } = await llmModel(checkpoint);
  const order = Object.keys(ctx)
    .filter((k) => k.startsWith('tpGroup.'))
    .sort((a, b) => Number(a.slice(8)) - Number(b.slice(8)))
    .map((k) => address(ctx[k], k));
  const last = ctx.tpHidden as { actor?: unknown } | undefined;
  const refs = order.map((g) => actor.ref(g));
  try {
    const hidden = (await actor
      .ref(address(last?.actor, 'the last group'))
      .ask({ type: 'tp', rid, hidden: true }, { timeoutMs: ASK_MS })) as Float32Array;
    const spans = (await Promise.all(
      refs.map((r) => r.ask({ type: 'tp', rid, layers: true }, { timeoutMs: ASK_MS })),
    )) as [number, number][];
    const model = new TensorParallelLlama(weights, ops, async (layer, block, x, pos) => {
      const g = spans.findIndex(([a, b]) => layer >= a && layer < b);
      if (g < 0) return fail(`no group holds layer ${layer}`);
      return (await refs[g]!.ask(
        { type: 'tp', rid, block, layer, x, pos },
        { timeoutMs: ASK_MS },
      )) as Float32Array;
    });
    model.position = hidden.length / weights.config.dim;
    const steps = Math.max(1, Math.min(decodeSteps(attrs.tokens), weights.config.seqLen - model.position));
    let logits = await model.logitsOfLast(hidden);
    const tokens: number[] = [];
    for (let i = 0; i < steps && !sink?.signal.aborted; i++) {
      const next = argmax(logits);
      tokens.push(next);
      await sink?.emit(next);
      if (i + 1 < steps) logits = await model.decode(next);
    }
    return { tokens, groups: order.length };
  } finally {
    for (const r of refs) void r.tell({ type: 'tp', rid, release: true }).catch(() => undefined);
  }
}

// ── the `tp` message ─────────────────────────────────────────────────────────────────────────────

const MAX_RID = 128;

/**
 * A `tp` message to a rank (`block` work, `release`) or to a group (`block` all-reduced, `hidden`,
 * `layers`, `release`). It comes off the bus: every field is checked before use.
 */
export async function tensorParallelMessage(
  op: string,
  attrs: Attrs,
  msg: Record<string, unknown>,
  actor: OpActor,
): Promise<unknown> {
  if (!isTensorParallel(op, attrs)) return fail(`op ${op} is not part of a tensor-parallel split`);
  const rid = msg.rid;
  if (typeof rid !== 'string' || rid.length === 0 || rid.length > MAX_RID)
    return fail(`tp needs rid: a string of 1 to ${MAX_RID} characters`);
  const who = `${op} ${actor.self.id}`;
  const checkpoint = checkpointFor(attrs);
  if (op === 'llm.prefill') {
    const rank = await rankOf(attrs, actor.self);
    if (msg.release === true) return void rank.kv.delete(rid);
    const { layer, x, pos, block } = blockOf(msg, (await llmModel(checkpoint)).weights.config);
    if (!rank.shard) return fail(`${who} holds no layers`);
    return block === 'attention'
      ? rank.shard.attention(rank.kv.get(rid, who), layer, x, pos)
      : rank.shard.ffn(layer, x);
  }
  const state = groupState(actor.self);
  if (msg.release === true) {
    const g = (() => {
      try {
        return state.get(rid, who);
      } catch {
        return undefined;
      }
    })();
    state.delete(rid);
    for (const r of g?.ranks ?? [])
      void actor
        .ref(r)
        .tell({ type: 'tp', rid, release: true })
        .catch(() => undefined);
    return undefined;
  }
  const g = state.get(rid, who);
  if (msg.hidden === true) {
    const h = g.hidden ?? fail(`${who} already handed on its output for request ${rid}`);
    // Read once: the next group (or decode) copies it; the rest of the request needs only the KV caches.
    g.hidden = undefined;
    return h;
  }
  if (msg.layers === true) return g.layers;
  const { layer, x, pos, block } = blockOf(msg, (await llmModel(checkpoint)).weights.config);
  if (layer < g.layers[0] || layer >= g.layers[1])
    return fail(`${who} holds layers [${g.layers[0]}, ${g.layers[1]}), not ${layer}`);
  return reduceBlock(actor, g.ranks, rid, block, layer, x, pos, checkpoint);
}

function blockOf(msg: Record<string, unknown>, c: { dim: number; seqLen: number }) {
  const { layer, x, pos, block } = msg;
  if (block !== 'attention' && block !== 'ffn') return fail('tp block must be "attention" or "ffn"');
  if (typeof layer !== 'number' || !Number.isInteger(layer)) return fail('tp layer must be an integer');
  if (!(pos instanceof Int32Array) || pos.length < 1 || pos.length > c.seqLen)
    return fail(`tp pos must be an Int32Array of 1 to ${c.seqLen} positions`);
  if (!(x instanceof Float32Array) || x.length !== pos.length * c.dim)
    return fail(`tp x must be a Float32Array of ${pos.length} rows of ${c.dim}`);
  for (let i = 0; i < pos.length; i++)
    if (pos[i] !== pos[0]! + i || pos[0]! < 0 || pos[0]! + pos.length > c.seqLen)
      return fail('tp pos must be consecutive positions inside the context');
  return { layer, x, pos, block: block as 'attention' | 'ffn' };
}

/** The run of a TP op for a request: a rank opens its KV cache; a group runs the prompt through its layers. */
export function runTensorParallel(
  op: string,
  attrs: Attrs,
  ctx: Context,
  rid: string,
  actor: OpActor | undefined,
): Promise<Context> {
  if (!actor)
    return Promise.reject(
      new AgentsError(AgentsErrorCode.RequestFailed, `${op} with tp runs only in an operator actor`),
    );
  return op === 'llm.prefill' ? openRank(attrs, rid, actor) : runGroup(attrs, ctx, rid, actor);
}

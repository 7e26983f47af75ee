// Tensor and expert parallelism as the decomposed graph says, on real data. Each `llm.prefill` op
// with `shard` and `tp` (or `ep`) is a rank of its layer group: it holds that rank's weights — a
// share of the heads and of the FFN (tp), or a share of the experts (ep) — and, under tp, per request
// the KV cache of its heads. Each `llm.allreduce` (tp) or `llm.merge` (ep) op joins its group: it
// sends the hidden state to the ranks block by block (attention, then FFN, of every layer), sums
// their partials onto the residual, and keeps the group's output for the next group; under ep it
// runs attention itself (experts split the FFN only) over the request's KV cache. `llm.decode` with
// tp or ep walks the groups for every new token. Addresses travel in the request's context:
// `split.<layer_start>.<shard>` (a rank), `splitHidden` (the group whose output is the next group's
// input) and `splitGroup.<layer_start>` (every group, for decode).
import {
  allReduce,
  argmax,
  ExpertShard,
  LlamaShard,
  type ShardKv,
  shardWeights,
  TensorParallelLlama,
} from '@stitch/kernels';
import { findModel } from '@stitch/models';
import type { ActorRef, ActorRefData } from '@stitch/runtime';
import { AgentsError, AgentsErrorCode } from './errors.js';
import {
  checkpointFor,
  decodeSteps,
  expertModel,
  llmModel,
  promptIds,
  rankOps,
  type TokenSink,
} from './llm.js';
import { cachedPromise } from './memo.js';

type Attrs = Record<string, string | number | boolean>;
type Context = Record<string, unknown>;
type Block = 'attention' | 'ffn';

/** Requests a rank or group keeps state for at once; past it the oldest is dropped. */
export const MAX_SPLIT_SEQUENCES = 32;
/** State of a request nobody touched for this long is dropped (its decode never came, or died). */
export const SPLIT_SEQUENCE_TTL_MS = 120_000;
const ASK_MS = 30_000;

/** What an op of a split needs of its actor: its own address, and refs to the others. */
export interface OpActor {
  self: ActorRefData;
  ref(data: ActorRefData): ActorRef;
  /** The op's compute span (W3C traceparent), the parent of spans for its own work (kernels). */
  traceparent?: string;
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
    const old = Date.now() - SPLIT_SEQUENCE_TTL_MS;
    for (const [k, v] of this.#m) if (this.#m.size > MAX_SPLIT_SEQUENCES || v.at < old) this.#m.delete(k);
  }

  get(rid: string, who: string): T {
    const e = this.#m.get(rid);
    if (!e)
      return fail(
        `${who} holds no state for request ${rid.slice(0, 128)} (never prefilled here, released, or dropped: at most ${MAX_SPLIT_SEQUENCES} for ${SPLIT_SEQUENCE_TTL_MS / 1000} s)`,
      );
    e.at = Date.now();
    return e.value;
  }

  peek(rid: string): T | undefined {
    return this.#m.get(rid)?.value;
  }

  delete(rid: string): void {
    this.#m.delete(rid);
  }
}

const int = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) ? v : undefined);

/** How an op takes part in a split: a rank or a group's join, of a tp or ep split, and its degree. */
interface Role {
  role: 'rank' | 'group';
  kind: 'tp' | 'ep';
  degree: number;
}

/** The split an op's attrs declare (tp or ep, and its degree), if any. */
function splitOf(attrs: Attrs): Omit<Role, 'role'> | undefined {
  const tp = int(attrs.tp) ?? 1;
  const ep = int(attrs.ep) ?? 1;
  const degree = Math.max(tp, ep);
  return degree < 2 ? undefined : { kind: tp > 1 ? 'tp' : 'ep', degree };
}

function roleOf(op: string, attrs: Attrs): Role | undefined {
  const split = splitOf(attrs);
  if (!split) return undefined;
  const { kind, degree } = split;
  if (op === 'llm.prefill' && int(attrs.shard) !== undefined) return { role: 'rank', kind, degree };
  if ((op === 'llm.allreduce' && kind === 'tp') || (op === 'llm.merge' && kind === 'ep'))
    return { role: 'group', kind, degree };
  return undefined;
}

/** Whether an op is part of a tensor- or expert-parallel split (a rank or a group's join). */
export function isSplitOp(op: string, attrs: Attrs): boolean {
  return roleOf(op, attrs) !== undefined;
}

/** The IR's layer numbers (the modelled model's) mapped onto the layers of the weights that run. */
function realLayers(attrs: Attrs, start: number, end: number, layers: number): [number, number] {
  const modelled = findModel(String(attrs.model ?? ''))?.layers ?? layers;
  return [Math.round((start * layers) / modelled), Math.round((end * layers) / modelled)];
}

/** The weights a split runs: the node's model, with its experts under ep. */
async function splitWeights(attrs: Attrs, kind: 'tp' | 'ep') {
  const checkpoint = checkpointFor(attrs);
  return kind === 'ep' ? expertModel(checkpoint) : llmModel(checkpoint);
}

const keyOf = (a: ActorRefData) => `${a.type}/${a.id}`;

// ── ranks ────────────────────────────────────────────────────────────────────────────────────────

interface Rank {
  /** Its share of the group's layers; null when the group's share of the real layers is empty. */
  heads: LlamaShard | null;
  experts: ExpertShard | null;
  kv: Sequences<ShardKv>;
}

const ranks = new Map<string, Promise<Rank>>();

function rankOf(attrs: Attrs, self: ActorRefData, role: Role): Promise<Rank> {
  return cachedPromise(ranks, keyOf(self), async () => {
    const { weights, ops } = await splitWeights(attrs, role.kind);
    const [a, b] = realLayers(
      attrs,
      int(attrs.layer_start) ?? 0,
      int(attrs.layer_end) ?? 0,
      weights.config.layers,
    );
    const shard = int(attrs.shard)!;
    const rank: Rank = { heads: null, experts: null, kv: new Sequences<ShardKv>() };
    if (a >= b) return rank;
    if (role.kind === 'ep') rank.experts = new ExpertShard(weights, role.degree, shard, [a, b], ops);
    else
      rank.heads = new LlamaShard(
        await shardWeights(weights, role.degree, shard, [a, b]),
        await rankOps(checkpointFor(attrs), role.degree),
      );
    return rank;
  });
}

/** A rank's run for a request: under tp it opens the request's KV cache; it says where it is. */
async function openRank(attrs: Attrs, rid: string, actor: OpActor, role: Role): Promise<Context> {
  const rank = await rankOf(attrs, actor.self, role);
  if (rank.heads) rank.kv.set(rid, rank.heads.newKv());
  return { [`split.${int(attrs.layer_start) ?? 0}.${int(attrs.shard)}`]: { ...actor.self } };
}

/** A rank's share of one block for a request. */
async function rankBlock(
  rank: Rank,
  rid: string,
  who: string,
  block: Block,
  layer: number,
  x: Float32Array,
  pos: Int32Array,
) {
  if (block === 'ffn') {
    const shard = rank.heads ?? rank.experts ?? fail(`${who} holds no layers`);
    return shard.ffn(layer, x);
  }
  if (!rank.heads) return fail(`${who} is an expert rank: attention is its group's`);
  return rank.heads.attention(rank.kv.get(rid, who), layer, x, pos);
}

// ── groups ───────────────────────────────────────────────────────────────────────────────────────

interface GroupRequest {
  /** The group's output for the prompt, until the next group (or decode) has read it. */
  hidden: Float32Array | undefined;
  ranks: ActorRefData[];
  layers: [number, number];
  /** Under ep: the request's KV cache of the group's layers (the group runs attention). */
  kv: ShardKv | undefined;
}

interface Group {
  requests: Sequences<GroupRequest>;
  /** Under ep: the whole heads of the group's layers. */
  attention: LlamaShard | null;
}

const groups = new Map<string, Promise<Group>>();

function groupOf(attrs: Attrs, self: ActorRefData, role: Role, layers: [number, number]): Promise<Group> {
  return cachedPromise(groups, keyOf(self), async () => {
    let attention: LlamaShard | null = null;
    if (role.kind === 'ep' && layers[0] < layers[1]) {
      const { weights, ops } = await splitWeights(attrs, role.kind);
      attention = new LlamaShard(await shardWeights(weights, 1, 0, layers), ops);
    }
    return { requests: new Sequences<GroupRequest>(), attention };
  });
}

/** A group already set up by a request it ran (for messages about that request). */
async function existingGroup(self: ActorRefData, who: string): Promise<Group> {
  return (await groups.get(keyOf(self))) ?? fail(`${who} has run no request yet`);
}

function address(v: unknown, what: string): ActorRefData {
  const a = v as { type?: unknown; id?: unknown } | undefined;
  if (typeof a?.type !== 'string' || typeof a.id !== 'string' || a.type.length > 256 || a.id.length > 512)
    return fail(`the request's context has no address for ${what}`);
  return { type: a.type, id: a.id };
}

/** One block of one layer for a request, joined onto the residual: the ranks' partials summed, or (ep attention) the group's own. */
async function joinBlock(
  actor: OpActor,
  group: Group,
  req: GroupRequest,
  rid: string,
  block: Block,
  layer: number,
  x: Float32Array,
  pos: Int32Array,
  checkpoint: string | null,
): Promise<Float32Array> {
  const { ops } = await llmModel(checkpoint);
  if (block === 'attention' && group.attention)
    return allReduce(ops, x, [await group.attention.attention(req.kv!, layer, x, pos)]);
  const partials = (await Promise.all(
    req.ranks.map((r) =>
      actor.ref(r).ask({ type: 'split', rid, block, layer, x, pos }, { timeoutMs: ASK_MS }),
    ),
  )) as Float32Array[];
  return allReduce(ops, x, partials);
}

/** The group's run for a request: the prompt through its layers. */
async function runGroup(
  attrs: Attrs,
  ctx: Context,
  rid: string,
  actor: OpActor,
  role: Role,
): Promise<Context> {
  const prev = ctx.splitHidden as { actor?: unknown; layerEnd?: unknown } | undefined;
  const start = prev ? (int(prev.layerEnd) ?? fail('splitHidden has no layerEnd')) : 0;
  const end = start + (int(attrs.layers) ?? 0);
  const ranksOf = Array.from({ length: role.degree }, (_, r) =>
    address(ctx[`split.${start}.${r}`], `rank ${r} of layers ${start}–${end}`),
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
        .ask({ type: 'split', rid, hidden: true }, { timeoutMs: ASK_MS })) as Float32Array)
    : await ops.embedding(weights.tokenEmbedding, Int32Array.from(prompt));
  if (!(x0 instanceof Float32Array) || x0.length !== prompt.length * weights.config.dim)
    fail(
      `the previous group's output for request ${rid} is not ${prompt.length} rows of ${weights.config.dim}`,
    );
  const layers = realLayers(attrs, start, end, weights.config.layers);
  const group = await groupOf(attrs, actor.self, role, layers);
  const req: GroupRequest = { hidden: undefined, ranks: ranksOf, layers, kv: group.attention?.newKv() };
  const pos = Int32Array.from(prompt, (_, i) => i);
  let x = x0;
  for (let l = layers[0]; l < layers[1]; l++) {
    x = await joinBlock(actor, group, req, rid, 'attention', l, x, pos, checkpoint);
    x = await joinBlock(actor, group, req, rid, 'ffn', l, x, pos, checkpoint);
  }
  req.hidden = x;
  group.requests.set(rid, req);
  return {
    splitHidden: { actor: { ...actor.self }, layerEnd: end },
    [`splitGroup.${start}`]: { ...actor.self },
  };
}

// ── decode ───────────────────────────────────────────────────────────────────────────────────────

/** Loads what a split's op runs before its first request: a tp rank its shapes' kernels, under ep the experts. */
export async function prepareSplit(op: string, attrs: Attrs): Promise<void> {
  const role = roleOf(op, attrs);
  if (!role) return;
  if (role.kind === 'ep') await expertModel(checkpointFor(attrs));
  else if (role.role === 'rank') await rankOps(checkpointFor(attrs), role.degree);
}

/** Whether decode walks a split's groups (its graph split the LLM and the groups ran); otherwise it decodes on its own. */
export function decodesSplit(attrs: Attrs, ctx: Context): boolean {
  return splitOf(attrs) !== undefined && Object.keys(ctx).some((k) => k.startsWith('splitGroup.'));
}

/** Greedy decode through the groups: the first token from the last group's output, then a walk per token. */
export async function decodeSplit(
  attrs: Attrs,
  ctx: Context,
  rid: string,
  actor: OpActor,
  sink?: TokenSink,
): Promise<{ tokens: number[]; llmModel: string }> {
  const { kind, degree } = splitOf(attrs) ?? fail('decode has no tp or ep attr');
  const checkpoint = checkpointFor(attrs);
  const { weights, ops } = await llmModel(checkpoint);
  const order = Object.keys(ctx)
    .filter((k) => k.startsWith('splitGroup.'))
    .sort((a, b) => Number(a.slice(11)) - Number(b.slice(11)))
    .map((k) => address(ctx[k], k));
  const last = ctx.splitHidden as { actor?: unknown } | undefined;
  const refs = order.map((g) => actor.ref(g));
  try {
    const hidden = (await actor
      .ref(address(last?.actor, 'the last group'))
      .ask({ type: 'split', rid, hidden: true }, { timeoutMs: ASK_MS })) as Float32Array;
    const spans = (await Promise.all(
      refs.map((r) => r.ask({ type: 'split', rid, layers: true }, { timeoutMs: ASK_MS })),
    )) as [number, number][];
    const model = new TensorParallelLlama(weights, ops, async (layer, block, x, pos) => {
      const g = spans.findIndex(([a, b]) => layer >= a && layer < b);
      if (g < 0) return fail(`no group holds layer ${layer}`);
      return (await refs[g]!.ask(
        { type: 'split', rid, block, layer, x, pos },
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
    const label = (kind === 'ep' ? await expertModel(checkpoint) : await llmModel(checkpoint)).label;
    const split = kind === 'ep' ? 'expert' : 'tensor';
    return { tokens, llmModel: `${label}, ${split}-parallel ×${degree} in ${order.length} layer groups` };
  } finally {
    for (const r of refs) void r.tell({ type: 'split', rid, release: true }).catch(() => undefined);
  }
}

// ── the `split` message ──────────────────────────────────────────────────────────────────────────

const MAX_RID = 128;

/**
 * A `split` message to a rank (`block` work, `release`) or to a group (`block` joined, `hidden`,
 * `layers`, `release`). It comes off the bus: every field is checked before use.
 */
export async function splitMessage(
  op: string,
  attrs: Attrs,
  msg: Record<string, unknown>,
  actor: OpActor,
): Promise<unknown> {
  const role = roleOf(op, attrs) ?? fail(`op ${op} is not part of a tensor- or expert-parallel split`);
  const rid = msg.rid;
  if (typeof rid !== 'string' || rid.length === 0 || rid.length > MAX_RID)
    return fail(`split needs rid: a string of 1 to ${MAX_RID} characters`);
  const who = `${op} ${actor.self.id}`;
  const checkpoint = checkpointFor(attrs);
  const config = (await llmModel(checkpoint)).weights.config;
  if (role.role === 'rank') {
    const rank = await rankOf(attrs, actor.self, role);
    if (msg.release === true) return void rank.kv.delete(rid);
    const { layer, x, pos, block } = blockOf(msg, config);
    return rankBlock(rank, rid, who, block, layer, x, pos);
  }
  const group = await existingGroup(actor.self, who);
  if (msg.release === true) {
    const req = group.requests.peek(rid);
    group.requests.delete(rid);
    for (const r of req?.ranks ?? [])
      void actor
        .ref(r)
        .tell({ type: 'split', rid, release: true })
        .catch(() => undefined);
    return undefined;
  }
  const req = group.requests.get(rid, who);
  if (msg.hidden === true) {
    const h = req.hidden ?? fail(`${who} already handed on its output for request ${rid}`);
    // Read once: the next group (or decode) takes it; the rest of the request needs only the KV caches.
    req.hidden = undefined;
    return h;
  }
  if (msg.layers === true) return req.layers;
  const { layer, x, pos, block } = blockOf(msg, config);
  if (layer < req.layers[0] || layer >= req.layers[1])
    return fail(`${who} holds layers [${req.layers[0]}, ${req.layers[1]}), not ${layer}`);
  return joinBlock(actor, group, req, rid, block, layer, x, pos, checkpoint);
}

function blockOf(msg: Record<string, unknown>, c: { dim: number; seqLen: number }) {
  const { layer, x, pos, block } = msg;
  if (block !== 'attention' && block !== 'ffn') return fail('split block must be "attention" or "ffn"');
  if (typeof layer !== 'number' || !Number.isInteger(layer)) return fail('split layer must be an integer');
  if (!(pos instanceof Int32Array) || pos.length < 1 || pos.length > c.seqLen)
    return fail(`split pos must be an Int32Array of 1 to ${c.seqLen} positions`);
  if (!(x instanceof Float32Array) || x.length !== pos.length * c.dim)
    return fail(`split x must be a Float32Array of ${pos.length} rows of ${c.dim}`);
  for (let i = 0; i < pos.length; i++)
    if (pos[i] !== pos[0]! + i || pos[0]! < 0 || pos[0]! + pos.length > c.seqLen)
      return fail('split pos must be consecutive positions inside the context');
  return { layer, x, pos, block: block as Block };
}

/** The run of a split op for a request: a rank says where it is; a group runs the prompt through its layers. */
export function runSplit(
  op: string,
  attrs: Attrs,
  ctx: Context,
  rid: string,
  actor: OpActor | undefined,
): Promise<Context> {
  const role = roleOf(op, attrs);
  if (!role || !actor)
    return Promise.reject(
      new AgentsError(
        AgentsErrorCode.RequestFailed,
        `${op} runs a split only in an operator actor, with tp or ep`,
      ),
    );
  return role.role === 'rank' ? openRank(attrs, rid, actor, role) : runGroup(attrs, ctx, rid, actor, role);
}

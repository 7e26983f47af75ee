import { existsSync } from 'node:fs';
import { type ActorContext, defineActor } from '@stitch/runtime';
import { AgentsError, AgentsErrorCode } from './errors.js';
import { fileInDir } from './file-in-dir.js';
import { validateOpConfig } from './op-config.js';
import type { OpConfig, OpReply } from './ops.js';
import { isVectorKey, VECTOR_LIMITS, VectorIndex, type VectorMetric } from './vector-index.js';
import { getIndexObject, putIndexObject } from './vector-objects.js';
import { partialField, partitionIndexName, partitionOf, vectorPartition } from './vector-partitions.js';

/**
 * Bytes of vectors inserted since the index was last stored that the snapshot carries; past this
 * the index is stored whole in the object store first. Snapshots are taken after every turn and kept
 * in KV, so they stay small; the index itself moves as an object.
 */
export const MAX_JOURNAL_BYTES = 128 * 1024;
const KEEP = 256;

/** Where the index a snapshot builds on lives: a file the operator was configured with, or an object. */
type Base = { kind: 'file'; path: string } | { kind: 'object'; name: string; digest: string } | undefined;

export interface VectorState {
  config: OpConfig | undefined;
  index: VectorIndex | undefined;
  base: Base;
  journal: { keys: number[]; vectors: number[] };
  applied: number;
  seen: Map<string, unknown>;
}

const num = (v: unknown) => (typeof v === 'number' ? v : undefined);

function fail(message: string): never {
  throw new AgentsError(AgentsErrorCode.VectorInvalid, message);
}

/** The index a `vector.search` config describes (attrs `dim`, `metric`, `max_vectors`, `connectivity`, …). */
function indexOf(cfg: OpConfig): VectorIndex {
  const a = cfg.attrs;
  const k = a.k ?? 10;
  if (!Number.isInteger(k) || (k as number) < 1 || (k as number) > VECTOR_LIMITS.k)
    fail(`attrs.k must be an integer from 1 to ${VECTOR_LIMITS.k}, found ${String(k)}`);
  return new VectorIndex({
    dim: num(a.dim) ?? fail('attrs.dim (the vectors’ dimension) is required'),
    metric: (a.metric ?? 'cos') as VectorMetric,
    maxVectors: num(a.max_vectors) ?? 1_000_000,
    connectivity: num(a.connectivity),
    expansionAdd: num(a.expansion_add),
    expansionSearch: num(a.expansion_search),
  });
}

/** The directory a graph's `index` attribute names its index file in (else the index starts empty). */
export const VECTOR_DIR_ENV = 'STITCH_VECTOR_DIR';

/**
 * The index file to load: attr `index_path`, or the graph's `index` name in the node's
 * STITCH_VECTOR_DIR when that file exists; none: the index starts empty and is filled by inserts.
 */
function indexPath(attrs: OpConfig['attrs']): string | undefined {
  const { partition, partitions } = partitionOf(attrs);
  if (typeof attrs.index_path === 'string')
    return partitionIndexName(attrs.index_path, partition, partitions);
  const dir = process.env[VECTOR_DIR_ENV];
  if (typeof attrs.index !== 'string' || !dir) return undefined;
  const name = partitionIndexName(attrs.index, partition, partitions);
  const path = fileInDir(dir, name, VECTOR_DIR_ENV, 'index');
  return existsSync(path) ? path : undefined;
}

function vectorsOf(raw: unknown, dim: number, what: string): Float32Array {
  if (raw instanceof Float32Array) return raw;
  if (
    Array.isArray(raw) &&
    raw.length <= VECTOR_LIMITS.batch * dim &&
    raw.every((x) => typeof x === 'number')
  )
    return Float32Array.from(raw);
  return fail(
    `${what} must be a Float32Array or an array of numbers (at most ${VECTOR_LIMITS.batch} vectors)`,
  );
}

function configured(s: VectorState, actx: ActorContext): { cfg: OpConfig; index: VectorIndex } {
  if (!s.config || !s.index)
    throw new AgentsError(
      AgentsErrorCode.OpNotConfigured,
      `operator ${actx.self.type}/${actx.self.id} has no configuration; send "configure" first`,
    );
  return { cfg: s.config, index: s.index };
}

async function rebuild(cfg: OpConfig, base: Base, journal: VectorState['journal']): Promise<VectorIndex> {
  const index = indexOf(cfg);
  if (base?.kind === 'file') await index.load(base.path);
  if (base?.kind === 'object') {
    const got = await getIndexObject(cfg.natsUrl, cfg.cluster, base.name);
    if (!got.bytes || got.digest !== base.digest)
      throw new AgentsError(
        AgentsErrorCode.VectorIndexUnavailable,
        `index object ${base.name} is ${got.bytes ? 'a different version' : 'missing'} in the vector store`,
      );
    await index.fromBytes(got.bytes);
  }
  for (let i = 0; i < journal.keys.length; i += VECTOR_LIMITS.batch) {
    const keys = journal.keys.slice(i, i + VECTOR_LIMITS.batch);
    index.add(keys, Float32Array.from(journal.vectors.slice(i * index.dim, (i + keys.length) * index.dim)));
  }
  return index;
}

async function persist(s: VectorState, cfg: OpConfig, index: VectorIndex): Promise<void> {
  const name = `${cfg.deployment}.${cfg.opId}`;
  const digest = await putIndexObject(cfg.natsUrl, cfg.cluster, name, await index.toBytes());
  s.base = { kind: 'object', name, digest };
  s.journal = { keys: [], vectors: [] };
}

function remember(s: VectorState, rid: string, reply: unknown): void {
  s.applied++;
  s.seen.set(rid, reply);
  if (s.seen.size > KEEP) s.seen.delete(s.seen.keys().next().value!);
}

/**
 * `op-vector`: a vector-search operator holding a usearch HNSW index. `configure` builds it (empty,
 * or from attrs `index_path`), `insert` adds vectors at run time, `run` answers `ctx.embedding` with
 * the attrs `k` nearest. A partition of a partitioned search (attrs `partition`, `partitions`) holds
 * the keys vectorPartition assigns it, loads its own file (partitionIndexName) and refuses other
 * keys. It migrates: the snapshot names the index's file or object-store object and
 * carries the inserts made since, which restore re-applies.
 */
export const vectorOperator = defineActor({
  type: 'op-vector',
  init: (): VectorState => ({
    config: undefined,
    index: undefined,
    base: undefined,
    journal: { keys: [], vectors: [] },
    applied: 0,
    seen: new Map(),
  }),
  handlers: {
    configure: async (s: VectorState, msg: { config: OpConfig }) => {
      const cfg = validateOpConfig(msg.config);
      const path = indexPath(cfg.attrs);
      const base: Base = path === undefined ? undefined : { kind: 'file', path };
      s.index = await rebuild(cfg, base, { keys: [], vectors: [] });
      Object.assign(s, { config: cfg, base, journal: { keys: [], vectors: [] } });
      return { size: s.index.size };
    },
    insert: async (
      s: VectorState,
      msg: { rid: string; keys: number[]; vectors: unknown },
      actx: ActorContext,
    ) => {
      const { cfg, index } = configured(s, actx);
      if (s.seen.has(msg.rid)) return s.seen.get(msg.rid);
      if (!Array.isArray(msg.keys) || !msg.keys.every(isVectorKey))
        fail('keys must be an array of integers from 0 to 2^53');
      const { partition, partitions } = partitionOf(cfg.attrs);
      const stray = msg.keys.find((k) => vectorPartition(k, partitions) !== partition);
      if (stray !== undefined)
        fail(
          `key ${stray} belongs to partition ${vectorPartition(stray, partitions)} of ${partitions}, not to this one (${partition}): insert through insertVectors, which routes each key`,
        );
      const vectors = vectorsOf(msg.vectors, index.dim, 'vectors');
      index.add(msg.keys, vectors);
      s.journal.keys.push(...msg.keys);
      for (const x of vectors) s.journal.vectors.push(x);
      const reply = { size: index.size };
      remember(s, msg.rid, reply);
      // The insert has happened either way; a failed store is tried again on the next insert.
      if (s.journal.vectors.length * 4 > MAX_JOURNAL_BYTES) await persist(s, cfg, index);
      return reply;
    },
    run: async (s: VectorState, msg: { rid: string; ctx: Record<string, unknown> }, actx: ActorContext) => {
      const { cfg, index } = configured(s, actx);
      const done = s.seen.get(msg.rid) as OpReply | undefined;
      if (done) return { ...done, replay: true };
      const t0 = performance.now();
      const query = vectorsOf(msg.ctx?.embedding, index.dim, 'ctx.embedding');
      if (query.length !== index.dim)
        fail(`ctx.embedding must have ${index.dim} numbers, found ${query.length}`);
      const [neighbours] = index.search(query, num(cfg.attrs.k) ?? 10);
      // The query vector stays here: later ops read the neighbours (a partition's, the merge).
      const { embedding: _, ...rest } = msg.ctx;
      const { partition, partitions } = partitionOf(cfg.attrs);
      const computeMs = performance.now() - t0;
      const reply: OpReply = {
        out: { ...rest, [partitions > 1 ? partialField(partition) : 'neighbours']: neighbours },
        ms: computeMs,
        computeMs,
        device: cfg.device,
        modelled: false,
        node: actx.nodeId,
        replay: false,
      };
      remember(s, msg.rid, reply);
      return reply;
    },
    /** Stores the whole index in the object store now (before a planned move of a busy operator). */
    persist: async (s: VectorState, _msg: unknown, actx: ActorContext) => {
      const { cfg, index } = configured(s, actx);
      await persist(s, cfg, index);
      return { base: s.base };
    },
    counts: (s: VectorState) => ({ applied: s.applied, size: s.index?.size ?? 0, base: s.base }),
  },
  snapshot: (s: VectorState) => ({
    config: s.config,
    base: s.base,
    journal: s.journal,
    applied: s.applied,
    seen: [...s.seen],
  }),
  restore: async (snap: unknown): Promise<VectorState> => {
    const v = snap as Omit<VectorState, 'index' | 'seen'> & { seen: [string, unknown][] };
    return {
      config: v.config,
      index: v.config ? await rebuild(v.config, v.base, v.journal) : undefined,
      base: v.base,
      journal: v.journal,
      applied: v.applied,
      seen: new Map(v.seen),
    };
  },
});

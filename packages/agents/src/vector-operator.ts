import { existsSync } from 'node:fs';
import { setImmediate } from 'node:timers/promises';
import { type ActorContext, defineActor } from '@stitch/runtime';
import { AgentsError, AgentsErrorCode } from './errors.js';
import { fileInDir } from './file-in-dir.js';
import { configureEpoch, validateOpConfig } from './op-config.js';
import type { OpConfig, OpReply } from './ops.js';
import { isVectorKey, VECTOR_LIMITS, VectorIndex, type VectorMetric, withTempFile } from './vector-index.js';
import {
  decodeInserts,
  deleteIndexObjects,
  encodeInserts,
  getIndexFile,
  putIndexFile,
  putIndexObject,
  readIndexObjects,
} from './vector-objects.js';
import { partialField, partitionIndexName, partitionOf, vectorPartition } from './vector-partitions.js';

/**
 * Bytes of vectors inserted since the index was last stored that the snapshot carries; past this
 * they go to the object store first (as an inserts object, or in a save of the whole index).
 * Snapshots are taken after every turn and kept in KV, so they stay small; the index itself moves as
 * objects.
 */
export const MAX_JOURNAL_BYTES = 128 * 1024;
/**
 * A save of the whole index takes about 1 ms per MiB of index (on the index's thread: the turn waits,
 * the event loop does not) and uploads all of it, so the inserts since the last one are kept as
 * inserts objects until they pass this share of the index, MAX_INSERTS_BYTES or MAX_INSERTS_OBJECTS
 * objects; then the index is saved whole. A restore re-applies at most that many inserts (slow, but
 * on the index's thread).
 */
export const INSERTS_SHARE = 1 / 16;
export const MAX_INSERTS_BYTES = 64 * 2 ** 20;
export const MAX_INSERTS_OBJECTS = 64;
const KEEP = 256;
/** Numbers copied into the journal between two turns of the event loop (only a failed store copies many). */
const JOURNAL_CHUNK = 2 ** 20;

/** Where the index a snapshot builds on lives: a file the operator was configured with, or an object. */
type Base = { kind: 'file'; path: string } | { kind: 'object'; name: string; digest: string } | undefined;

/** Inserts since the base stored as an object: `count` vectors, re-applied in order on restore. */
export interface InsertsObject {
  name: string;
  digest: string;
  count: number;
}

export interface VectorState {
  config: OpConfig | undefined;
  index: VectorIndex | undefined;
  base: Base;
  /** Inserts after the base that went to the object store, oldest first (the journal comes after them). */
  inserts: InsertsObject[];
  journal: { keys: number[]; vectors: number[] };
  applied: number;
  seen: Map<string, unknown>;
  /** The newest coordinator epoch a `configure` carried (0: none yet); see configureEpoch. */
  configEpoch: number;
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

const unavailable = (what: string, name: string, found: 'missing' | 'changed') =>
  new AgentsError(
    AgentsErrorCode.VectorIndexUnavailable,
    `${what} ${name} is ${found === 'missing' ? 'missing' : 'a different version'} in the vector store`,
  );

/** The index a snapshot describes: its base, then the inserts since, in order. Closed if that fails. */
async function rebuild(
  cfg: OpConfig,
  base: Base,
  inserts: readonly InsertsObject[],
  journal: VectorState['journal'],
): Promise<VectorIndex> {
  const index = indexOf(cfg);
  try {
    if (base?.kind === 'file') await index.load(base.path);
    if (base?.kind === 'object')
      await withTempFile(async (path) => {
        const got = await getIndexFile(cfg.natsUrl, cfg.cluster, base.name, base.digest, path);
        if (got !== 'ok') throw unavailable('index object', base.name, got);
        await index.load(path);
      });
    if (inserts.length > 0) {
      const digests = new Map(inserts.map((o) => [o.name, o.digest]));
      await readIndexObjects(cfg.natsUrl, cfg.cluster, [...digests.keys()], async (name, bytes, digest) => {
        if (!bytes || digest !== digests.get(name))
          throw unavailable('inserts object', name, bytes ? 'changed' : 'missing');
        const got = decodeInserts(bytes, index.dim);
        await addAll(index, got.keys, got.vectors);
      });
    }
    await addAll(index, journal.keys, Float32Array.from(journal.vectors));
    return index;
  } catch (e) {
    await index.close();
    throw e;
  }
}

/**
 * Adds any number of vectors, in order, one add per VECTOR_LIMITS.batch of them. The calls depend on
 * the inserts alone, so every node that restores the same snapshot builds the same graph (one
 * thread). It is as good as, not bit for bit, the graph of the inserts as they first came: those
 * were adds of their own sizes, and usearch restarts its generator of HNSW levels whenever an add
 * grows its capacity.
 */
async function addAll(index: VectorIndex, keys: readonly number[], vectors: Float32Array): Promise<void> {
  for (let i = 0; i < keys.length; i += VECTOR_LIMITS.batch) {
    const batch = keys.slice(i, i + VECTOR_LIMITS.batch);
    await index.add(batch, vectors.subarray(i * index.dim, (i + batch.length) * index.dim));
  }
}

/** Stores the whole index as object `<deployment>.<opId>`: the new base; the inserts objects before it go. */
async function persist(s: VectorState, cfg: OpConfig, index: VectorIndex): Promise<void> {
  const name = `${cfg.deployment}.${cfg.opId}`;
  // Streamed from the saved file: no copy of the index in memory (readFile stops at 2 GiB).
  const digest = await withTempFile(async (path) => {
    await index.save(path);
    return putIndexFile(cfg.natsUrl, cfg.cluster, name, path);
  });
  const stale = s.inserts.map((o) => o.name);
  s.base = { kind: 'object', name, digest };
  s.inserts = [];
  s.journal = { keys: [], vectors: [] };
  // Nothing names them now; one left behind is only space.
  if (stale.length > 0) await deleteIndexObjects(cfg.natsUrl, cfg.cluster, stale).catch(() => undefined);
}

/**
 * Records an insert the index has taken: in the journal while that stays within MAX_JOURNAL_BYTES,
 * else the journal and this insert go to the object store — as an inserts object, or in a save of
 * the whole index (the first time when the base is a configured file, so that the index no longer
 * needs that file on the node it moves to; else when the inserts objects grow past their bounds).
 */
async function record(
  s: VectorState,
  cfg: OpConfig,
  index: VectorIndex,
  keys: readonly number[],
  vectors: Float32Array,
): Promise<void> {
  const bytes = (s.journal.vectors.length + vectors.length) * 4;
  if (bytes <= MAX_JOURNAL_BYTES) return append(s.journal, keys, vectors);
  const stored = s.inserts.reduce((n, o) => n + o.count, 0) * index.dim * 4 + bytes;
  const whole =
    s.base?.kind === 'file' ||
    s.inserts.length >= MAX_INSERTS_OBJECTS ||
    stored > Math.min(MAX_INSERTS_BYTES, index.size * index.dim * 4 * INSERTS_SHARE);
  try {
    if (whole) return await persist(s, cfg, index);
    const name = `${cfg.deployment}.${cfg.opId}.inserts.${s.applied}`;
    const count = s.journal.keys.length + keys.length;
    const digest = await putIndexObject(
      cfg.natsUrl,
      cfg.cluster,
      name,
      encodeInserts(index.dim, [s.journal, { keys, vectors }]),
    );
    s.inserts.push({ name, digest, count });
    s.journal = { keys: [], vectors: [] };
  } catch {
    // The insert has happened either way: the journal keeps it, the store is tried again on the next insert.
    await append(s.journal, keys, vectors);
  }
}

async function append(journal: VectorState['journal'], keys: readonly number[], vectors: Float32Array) {
  journal.keys.push(...keys);
  for (let i = 0; i < vectors.length; i += JOURNAL_CHUNK) {
    if (i > 0) await setImmediate();
    const end = Math.min(vectors.length, i + JOURNAL_CHUNK);
    for (let j = i; j < end; j++) journal.vectors.push(vectors[j]!);
  }
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
 * keys. It migrates: the snapshot names the index's file or object-store object, the inserts objects
 * stored since, and carries the inserts made after those (the journal); restore re-applies both.
 * The index lives on a thread of its own (VectorIndex): a new configure closes the old one, and
 * `deactivate` the last (stopped, moved away, restarted after a crash).
 */
export const vectorOperator = defineActor({
  type: 'op-vector',
  init: (): VectorState => ({
    config: undefined,
    index: undefined,
    base: undefined,
    inserts: [],
    journal: { keys: [], vectors: [] },
    applied: 0,
    seen: new Map(),
    configEpoch: 0,
  }),
  handlers: {
    configure: async (s: VectorState, msg: { config: OpConfig; epoch?: number }) => {
      const cfg = validateOpConfig(msg.config);
      const configEpoch = configureEpoch(msg.epoch, s.configEpoch);
      const path = indexPath(cfg.attrs);
      const base: Base = path === undefined ? undefined : { kind: 'file', path };
      const index = await rebuild(cfg, base, [], { keys: [], vectors: [] });
      // The old index's thread holds all of it; nothing reads it after this turn.
      await s.index?.close();
      Object.assign(s, {
        config: cfg,
        index,
        base,
        inserts: [],
        journal: { keys: [], vectors: [] },
        configEpoch,
      });
      return { size: index.size };
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
      // On the index's thread (all or nothing): seconds of work for a full batch of large vectors.
      await index.add(msg.keys, vectors);
      const reply = { size: index.size };
      remember(s, msg.rid, reply);
      await record(s, cfg, index, msg.keys, vectors);
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
      const [neighbours] = await index.search(query, num(cfg.attrs.k) ?? 10);
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
    counts: (s: VectorState) => ({
      applied: s.applied,
      size: s.index?.size ?? 0,
      base: s.base,
      inserts: s.inserts,
    }),
  },
  deactivate: (s: VectorState) => s.index?.close(),
  snapshot: (s: VectorState) => ({
    config: s.config,
    base: s.base,
    inserts: s.inserts,
    journal: s.journal,
    applied: s.applied,
    seen: [...s.seen],
    configEpoch: s.configEpoch,
  }),
  restore: async (snap: unknown): Promise<VectorState> => {
    // A snapshot from before inserts objects has none.
    const v = snap as Omit<VectorState, 'index' | 'seen' | 'inserts' | 'configEpoch'> & {
      seen: [string, unknown][];
      inserts?: InsertsObject[];
      configEpoch?: number;
    };
    const inserts = v.inserts ?? [];
    return {
      config: v.config,
      index: v.config ? await rebuild(v.config, v.base, inserts, v.journal) : undefined,
      base: v.base,
      inserts,
      journal: v.journal,
      applied: v.applied,
      seen: new Map(v.seen),
      configEpoch: v.configEpoch ?? 0,
    };
  },
});

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BatchMatches, Index, Matches } from 'usearch';
import { AgentsError, AgentsErrorCode } from './errors.js';
import { checkIndexFile } from './vector-file.js';

export type VectorMetric = 'cos' | 'ip' | 'l2sq';

export interface VectorIndexOptions {
  dim: number;
  /** @default 'cos' */
  metric?: VectorMetric;
  /** Vectors the index may hold; inserts past it are refused. */
  maxVectors: number;
  /** HNSW graph degree (M). @default 16 */
  connectivity?: number;
  /** Candidate list while inserting (efConstruction). @default 128 */
  expansionAdd?: number;
  /** Candidate list while searching (ef). @default 64 */
  expansionSearch?: number;
  /** Threads a batched add or search uses. @default 1 */
  threads?: number;
}

export const VECTOR_LIMITS = {
  dim: 4096,
  maxVectors: 50_000_000,
  connectivity: 64,
  expansion: 4096,
  threads: 64,
  k: 1000,
  /** Vectors per add or search call: each call runs synchronously in the addon. */
  batch: 4096,
} as const;

export interface Neighbour {
  key: number;
  distance: number;
}

const fail = (message: string): never => {
  throw new AgentsError(AgentsErrorCode.VectorInvalid, message);
};

function int(name: string, v: number | undefined, fallback: number, min: number, max: number): number {
  const x = v ?? fallback;
  if (!Number.isInteger(x) || x < min || x > max)
    fail(`${name} must be an integer from ${min} to ${max}, found ${x}`);
  return x;
}

// usearch's ES module build cannot find its prebuilt addon under pnpm's layout; the CommonJS build can.
let lib: typeof import('usearch') | undefined;
const usearch = () => {
  lib ??= createRequire(import.meta.url)('usearch') as typeof import('usearch');
  return lib;
};

/** Keys the index takes: integers from 0 to 2^53. */
export const isVectorKey = (k: unknown): k is number => Number.isSafeInteger(k) && (k as number) >= 0;

/**
 * An approximate nearest-neighbour index (HNSW, usearch) of fixed dimension and bounded size, with
 * integer keys. Saved as usearch's own file format, which `load` and `fromBytes` read back.
 */
export class VectorIndex {
  readonly dim: number;
  readonly metric: VectorMetric;
  readonly maxVectors: number;
  readonly #threads: number;
  readonly #options: Required<Omit<VectorIndexOptions, 'threads'>>;
  #index: Index;

  constructor(options: VectorIndexOptions) {
    this.dim = int('dim', options.dim, 0, 1, VECTOR_LIMITS.dim);
    this.metric = options.metric ?? 'cos';
    if (!['cos', 'ip', 'l2sq'].includes(this.metric))
      fail(`metric must be cos, ip or l2sq, found ${String(this.metric)}`);
    this.maxVectors = int('maxVectors', options.maxVectors, 0, 1, VECTOR_LIMITS.maxVectors);
    this.#threads = int('threads', options.threads, 1, 1, VECTOR_LIMITS.threads);
    this.#options = {
      dim: this.dim,
      metric: this.metric,
      maxVectors: this.maxVectors,
      connectivity: int('connectivity', options.connectivity, 16, 2, VECTOR_LIMITS.connectivity),
      expansionAdd: int('expansionAdd', options.expansionAdd, 128, 1, VECTOR_LIMITS.expansion),
      expansionSearch: int('expansionSearch', options.expansionSearch, 64, 1, VECTOR_LIMITS.expansion),
    };
    this.#index = this.#empty();
  }

  #empty(): Index {
    const o = this.#options;
    const { Index, MetricKind, ScalarKind } = usearch();
    const metric = { cos: MetricKind.Cos, ip: MetricKind.IP, l2sq: MetricKind.L2sq }[o.metric];
    return new Index({
      dimensions: o.dim,
      metric,
      quantization: ScalarKind.F32,
      connectivity: o.connectivity,
      expansion_add: o.expansionAdd,
      expansion_search: o.expansionSearch,
      multi: false,
    });
  }

  get size(): number {
    return this.#index.size();
  }

  /** Adds `keys.length` vectors laid out row after row in `vectors`. Keys are integers from 0 to 2^53. */
  add(keys: readonly number[], vectors: Float32Array): void {
    const n = keys.length;
    if (n === 0) return;
    if (n > VECTOR_LIMITS.batch) fail(`${n} vectors in one add; at most ${VECTOR_LIMITS.batch}`);
    if (vectors.length !== n * this.dim)
      fail(`${n} keys need ${n * this.dim} numbers (${this.dim} per vector), found ${vectors.length}`);
    if (this.size + n > this.maxVectors)
      throw new AgentsError(
        AgentsErrorCode.VectorIndexFull,
        `the index holds ${this.size} of at most ${this.maxVectors} vectors; ${n} more do not fit`,
      );
    for (const k of keys) if (!isVectorKey(k)) fail(`key ${k} is not an integer from 0 to 2^53`);
    for (const x of vectors) if (!Number.isFinite(x)) fail('vectors must hold finite numbers only');
    const big = BigUint64Array.from(keys, (k) => BigInt(k));
    if ((this.#index.contains(big) as boolean[]).some(Boolean))
      fail('a key of this add is already in the index');
    this.#index.add(big, vectors, this.#threads);
  }

  /** The `k` nearest of each query (row after row in `queries`), nearest first. */
  search(queries: Float32Array, k: number): Neighbour[][] {
    const n = queries.length / this.dim;
    if (!Number.isInteger(n) || n < 1 || n > VECTOR_LIMITS.batch)
      fail(`queries must be 1 to ${VECTOR_LIMITS.batch} vectors of ${this.dim} numbers`);
    int('k', k, 10, 1, VECTOR_LIMITS.k);
    for (const x of queries) if (!Number.isFinite(x)) fail('queries must hold finite numbers only');
    const m = this.#index.search(queries, k, this.#threads);
    // usearch answers one query with Matches and several with BatchMatches.
    if (n === 1) return [neighbours((m as Matches).keys, (m as Matches).distances)];
    const b = m as BatchMatches;
    return Array.from({ length: n }, (_, i) => {
      const count = Number(b.counts[i]);
      return neighbours(b.keys.subarray(i * k, i * k + count), b.distances.subarray(i * k, i * k + count));
    });
  }

  async save(path: string): Promise<void> {
    this.#index.save(path);
  }

  /** Reads an index file saved by `save`; its dimension and size must fit this index's options. */
  async load(path: string): Promise<void> {
    await this.#checkFile(path);
    const next = this.#empty();
    try {
      next.load(path);
    } catch (e) {
      fail(`${path} is not a usearch index file: ${(e as Error).message}`);
    }
    if (next.dimensions() !== this.dim)
      fail(`${path} holds ${next.dimensions()}-dimensional vectors, not ${this.dim}`);
    if (next.size() > this.maxVectors)
      fail(`${path} holds ${next.size()} vectors, more than ${this.maxVectors}`);
    this.#index = next;
  }

  /**
   * usearch trusts the whole file: the first words (vector count and bytes per vector), for which it
   * allocates, and the graph after them (levels, entry point, neighbour slots), which it copies
   * without a check and follows on every search; a wrong value there reads out of bounds and takes
   * the process down. So the whole layout is checked here first (see `checkIndexFile`).
   */
  async #checkFile(path: string): Promise<void> {
    const o = this.#options;
    await checkIndexFile(path, {
      dim: o.dim,
      metric: o.metric,
      maxVectors: o.maxVectors,
      maxConnectivity: VECTOR_LIMITS.connectivity,
    });
  }

  /** The index as the bytes of its file. */
  async toBytes(): Promise<Uint8Array> {
    return withTemp(async (path) => {
      await this.save(path);
      return new Uint8Array(await readFile(path));
    });
  }

  async fromBytes(bytes: Uint8Array): Promise<void> {
    await withTemp(async (path) => {
      await writeFile(path, bytes);
      await this.load(path);
    });
  }
}

const neighbours = (keys: BigUint64Array, distances: Float32Array): Neighbour[] =>
  Array.from(keys, (key, j) => ({ key: Number(key), distance: distances[j]! }));

async function withTemp<T>(fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'stitch-vector-'));
  try {
    return await fn(join(dir, 'index.usearch'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

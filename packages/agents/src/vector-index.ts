import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate } from 'node:timers/promises';
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
  /** Vectors per add or search call (`addYielding`/`searchYielding` hand the addon slices of one). */
  batch: 4096,
} as const;

/**
 * Work in one slice of `addYielding`/`searchYielding`, in units of dimension × candidate list ×
 * connectivity / 16 per vector: about 5 to 10 ms on a 2-core VM for 768-dimensional vectors in an
 * index of 100 000 (5 vectors added or 10 queries with the default options; 1 vector of 4096).
 * A fixed count rather than a measured time: the slices, and so the index, are the same on every
 * node and every run (see addYielding).
 */
const SLICE_WORK = 2 ** 19;
/** Most vectors in one slice (small vectors). */
const MAX_SLICE = 256;

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
  /** Async calls under way or waiting (addYielding, searchYielding, save, load, …). */
  #pending = 0;
  #queue: Promise<unknown> = Promise.resolve();

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

  /**
   * Adds `keys.length` vectors laid out row after row in `vectors`, in one synchronous addon call
   * (seconds for a full batch of large vectors: on a node, use `addYielding`). Keys are integers
   * from 0 to 2^53. All or nothing: everything is checked before the first vector goes in.
   */
  add(keys: readonly number[], vectors: Float32Array): void {
    if (this.#pending > 0)
      fail('an async call of this index (addYielding, save, load, …) is under way; await it first');
    const big = this.#checkAdd(keys, vectors);
    if (big) this.#index.add(big, vectors, this.#threads);
  }

  /**
   * `add` in slices of a few milliseconds (SLICE_WORK), giving the event loop a turn between them.
   * All or nothing: everything is checked before the first slice, and should the addon fail midway
   * (out of memory) the slices already in are removed again. A search made between the slices sees
   * the slices added so far. The vectors go in in the same order, so a single-threaded index ends up
   * the same as after `add` — unless a slice, not the batch as a whole, grows the index's capacity
   * (usearch doubles it when an add would fill it, and restarts the generator of HNSW levels when it
   * does): then the levels drawn differ, the index is as good but not the same bit for bit. The
   * slices depend on the options only, so the same adds give the same index on every node.
   */
  addYielding(keys: readonly number[], vectors: Float32Array): Promise<void> {
    return this.#serial(async () => {
      const big = this.#checkAdd(keys, vectors);
      if (!big) return;
      const index = this.#index;
      let reached = 0;
      try {
        await this.#sliced(big.length, this.#options.expansionAdd, (from, to) => {
          reached = to;
          index.add(big.subarray(from, to), vectors.subarray(from * this.dim, to * this.dim), this.#threads);
        });
      } catch (e) {
        try {
          index.remove(big.subarray(0, reached));
        } catch {
          // The original error says more.
        }
        throw e;
      }
    });
  }

  /** The checks of an add; its keys as the addon takes them, or undefined when there are none. */
  #checkAdd(keys: readonly number[], vectors: Float32Array): BigUint64Array | undefined {
    const n = keys.length;
    if (n === 0) return undefined;
    if (n > VECTOR_LIMITS.batch) fail(`${n} vectors in one add; at most ${VECTOR_LIMITS.batch}`);
    if (vectors.length !== n * this.dim)
      fail(`${n} keys need ${n * this.dim} numbers (${this.dim} per vector), found ${vectors.length}`);
    if (this.size + n > this.maxVectors)
      throw new AgentsError(
        AgentsErrorCode.VectorIndexFull,
        `the index holds ${this.size} of at most ${this.maxVectors} vectors; ${n} more do not fit`,
      );
    for (const k of keys) if (!isVectorKey(k)) fail(`key ${k} is not an integer from 0 to 2^53`);
    allFinite(vectors, 'vectors must hold finite numbers only');
    // usearch refuses a key it holds only when it reaches it, after the vectors before it went in.
    if (new Set(keys).size !== n) fail('a key appears twice in this add');
    const big = BigUint64Array.from(keys, (k) => BigInt(k));
    if ((this.#index.contains(big) as boolean[]).some(Boolean))
      fail('a key of this add is already in the index');
    return big;
  }

  /** The `k` nearest of each query (row after row in `queries`), nearest first; one synchronous addon call. */
  search(queries: Float32Array, k: number): Neighbour[][] {
    const n = this.#checkSearch(queries, k);
    return answers(this.#index.search(queries, k, this.#threads), n, k);
  }

  /** `search` in slices of a few milliseconds (SLICE_WORK), giving the event loop a turn between them; the same answers. */
  searchYielding(queries: Float32Array, k: number): Promise<Neighbour[][]> {
    return this.#serial(async () => {
      const n = this.#checkSearch(queries, k);
      const index = this.#index;
      const out: Neighbour[][] = [];
      // A query's candidate list is the larger of k and ef.
      await this.#sliced(n, Math.max(k, this.#options.expansionSearch), (from, to) => {
        const m = index.search(queries.subarray(from * this.dim, to * this.dim), k, this.#threads);
        for (const a of answers(m, to - from, k)) out.push(a);
      });
      return out;
    });
  }

  #checkSearch(queries: Float32Array, k: number): number {
    const n = queries.length / this.dim;
    if (!Number.isInteger(n) || n < 1 || n > VECTOR_LIMITS.batch)
      fail(`queries must be 1 to ${VECTOR_LIMITS.batch} vectors of ${this.dim} numbers`);
    int('k', k, 10, 1, VECTOR_LIMITS.k);
    allFinite(queries, 'queries must hold finite numbers only');
    return n;
  }

  /**
   * Runs `run(from, to)` over 0 … n in slices of SLICE_WORK (a vector's work: dimension × `candidates`
   * × connectivity / 16), a turn of the event loop between them.
   */
  async #sliced(n: number, candidates: number, run: (from: number, to: number) => void): Promise<void> {
    const work = (this.dim * candidates * this.#options.connectivity) / 16;
    const size = Math.max(1, Math.min(MAX_SLICE, Math.floor(SLICE_WORK / work)));
    for (let from = 0; from < n; from += size) {
      // A turn of the event loop: timers, I/O and other actors run before the next slice.
      if (from > 0) await setImmediate();
      run(from, Math.min(n, from + size));
    }
  }

  /** Runs the async calls one at a time, in call order: none sees another's add half done. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    this.#pending++;
    const run = this.#queue.then(fn).finally(() => {
      this.#pending--;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Writes the index file (one synchronous addon call, about 1 ms per MiB of index). */
  save(path: string): Promise<void> {
    return this.#serial(async () => this.#index.save(path));
  }

  /** Reads an index file saved by `save`; its dimension and size must fit this index's options. */
  load(path: string): Promise<void> {
    return this.#serial(() => this.#load(path));
  }

  async #load(path: string): Promise<void> {
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

  /** The index as the bytes of its file (at most 2 GiB: `save` a larger one to a file). */
  toBytes(): Promise<Uint8Array> {
    return this.#serial(() =>
      withTempFile(async (path) => {
        this.#index.save(path);
        return new Uint8Array(await readFile(path));
      }),
    );
  }

  fromBytes(bytes: Uint8Array): Promise<void> {
    return this.#serial(() =>
      withTempFile(async (path) => {
        await writeFile(path, bytes);
        await this.#load(path);
      }),
    );
  }
}

/** Throws `message` unless every number is finite (x − x is 0 for those, NaN for NaN and ±∞). */
function allFinite(xs: Float32Array, message: string): void {
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    if (x - x !== 0) fail(message);
  }
}

/** usearch answers one query with Matches and several with BatchMatches. */
function answers(m: Matches | BatchMatches, n: number, k: number): Neighbour[][] {
  if (n === 1) return [neighbours((m as Matches).keys, (m as Matches).distances)];
  const b = m as BatchMatches;
  return Array.from({ length: n }, (_, i) => {
    const count = Number(b.counts[i]);
    return neighbours(b.keys.subarray(i * k, i * k + count), b.distances.subarray(i * k, i * k + count));
  });
}

const neighbours = (keys: BigUint64Array, distances: Float32Array): Neighbour[] =>
  Array.from(keys, (key, j) => ({ key: Number(key), distance: distances[j]! }));

/** Runs `fn` with the path of a file in a fresh temporary directory, removed afterwards. */
export async function withTempFile<T>(fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'stitch-vector-'));
  try {
    return await fn(join(dir, 'index.usearch'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

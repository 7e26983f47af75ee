import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentsError, AgentsErrorCode } from './errors.js';
import { checkIndexFile } from './vector-file.js';
import { IndexThread } from './vector-index-thread.js';
import type { Found, IndexSettings } from './vector-index-worker.js';

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
  /** Vectors per add or search call. */
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

/** Keys the index takes: integers from 0 to 2^53. */
export const isVectorKey = (k: unknown): k is number => Number.isSafeInteger(k) && (k as number) >= 0;

/**
 * An approximate nearest-neighbour index (HNSW, usearch) of fixed dimension and bounded size, with
 * integer keys. Saved as usearch's own file format, which `load` and `fromBytes` read back.
 *
 * usearch's calls are synchronous and take up to seconds, so the index lives on a worker thread of
 * its own and every call is async: the caller's event loop never waits on usearch. The calls run
 * one at a time, in call order (none sees another's add half done). Arguments are checked here
 * before anything is sent; vectors and queries are copied when called, so the caller may reuse its
 * arrays at once. `close` stops the thread; an index dropped without it stops its thread when it is
 * garbage-collected.
 */
export class VectorIndex {
  readonly dim: number;
  readonly metric: VectorMetric;
  readonly maxVectors: number;
  readonly #settings: IndexSettings;
  readonly #thread: IndexThread;
  /** The thread's size, as its last reply to an add or a load gave it. */
  #size = 0;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: VectorIndexOptions) {
    this.dim = int('dim', options.dim, 0, 1, VECTOR_LIMITS.dim);
    this.metric = options.metric ?? 'cos';
    if (!['cos', 'ip', 'l2sq'].includes(this.metric))
      fail(`metric must be cos, ip or l2sq, found ${String(this.metric)}`);
    this.maxVectors = int('maxVectors', options.maxVectors, 0, 1, VECTOR_LIMITS.maxVectors);
    this.#settings = {
      dim: this.dim,
      metric: this.metric,
      maxVectors: this.maxVectors,
      connectivity: int('connectivity', options.connectivity, 16, 2, VECTOR_LIMITS.connectivity),
      expansionAdd: int('expansionAdd', options.expansionAdd, 128, 1, VECTOR_LIMITS.expansion),
      expansionSearch: int('expansionSearch', options.expansionSearch, 64, 1, VECTOR_LIMITS.expansion),
      threads: int('threads', options.threads, 1, 1, VECTOR_LIMITS.threads),
    };
    this.#thread = new IndexThread(this.#settings, this);
  }

  /** Vectors in the index, as of the last add or load answered. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds `keys.length` vectors laid out row after row in `vectors`, in one usearch call. Keys are
   * integers from 0 to 2^53. All or nothing: everything is checked before the vectors go in. With
   * one thread the same adds in the same order build the same graph, on every node (op-vector's
   * restore relies on it).
   */
  async add(keys: readonly number[], vectors: Float32Array): Promise<void> {
    const big = this.#checkAdd(keys, vectors);
    const copy = vectors.slice();
    return this.#serial(async () => {
      if (!big) return;
      if (this.#size + big.length > this.maxVectors)
        throw new AgentsError(
          AgentsErrorCode.VectorIndexFull,
          `the index holds ${this.#size} of at most ${this.maxVectors} vectors; ${big.length} more do not fit`,
        );
      const reply = await this.#thread.request({ op: 'add', keys: big, vectors: copy }, [
        big.buffer,
        copy.buffer,
      ]);
      this.#size = reply.size;
    });
  }

  /**
   * The checks of an add that need no index (the thread checks that no key is in it already); its
   * keys as usearch takes them, or undefined when there are none.
   */
  #checkAdd(keys: readonly number[], vectors: Float32Array): BigUint64Array<ArrayBuffer> | undefined {
    const n = keys.length;
    if (n === 0) return undefined;
    if (n > VECTOR_LIMITS.batch) fail(`${n} vectors in one add; at most ${VECTOR_LIMITS.batch}`);
    if (vectors.length !== n * this.dim)
      fail(`${n} keys need ${n * this.dim} numbers (${this.dim} per vector), found ${vectors.length}`);
    for (const k of keys) if (!isVectorKey(k)) fail(`key ${k} is not an integer from 0 to 2^53`);
    allFinite(vectors, 'vectors must hold finite numbers only');
    // usearch refuses a key it holds only when it reaches it, after the vectors before it went in.
    if (new Set(keys).size !== n) fail('a key appears twice in this add');
    return BigUint64Array.from(keys, (k) => BigInt(k));
  }

  /** The `k` nearest of each query (row after row in `queries`), nearest first. */
  async search(queries: Float32Array, k: number): Promise<Neighbour[][]> {
    const n = this.#checkSearch(queries, k);
    const copy = queries.slice();
    return this.#serial(async () =>
      neighbours(await this.#thread.request({ op: 'search', queries: copy, k }, [copy.buffer]), n, k),
    );
  }

  #checkSearch(queries: Float32Array, k: number): number {
    const n = queries.length / this.dim;
    if (!Number.isInteger(n) || n < 1 || n > VECTOR_LIMITS.batch)
      fail(`queries must be 1 to ${VECTOR_LIMITS.batch} vectors of ${this.dim} numbers`);
    int('k', k, 10, 1, VECTOR_LIMITS.k);
    allFinite(queries, 'queries must hold finite numbers only');
    return n;
  }

  /** Runs the calls one at a time, in call order; after `close`, each rejects with VECTOR_INDEX_CLOSED. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => {
      this.#thread.checkOpen();
      return fn();
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Writes the index file (about 1 ms per MiB of index, on the index's thread). */
  save(path: string): Promise<void> {
    return this.#serial(async () => {
      await this.#thread.request({ op: 'save', path });
    });
  }

  /** Reads an index file saved by `save`; its dimension and size must fit this index's options. */
  load(path: string): Promise<void> {
    return this.#serial(() => this.#load(path));
  }

  async #load(path: string): Promise<void> {
    await this.#checkFile(path);
    this.#size = (await this.#thread.request({ op: 'load', path })).size;
  }

  /**
   * usearch trusts the whole file: the first words (vector count and bytes per vector), for which it
   * allocates, and the graph after them (levels, entry point, neighbour slots), which it copies
   * without a check and follows on every search; a wrong value there reads out of bounds and takes
   * the process down. So the whole layout is checked here first (see `checkIndexFile`).
   */
  async #checkFile(path: string): Promise<void> {
    const o = this.#settings;
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
        await this.#thread.request({ op: 'save', path });
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

  /**
   * Stops the index's thread, and with it the index: calls under way or waiting, and any later call,
   * reject with VECTOR_INDEX_CLOSED. Closing again does nothing more.
   */
  close(): Promise<void> {
    return this.#thread.close();
  }
}

/** Throws `message` unless every number is finite (x − x is 0 for those, NaN for NaN and ±∞). */
function allFinite(xs: Float32Array, message: string): void {
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    if (x - x !== 0) fail(message);
  }
}

/** The thread's answers to `n` queries as neighbour lists. */
function neighbours(found: Found, n: number, k: number): Neighbour[][] {
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: found.counts[i]! }, (_, j) => ({
      key: found.keys[i * k + j]!,
      distance: found.distances[i * k + j]!,
    })),
  );
}

/** Runs `fn` with the path of a file in a fresh temporary directory, removed afterwards. */
export async function withTempFile<T>(fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'stitch-vector-'));
  try {
    return await fn(join(dir, 'index.usearch'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

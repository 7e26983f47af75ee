// The thread that holds one VectorIndex's usearch index (started by vector-index-thread.ts).
// usearch's calls are synchronous and take up to seconds (a batch of adds, a save or load of
// gigabytes), so they run here and the caller's event loop never waits on them. The caller checks
// every request before it sends it; what can only be checked against the index is checked here.
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import type { BatchMatches, Index, Matches } from 'usearch';

/** The options of the index (VectorIndexOptions), every default filled in: the thread's workerData. */
export interface IndexSettings {
  dim: number;
  metric: 'cos' | 'ip' | 'l2sq';
  maxVectors: number;
  connectivity: number;
  expansionAdd: number;
  expansionSearch: number;
  threads: number;
}

export type IndexRequest =
  | { op: 'add'; keys: BigUint64Array; vectors: Float32Array }
  | { op: 'search'; queries: Float32Array; k: number }
  | { op: 'save'; path: string }
  | { op: 'load'; path: string };

/**
 * The answers of `search` for n queries: query i's hits are `counts[i]` keys and distances from
 * i × k on, nearest first.
 */
export interface Found {
  keys: Float64Array<ArrayBuffer>;
  distances: Float32Array<ArrayBuffer>;
  counts: Uint32Array<ArrayBuffer>;
}

/** What each request's reply carries; an add or a load the index's size after it. */
export interface IndexReplies {
  add: { size: number };
  search: Found;
  save: Record<string, never>;
  load: { size: number };
}

export type IndexReply =
  | { ok: true; value: IndexReplies[keyof IndexReplies] }
  | { ok: false; message: string };

// usearch's ES module build cannot find its prebuilt addon under pnpm's layout; the CommonJS build can.
const usearch = createRequire(import.meta.url)('usearch') as typeof import('usearch');
const settings = workerData as IndexSettings;
const port = parentPort!;

function empty(): Index {
  const s = settings;
  const { MetricKind, ScalarKind } = usearch;
  return new usearch.Index({
    dimensions: s.dim,
    metric: { cos: MetricKind.Cos, ip: MetricKind.IP, l2sq: MetricKind.L2sq }[s.metric],
    quantization: ScalarKind.F32,
    connectivity: s.connectivity,
    expansion_add: s.expansionAdd,
    expansion_search: s.expansionSearch,
    multi: false,
  });
}

let index = empty();

function add(keys: BigUint64Array, vectors: Float32Array): IndexReplies['add'] {
  // usearch refuses a key it holds only when it reaches it, after the vectors before it went in.
  if ((index.contains(keys) as boolean[]).some(Boolean))
    throw new Error('a key of this add is already in the index');
  try {
    index.add(keys, vectors, settings.threads);
  } catch (e) {
    // All or nothing: usearch reserves room for the whole batch first, but a node of the graph can
    // still fail to allocate midway; the vectors already in come out again.
    try {
      index.remove(keys);
    } catch {
      // The original error says more.
    }
    throw e;
  }
  return { size: index.size() };
}

function search(queries: Float32Array, k: number): Found {
  const n = queries.length / settings.dim;
  const m = index.search(queries, k, settings.threads);
  // usearch answers one query with Matches (its hits only), several with BatchMatches (k slots each):
  // either way query i's hits start at i × k. Copied: usearch's arrays may not be transferable.
  const { keys, distances, counts } =
    n === 1 ? { ...(m as Matches), counts: [BigInt((m as Matches).keys.length)] } : (m as BatchMatches);
  return {
    keys: Float64Array.from(keys, Number),
    distances: distances.slice(),
    counts: Uint32Array.from(counts, Number),
  };
}

/** Reads a file `checkIndexFile` passed into a fresh index, which replaces this one if it fits the settings. */
function load(path: string): IndexReplies['load'] {
  const next = empty();
  try {
    next.load(path);
  } catch (e) {
    throw new Error(`${path} is not a usearch index file: ${(e as Error).message}`);
  }
  if (next.dimensions() !== settings.dim)
    throw new Error(`${path} holds ${next.dimensions()}-dimensional vectors, not ${settings.dim}`);
  if (next.size() > settings.maxVectors)
    throw new Error(`${path} holds ${next.size()} vectors, more than ${settings.maxVectors}`);
  index = next;
  return { size: index.size() };
}

/** Runs a request: its answer, and the buffers the reply moves rather than copies. */
function run(r: IndexRequest): [IndexReplies[keyof IndexReplies], ArrayBuffer[]] {
  switch (r.op) {
    case 'add':
      return [add(r.keys, r.vectors), []];
    case 'search': {
      const found = search(r.queries, r.k);
      return [found, [found.keys.buffer, found.distances.buffer, found.counts.buffer]];
    }
    case 'save':
      index.save(r.path);
      return [{}, []];
    case 'load':
      return [load(r.path), []];
  }
}

// One request at a time, answered in the order they came: the caller matches replies to requests by order.
port.on('message', (r: IndexRequest) => {
  let reply: IndexReply;
  let transfer: ArrayBuffer[] = [];
  try {
    let value: IndexReplies[keyof IndexReplies];
    [value, transfer] = run(r);
    reply = { ok: true, value };
  } catch (e) {
    reply = { ok: false, message: (e as Error).message };
  }
  port.postMessage(reply, transfer);
});

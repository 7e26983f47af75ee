// The event loop never blocks for a whole batch: `addYielding` and `searchYielding` hand usearch's
// synchronous addon slices of a batch, a turn of the event loop between them, and op-vector inserts
// and searches through them. Nothing here asserts a duration: a ticker counts the event loop's turns,
// and each addon call notes the turn it ran in.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type Cluster, connectCluster } from '@stitch/runtime';
import { OPERATOR_ACTORS, VECTOR_LIMITS, VectorIndex } from '../src/index.js';
import { ticker } from './loop-turns.js';
import { gaussianClusters } from './vector-data.js';

const DIM = 128;
const BATCH = VECTOR_LIMITS.batch;
/** A full batch goes to the addon in at least this many slices (MAX_SLICE is 256 vectors). */
const MIN_SLICES = BATCH / 256;
const data = gaussianClusters(DIM, 50, 1, 7);
/** Vectors an index holds before the batch (keys 0 …), the batch (keys BATCH …), held-out queries. */
const first = data.draw(BATCH);
const firstKeys = Array.from({ length: BATCH }, (_, i) => i);
const vectors = data.draw(BATCH);
const queries = data.draw(BATCH);
const keys = Array.from({ length: BATCH }, (_, i) => BATCH + i);
const answers = (index: VectorIndex, n = 256) => index.search(queries.subarray(0, n * DIM), 10);

/** Wraps usearch's `Index.prototype[method]`: each call notes the ticker's turn and how many vectors it got. */
function spy(method: 'add' | 'search', turnOf: () => number) {
  const { Index } = createRequire(import.meta.url)('usearch') as typeof import('usearch');
  const proto = Index.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const original = proto[method]!;
  const calls: { turn: number; vectors: number }[] = [];
  proto[method] = function (this: unknown, ...args: unknown[]) {
    const v = args[method === 'add' ? 1 : 0] as Float32Array;
    calls.push({ turn: turnOf(), vectors: v.length / DIM });
    return original.apply(this, args);
  };
  return {
    calls,
    restore: () => {
      proto[method] = original;
    },
  };
}

const turnsOf = (calls: { turn: number }[]) => new Set(calls.map((c) => c.turn)).size;

/** Runs `work` while counting turns and usearch's `method` calls; the calls, and what `work` gave. */
async function watched<T>(method: 'add' | 'search', work: () => Promise<T>) {
  const loop = ticker();
  const spied = spy(method, () => loop.turns);
  try {
    return { result: await work(), calls: spied.calls };
  } finally {
    spied.restore();
    loop.stop();
  }
}

test('addYielding: a full batch in slices over many turns, the same index as one add', async (t) => {
  const whole = new VectorIndex({ dim: DIM, maxVectors: 2 * BATCH });
  whole.add(firstKeys, first);
  whole.add(keys, vectors);
  const sliced = new VectorIndex({ dim: DIM, maxVectors: 2 * BATCH });
  sliced.add(firstKeys, first);
  const adds = await watched('add', () => sliced.addYielding(keys, vectors));
  t.diagnostic(`${adds.calls.length} addon calls over ${turnsOf(adds.calls)} turns`);
  assert.equal(
    adds.calls.reduce((n, c) => n + c.vectors, 0),
    BATCH,
  );
  assert.ok(turnsOf(adds.calls) >= MIN_SLICES, `${turnsOf(adds.calls)} turns`);
  assert.equal(sliced.size, 2 * BATCH);
  // Same vectors in the same order, one thread, the capacity grown once before the batch: the same
  // graph, byte for byte, so the same answers.
  assert.ok(Buffer.from(await sliced.toBytes()).equals(await whole.toBytes()), 'the same index file');
  assert.deepEqual(answers(sliced), answers(whole));
  // Into an empty index the slices grow the capacity several times (1, 2, 4, … vectors), so the HNSW
  // levels drawn differ from one add's: the index is not the same bit for bit, its answers are.
  const empty = new VectorIndex({ dim: DIM, maxVectors: BATCH });
  await empty.addYielding(keys, vectors);
  const emptyWhole = new VectorIndex({ dim: DIM, maxVectors: BATCH });
  emptyWhole.add(keys, vectors);
  assert.deepEqual(answers(empty), answers(emptyWhole));
});

test('searchYielding: a full batch of queries in slices, the answers of one search', async (t) => {
  const index = new VectorIndex({ dim: DIM, maxVectors: BATCH });
  await index.addYielding(keys, vectors);
  const searches = await watched('search', () => index.searchYielding(queries, 10));
  const got = searches.result;
  t.diagnostic(`${searches.calls.length} addon calls over ${turnsOf(searches.calls)} turns`);
  assert.ok(turnsOf(searches.calls) >= MIN_SLICES, `${turnsOf(searches.calls)} turns`);
  assert.deepEqual(got, index.search(queries, 10));
  // One query: one call, the shape `search` gives.
  assert.deepEqual(
    await index.searchYielding(queries.subarray(0, DIM), 5),
    index.search(queries.subarray(0, DIM), 5),
  );
});

test('addYielding: all or nothing — checked before the first slice, rolled back if the addon fails midway', async () => {
  const code = (c: string) => (e: { code?: string }) => e.code === c;
  const index = new VectorIndex({ dim: DIM, maxVectors: 2 * BATCH });
  await index.addYielding(keys.slice(0, 10), vectors.subarray(0, 10 * DIM));
  // A key twice in one add: usearch would take the vectors before the second one, then throw.
  const twice = [...keys.slice(100, 300), keys[100]!];
  await assert.rejects(index.addYielding(twice, vectors.subarray(0, 201 * DIM)), code('VECTOR_INVALID'));
  assert.throws(() => index.add(twice, vectors.subarray(0, 201 * DIM)), code('VECTOR_INVALID'));
  // A key already in: refused before anything goes in.
  await assert.rejects(
    index.addYielding(keys.slice(5, 500), vectors.subarray(0, 495 * DIM)),
    code('VECTOR_INVALID'),
  );
  assert.equal(index.size, 10);
  // The addon fails on its third slice (as when it cannot reserve memory): the first two come out again.
  const { Index } = createRequire(import.meta.url)('usearch') as typeof import('usearch');
  const original = Index.prototype.add;
  let calls = 0;
  Index.prototype.add = function (this: InstanceType<typeof Index>, ...args: Parameters<typeof original>) {
    if (++calls === 3) throw new Error('Failed to reserve memory');
    return original.apply(this, args);
  };
  try {
    await assert.rejects(
      index.addYielding(keys.slice(10, 2010), vectors.subarray(10 * DIM, 2010 * DIM)),
      /Failed to reserve memory/,
    );
  } finally {
    Index.prototype.add = original;
  }
  assert.equal(index.size, 10);
  // The same add again goes in whole, and each of its vectors is found.
  await index.addYielding(keys.slice(10, 2010), vectors.subarray(10 * DIM, 2010 * DIM));
  assert.equal(index.size, 2010);
  const found = await index.searchYielding(vectors.subarray(10 * DIM, 20 * DIM), 1);
  assert.deepEqual(
    found.map((r) => r[0]!.key),
    keys.slice(10, 20),
  );
});

test('async calls run one at a time: a save waits for the add before it, a sync add is refused meanwhile', async () => {
  const index = new VectorIndex({ dim: DIM, maxVectors: BATCH });
  const adding = index.addYielding(keys.slice(0, 1000), vectors.subarray(0, 1000 * DIM));
  const bytes = index.toBytes();
  assert.throws(() => index.add([1], vectors.subarray(0, DIM)), /under way/);
  await adding;
  const copy = new VectorIndex({ dim: DIM, maxVectors: BATCH });
  await copy.fromBytes(await bytes);
  assert.equal(copy.size, 1000);
  index.add([1], vectors.subarray(0, DIM));
});

let cluster: Cluster | undefined;
let dir: string | undefined;
after(async () => {
  await cluster?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('op-vector: a full insert and a query run through the addon in slices over many turns of the node', async (t) => {
  dir = await mkdtemp(join(tmpdir(), 'stitch-vector-yield-'));
  const path = join(dir, 'first.usearch');
  const whole = new VectorIndex({ dim: DIM, metric: 'cos', maxVectors: 2 * BATCH });
  whole.add(firstKeys, first);
  await whole.save(path);
  cluster = await connectCluster({ name: 'agentsvectoryield', log: () => undefined });
  await cluster.startNode({ id: 'n1', actors: OPERATOR_ACTORS });
  const ref = await cluster.spawn('op-vector', { id: 'search', node: 'n1' });
  const config = {
    deployment: 'dep',
    opId: 'search',
    op: 'vector.search',
    attrs: { dim: DIM, metric: 'cos', max_vectors: 2 * BATCH, k: 10, index_path: path },
    device: 'cpu',
    modelled: false,
    estimatedMs: 0,
    natsUrl: cluster.url,
    cluster: cluster.name,
  };
  assert.deepEqual(await ref.ask({ type: 'configure', config }), { size: BATCH });
  const adds = await watched('add', () =>
    ref.ask({ type: 'insert', rid: 'i1', keys, vectors }, { timeoutMs: 120_000 }),
  );
  assert.deepEqual(adds.result, { size: 2 * BATCH });
  t.diagnostic(`${adds.calls.length} addon calls over ${turnsOf(adds.calls)} turns`);
  assert.equal(
    adds.calls.reduce((n, c) => n + c.vectors, 0),
    BATCH,
  );
  assert.ok(turnsOf(adds.calls) >= MIN_SLICES, `${turnsOf(adds.calls)} turns`);
  // The answers of the index that took the batch in one add.
  whole.add(keys, vectors);
  for (const q of [0, 17, 4095]) {
    const r = (await ref.ask({
      type: 'run',
      rid: `q${q}`,
      ctx: { embedding: queries.subarray(q * DIM, (q + 1) * DIM) },
    })) as { out: { neighbours: unknown } };
    assert.deepEqual(r.out.neighbours, whole.search(queries.subarray(q * DIM, (q + 1) * DIM), 10)[0]);
  }
});

// The event loop never waits on usearch: its calls are synchronous and take up to seconds (a batch
// of adds, a save or load of a large index), so a VectorIndex makes them on a worker thread of its
// own, and op-vector inserts and searches through it. Nothing here asserts a duration: a ticker
// counts the event loop's turns while a call is under way.
import assert from 'node:assert/strict';
import { type FileHandle, mkdtemp, rm } from 'node:fs/promises';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Cluster, connectCluster } from '@stitch/runtime';
import { OPERATOR_ACTORS, VECTOR_LIMITS, VectorIndex } from '../src/index.js';
import { ticker } from './loop-turns.js';
import { gaussianClusters } from './vector-data.js';

const DIM = 128;
const BATCH = VECTOR_LIMITS.batch;
/**
 * Turns the event loop takes at the least while a call that blocked it for long (tens to hundreds
 * of milliseconds of usearch) is under way: blocked, it took none; free, it takes thousands.
 */
const MIN_TURNS = 20;
const data = gaussianClusters(DIM, 50, 1, 7);
/** Vectors an index holds before the batch (keys 0 …), the batch (keys BATCH …), held-out queries. */
const first = data.draw(BATCH);
const firstKeys = Array.from({ length: BATCH }, (_, i) => i);
const vectors = data.draw(BATCH);
const queries = data.draw(BATCH);
const keys = Array.from({ length: BATCH }, (_, i) => BATCH + i);
const code = (c: string) => (e: { code?: string }) => e.code === c;

let dir: string;
let cluster: Cluster | undefined;
const indexes: VectorIndex[] = [];
/** A VectorIndex closed when the file's tests end. */
const newIndex = (options: ConstructorParameters<typeof VectorIndex>[0]) => {
  const index = new VectorIndex(options);
  indexes.push(index);
  return index;
};
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stitch-vector-yield-'));
});
after(async () => {
  await Promise.all(indexes.map((index) => index.close()));
  await cluster?.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * Runs `work` with every file that node:fs/promises' `open` opens meanwhile handed to `opened` first
 * (in every module that imports it: the builtin's ES bindings follow its CommonJS exports).
 */
async function watchingOpens<T>(opened: (fh: FileHandle) => void, work: () => Promise<T>): Promise<T> {
  const fsp = createRequire(import.meta.url)('node:fs/promises') as typeof import('node:fs/promises');
  const open = fsp.open;
  fsp.open = async (...args: Parameters<typeof open>) => {
    const fh = await open(...args);
    opened(fh);
    return fh;
  };
  syncBuiltinESMExports();
  try {
    return await work();
  } finally {
    fsp.open = open;
    syncBuiltinESMExports();
  }
}

/** Runs `work`, counting the event loop's turns until it settles; what it gave, and the turns. */
async function watched<T>(work: () => Promise<T>): Promise<{ result: T; turns: number }> {
  const loop = ticker();
  try {
    const result = await work();
    return { result, turns: loop.turns };
  } finally {
    loop.stop();
  }
}

test('a full batch of adds and one of queries: the event loop turns while usearch works', async (t) => {
  const index = newIndex({ dim: DIM, maxVectors: 2 * BATCH });
  await index.add(firstKeys, first);
  const adds = await watched(() => index.add(keys, vectors));
  const searches = await watched(() => index.search(queries, 10));
  t.diagnostic(`turns: ${adds.turns} during the add, ${searches.turns} during the search`);
  assert.ok(adds.turns >= MIN_TURNS, `${adds.turns} turns during the add`);
  assert.ok(searches.turns >= MIN_TURNS, `${searches.turns} turns during the search`);
  assert.equal(index.size, 2 * BATCH);
  assert.equal(searches.result.length, BATCH);
  // One query: the shape of a batch of one.
  assert.deepEqual(await index.search(queries.subarray(0, DIM), 10), [searches.result[0]]);
});

test('the same adds in the same order build the same index, byte for byte (one thread)', async () => {
  const build = async () => {
    const index = newIndex({ dim: DIM, maxVectors: 2 * BATCH });
    await index.add(firstKeys.slice(0, 100), first.subarray(0, 100 * DIM));
    await index.add(firstKeys.slice(100), first.subarray(100 * DIM));
    await index.add(keys, vectors);
    return index;
  };
  const [a, b] = [await build(), await build()];
  assert.ok(Buffer.from(await a.toBytes()).equals(await b.toBytes()), 'the same index file');
  assert.deepEqual(await a.search(queries, 10), await b.search(queries, 10));
});

test('save and load of an index of 100 MB: the event loop turns while usearch writes and reads it', async (t) => {
  // 6 400 vectors of 4 096 dimensions (105 MB) in a sparse graph: quick to build, and its file as
  // large as any index of those vectors.
  const dim = VECTOR_LIMITS.dim;
  const n = 6400;
  const options = { dim, maxVectors: n, connectivity: 2, expansionAdd: 1, threads: 2 };
  const big = newIndex(options);
  const draw = gaussianClusters(dim, 4, 1, 3);
  for (let i = 0; i < n; i += BATCH) {
    const count = Math.min(BATCH, n - i);
    await big.add(
      Array.from({ length: count }, (_, j) => i + j),
      draw.draw(count),
    );
  }
  const path = join(dir, 'big.usearch');
  const saves = await watched(() => big.save(path));
  // A load first checks the file's graph (reads of its own, which turn the loop); the turns that
  // count are those after the check has closed the file, while usearch reads it.
  const loaded = newIndex(options);
  const loop = ticker();
  let checked: number | undefined;
  try {
    await watchingOpens(
      (fh) => {
        const close = fh.close;
        fh.close = async () => {
          await close.call(fh);
          checked = loop.turns;
        };
      },
      () => loaded.load(path),
    );
  } finally {
    loop.stop();
  }
  assert.ok(checked !== undefined, 'the check opened the file and closed it');
  const loads = loop.turns - checked;
  t.diagnostic(`turns: ${saves.turns} during the save, ${loads} while usearch read the file`);
  assert.ok(saves.turns >= MIN_TURNS, `${saves.turns} turns during the save`);
  assert.ok(loads >= MIN_TURNS, `${loads} turns while usearch read the file`);
  assert.equal(loaded.size, n);
  await Promise.all([big.close(), loaded.close()]);
});

test('calls run one at a time, in call order; vectors are taken as they were when called', async () => {
  const index = newIndex({ dim: DIM, maxVectors: BATCH });
  const mine = vectors.slice(0, 1000 * DIM);
  const adding = index.add(keys.slice(0, 1000), mine);
  mine.fill(0);
  const found = index.search(vectors.subarray(0, DIM), 1);
  const bytes = index.toBytes();
  assert.equal(index.size, 0, 'nothing is in before the add is answered');
  await adding;
  assert.equal(index.size, 1000);
  // The search came after the add, so it finds the vector the add took (not the zeros).
  assert.deepEqual(
    (await found)[0]!.map((h) => h.key),
    [keys[0]],
  );
  const copy = newIndex({ dim: DIM, maxVectors: BATCH });
  await copy.fromBytes(await bytes);
  assert.equal(copy.size, 1000);
});

test('an add is all or nothing: a key twice, or one in the index already, and nothing goes in', async () => {
  const index = newIndex({ dim: DIM, maxVectors: 2 * BATCH });
  await index.add(keys.slice(0, 10), vectors.subarray(0, 10 * DIM));
  // A key twice in one add: usearch would take the vectors before the second one, then throw.
  const twice = [...keys.slice(100, 300), keys[100]!];
  await assert.rejects(index.add(twice, vectors.subarray(0, 201 * DIM)), code('VECTOR_INVALID'));
  // A key already in: the index's thread refuses it before anything goes in.
  await assert.rejects(
    index.add(keys.slice(5, 500), vectors.subarray(0, 495 * DIM)),
    (e: { code?: string; message?: string }) =>
      e.code === 'VECTOR_INVALID' && /already in the index/.test(e.message!),
  );
  assert.equal(index.size, 10);
  // Only the first ten are in: whatever is searched for, one of them is found.
  const found = await index.search(vectors.subarray(0, 500 * DIM), 1);
  assert.ok(found.every((r) => keys.slice(0, 10).includes(r[0]!.key)));
});

test('op-vector: a full insert and queries, answered as by the index that took the same adds', async () => {
  const path = join(dir, 'first.usearch');
  const whole = newIndex({ dim: DIM, metric: 'cos', maxVectors: 2 * BATCH });
  await whole.add(firstKeys, first);
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
  assert.deepEqual(await ref.ask({ type: 'insert', rid: 'i1', keys, vectors }, { timeoutMs: 120_000 }), {
    size: 2 * BATCH,
  });
  await whole.add(keys, vectors);
  for (const q of [0, 17, 4095]) {
    const query = queries.subarray(q * DIM, (q + 1) * DIM);
    const r = (await ref.ask({ type: 'run', rid: `q${q}`, ctx: { embedding: query } })) as {
      out: { neighbours: unknown };
    };
    assert.deepEqual(r.out.neighbours, (await whole.search(query, 10))[0]);
  }
});

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Cluster, connectCluster } from '@stitch/runtime';
import { MAX_JOURNAL_BYTES, OPERATOR_ACTORS, type OpReply, VectorIndex } from '../src/index.js';
import { exactTopK, gaussianClusters, recallAtK } from './vector-data.js';

const DIM = 384;
const N = 10_000;
const Q = 200;
const data = gaussianClusters(DIM, 100, 1, 42);
const base = data.draw(N);
// Held out: drawn from the same clusters, never inserted.
const queries = data.draw(Q);
const exact = exactTopK(base, queries, DIM, 10);
const keys = Array.from({ length: N }, (_, i) => i);
let dir: string;

let built: Promise<VectorIndex> | undefined;
/** The N vectors indexed, with room for 1 000 more (op-vector inserts); built once, read by every test. */
function build(): Promise<VectorIndex> {
  built ??= (async () => {
    const index = new VectorIndex({ dim: DIM, metric: 'ip', maxVectors: N + 1000, threads: 2 });
    for (let i = 0; i < N; i += 4096)
      await index.add(keys.slice(i, i + 4096), base.subarray(i * DIM, Math.min(N, i + 4096) * DIM));
    return index;
  })();
  return built;
}
const searchAll = async (index: VectorIndex) =>
  (await index.search(queries, 10)).map((r) => r.map((h) => h.key));

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stitch-vector-test-'));
});
after(async () => {
  await (await built)?.close();
  await rm(dir, { recursive: true, force: true });
});

test('recall@10 against exact search on 10 000 clustered vectors with held-out queries', async (t) => {
  const index = await build();
  assert.equal(index.size, N);
  const recall = recallAtK(await searchAll(index), exact);
  t.diagnostic(`recall@10 ${recall.toFixed(4)}`);
  assert.ok(recall >= 0.95, `recall@10 ${recall}`);
  // A query equal to an indexed vector finds it first.
  const [self] = await index.search(base.subarray(7 * DIM, 8 * DIM), 1);
  assert.equal(self?.[0]?.key, 7);
});

test('saved to a file and loaded back, or through bytes, it answers the same', async () => {
  const index = await build();
  const path = join(dir, 'a.usearch');
  await index.save(path);
  const loaded = new VectorIndex({ dim: DIM, metric: 'ip', maxVectors: N });
  await loaded.load(path);
  assert.deepEqual(await searchAll(loaded), await searchAll(index));
  const copy = new VectorIndex({ dim: DIM, metric: 'ip', maxVectors: N });
  await copy.fromBytes(await index.toBytes());
  assert.deepEqual(await searchAll(copy), await searchAll(index));
  await Promise.all([loaded.close(), copy.close()]);
  // The file's dimension and size must fit the options it is loaded under.
  await assert.rejects(new VectorIndex({ dim: 128, maxVectors: 10 * N }).load(path), /128-dimensional/);
  await assert.rejects(
    new VectorIndex({ dim: DIM, maxVectors: 100 }).load(path),
    (e: { code?: string }) => e.code === 'VECTOR_INVALID',
  );
  const bytes = await index.toBytes();
  await writeFile(join(dir, 'cut'), bytes.subarray(0, bytes.length / 2));
  await assert.rejects(new VectorIndex({ dim: DIM, maxVectors: N }).load(join(dir, 'cut')), /cut short/);
  // A file whose first words claim billions of vectors is refused before usearch allocates for them.
  await writeFile(join(dir, 'junk'), 'not an index, not at all');
  await assert.rejects(
    new VectorIndex({ dim: DIM, maxVectors: N }).load(join(dir, 'junk')),
    (e: { code?: string }) => e.code === 'VECTOR_INVALID',
  );
});

test('bounds: dimension, size, keys, finiteness, batch and k are checked', async () => {
  const code = (c: string) => (e: { code?: string }) => e.code === c;
  const index = new VectorIndex({ dim: 4, maxVectors: 2 });
  await index.add([1, 2], new Float32Array([1, 0, 0, 0, 0, 1, 0, 0]));
  await assert.rejects(index.add([3], new Float32Array([0, 0, 1, 0])), code('VECTOR_INDEX_FULL'));
  const roomy = new VectorIndex({ dim: 4, maxVectors: 10 });
  await assert.rejects(roomy.add([1], new Float32Array(3)), code('VECTOR_INVALID'));
  await assert.rejects(roomy.add([-1], new Float32Array(4)), code('VECTOR_INVALID'));
  await assert.rejects(roomy.add([1], new Float32Array([0, Number.NaN, 0, 0])), code('VECTOR_INVALID'));
  await roomy.add([1], new Float32Array([1, 0, 0, 0]));
  // In the index already: refused by the index's thread, with its message.
  await assert.rejects(roomy.add([1], new Float32Array([0, 1, 0, 0])), code('VECTOR_INVALID'));
  await assert.rejects(roomy.search(new Float32Array(4), 0), code('VECTOR_INVALID'));
  await assert.rejects(roomy.search(new Float32Array(5), 1), code('VECTOR_INVALID'));
  assert.equal(roomy.size, 1);
  assert.throws(() => new VectorIndex({ dim: 0, maxVectors: 1 }), code('VECTOR_INVALID'));
  assert.throws(
    () => new VectorIndex({ dim: 4, maxVectors: 1, metric: 'hamming' as 'ip' }),
    code('VECTOR_INVALID'),
  );
  await Promise.all([index.close(), roomy.close()]);
});

let cluster: Cluster;
test('op-vector: loads from a file, inserts at run time, answers, and migrates with its inserts', async () => {
  const path = join(dir, 'op.usearch');
  await (await build()).save(path);
  cluster = await connectCluster({ name: 'agentsvector', log: () => undefined });
  const second = await connectCluster({ nats: cluster.url, name: 'agentsvector', log: () => undefined });
  try {
    await cluster.startNode({ id: 'n1', actors: OPERATOR_ACTORS });
    await second.startNode({ id: 'n2', actors: OPERATOR_ACTORS });
    const config = (attrs: Record<string, string | number>) => ({
      deployment: 'dep',
      opId: 'search',
      op: 'vector.search',
      attrs: { dim: DIM, metric: 'ip', max_vectors: N + 1000, k: 10, ...attrs },
      device: 'cpu',
      modelled: false,
      estimatedMs: 0,
      natsUrl: cluster.url,
      cluster: cluster.name,
    });
    const ref = await cluster.spawn('op-vector', { id: 'search', node: 'n1' });
    await assert.rejects(
      ref.ask({ type: 'configure', config: config({ dim: 0 }) }),
      (e: { code?: string }) => e.code === 'VECTOR_INVALID',
    );
    await assert.rejects(
      ref.ask({ type: 'configure', config: config({ k: 0 }) }),
      (e: { code?: string }) => e.code === 'VECTOR_INVALID',
    );
    assert.deepEqual(
      await ref.ask(
        { type: 'configure', config: config({ index_path: path }), epoch: 2 },
        { timeoutMs: 30_000 },
      ),
      { size: N },
    );
    const query = (rid: string, v: Float32Array) =>
      ref.ask({ type: 'run', rid, ctx: { embedding: Array.from(v), query: 'q' } }) as Promise<OpReply>;
    const r = await query('q0', queries.subarray(0, DIM));
    const got = (r.out.neighbours as { key: number }[]).map((h) => h.key);
    assert.equal(recallAtK([got], [exact[0]!]) >= 0.8, true);
    assert.equal(r.out.embedding, undefined, 'the query vector does not flow on');
    assert.equal(r.out.query, 'q');
    // Inserts: new vectors (the held-out queries themselves) become their own nearest neighbours.
    const perInsert = Math.floor(MAX_JOURNAL_BYTES / 4 / DIM / 2);
    const inserted: number[] = [];
    for (let i = 0; i < 3; i++) {
      const ks = Array.from({ length: perInsert }, (_, j) => N + i * perInsert + j);
      const vs = queries.subarray(i * perInsert * DIM, (i + 1) * perInsert * DIM);
      await ref.ask({ type: 'insert', rid: `ins${i}`, keys: ks, vectors: Array.from(vs) });
      inserted.push(...ks);
    }
    // The first two inserts overflowed the journal: the index went to the object store, the third stays in the journal.
    const before = (await ref.ask({ type: 'counts' })) as { size: number; base: { kind: string } };
    assert.deepEqual([before.size, before.base.kind], [N + inserted.length, 'object']);
    const last = inserted.at(-1)! - N;
    const findsItself = async () =>
      (
        (await query(`self-${Math.random()}`, queries.subarray(last * DIM, (last + 1) * DIM))).out
          .neighbours as { key: number }[]
      )[0]!.key;
    assert.equal(await findsItself(), inserted.at(-1));
    // Move it: stop on n1 (snapshot), spawn on n2 (restore from the object store + the journal).
    await cluster.stop(ref);
    await cluster.spawn('op-vector', { id: 'search', node: 'n2' });
    const moved = (await ref.ask({ type: 'counts' }, { timeoutMs: 30_000 })) as {
      size: number;
      applied: number;
    };
    assert.equal(moved.size, N + inserted.length);
    assert.equal(await findsItself(), inserted.at(-1));
    // A deposed coordinator's configure (an older epoch) would empty the index: refused, after the move too.
    await assert.rejects(
      ref.ask({ type: 'configure', config: config({}), epoch: 1 }),
      (e: { code?: string }) => e.code === 'STALE_FENCE',
    );
    assert.equal(((await ref.ask({ type: 'counts' })) as { size: number }).size, N + inserted.length);
    // A retried insert is answered from the record, not applied twice.
    assert.deepEqual(
      await ref.ask({
        type: 'insert',
        rid: 'ins2',
        keys: [N + 2 * perInsert],
        vectors: Array.from(queries.subarray(0, DIM)),
      }),
      { size: N + inserted.length },
    );
  } finally {
    await second.close();
    await cluster.close();
  }
});

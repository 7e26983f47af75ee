// op-vector's durability without a save of the whole index on every insert: a journal that would
// pass MAX_JOURNAL_BYTES goes to the object store as an inserts object (its bytes, not the index's),
// and the whole index is saved only when those pass a share of it (or on `persist`). A move restores
// base + inserts objects + journal.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Cluster, connectCluster } from '@stitch/runtime';
import {
  MAX_JOURNAL_BYTES,
  OPERATOR_ACTORS,
  type OpReply,
  VectorIndex,
  vectorOperator,
} from '../src/index.js';
import { getIndexObject } from '../src/vector-objects.js';
import { INSERTS_SHARE, type InsertsObject } from '../src/vector-operator.js';
import { gaussianClusters } from './vector-data.js';

const DIM = 16;
/** Vectors in the configured file: enough that two journals' worth stays under INSERTS_SHARE of it. */
const N0 = 32_768;
/** Vectors per insert: two fill the journal past MAX_JOURNAL_BYTES, one does not. */
const PER = Math.floor(MAX_JOURNAL_BYTES / 4 / DIM / 2) + 76;
const data = gaussianClusters(DIM, 200, 1, 11);
const baseVectors = data.draw(N0);
const inserted = data.draw(8 * PER);
let dir: string;
let cluster: Cluster;

type Counts = {
  size: number;
  applied: number;
  base: { kind: string; digest?: string };
  inserts: InsertsObject[];
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stitch-vector-store-'));
  cluster = await connectCluster({ name: 'agentsvectorstore', log: () => undefined });
});
after(async () => {
  await cluster.close();
  await rm(dir, { recursive: true, force: true });
});

const config = (attrs: Record<string, string | number>) => ({
  deployment: 'dep',
  opId: 'search',
  op: 'vector.search',
  attrs: { dim: DIM, metric: 'cos', max_vectors: N0 + 8 * PER, k: 3, ...attrs },
  device: 'cpu',
  modelled: false,
  estimatedMs: 0,
  natsUrl: cluster.url,
  cluster: cluster.name,
});

test('inserts go to the object store as inserts objects; the whole index only past a share of it; a move restores all', async () => {
  assert.ok(2 * PER * DIM * 4 > MAX_JOURNAL_BYTES && PER * DIM * 4 <= MAX_JOURNAL_BYTES);
  assert.ok(
    2 * PER * DIM * 4 < (N0 + 4 * PER) * DIM * 4 * INSERTS_SHARE,
    'one inserts object fits the share',
  );
  const path = join(dir, 'base.usearch');
  const file = new VectorIndex({ dim: DIM, maxVectors: N0 });
  for (let i = 0; i < N0; i += 4096)
    await file.add(
      Array.from({ length: 4096 }, (_, j) => i + j),
      baseVectors.subarray(i * DIM, (i + 4096) * DIM),
    );
  await file.save(path);
  await file.close();
  const second = await connectCluster({ nats: cluster.url, name: cluster.name, log: () => undefined });
  try {
    await cluster.startNode({ id: 'n1', actors: OPERATOR_ACTORS });
    await second.startNode({ id: 'n2', actors: OPERATOR_ACTORS });
    const ref = await cluster.spawn('op-vector', { id: 'search', node: 'n1' });
    await ref.ask({ type: 'configure', config: config({ index_path: path }) }, { timeoutMs: 30_000 });
    let n = 0;
    const insert = async () => {
      const keys = Array.from({ length: PER }, (_, j) => N0 + n * PER + j);
      const vectors = inserted.subarray(n * PER * DIM, (n + 1) * PER * DIM);
      n++;
      return ref.ask({ type: 'insert', rid: `ins${n - 1}`, keys, vectors }, { timeoutMs: 30_000 });
    };
    const counts = async () => (await ref.ask({ type: 'counts' }, { timeoutMs: 30_000 })) as Counts;
    const findsItself = async (i: number) => {
      const r = (await ref.ask({
        type: 'run',
        rid: `self-${i}-${Math.random()}`,
        ctx: { embedding: inserted.subarray(i * DIM, (i + 1) * DIM) },
      })) as OpReply;
      return (r.out.neighbours as { key: number }[])[0]!.key === N0 + i;
    };

    // The journal overflows over a configured file: the whole index becomes the base object, so
    // that a move needs no file on the target.
    await insert();
    assert.equal((await counts()).base.kind, 'file');
    await insert();
    const saved = await counts();
    assert.deepEqual([saved.base.kind, saved.inserts.length], ['object', 0]);
    // It overflows again: this time only the journal goes, as an inserts object; the base stays.
    await insert();
    await insert();
    const stored = await counts();
    assert.equal(stored.base.digest, saved.base.digest);
    assert.equal(stored.inserts.length, 1);
    assert.equal(stored.inserts[0]!.count, 2 * PER);
    await insert(); // in the journal
    assert.equal((await counts()).size, N0 + 5 * PER);

    // Move it: the target downloads the base, re-applies the inserts object, then the journal.
    await cluster.stop(ref);
    await second.spawn('op-vector', { id: 'search', node: 'n2' });
    const moved = await counts();
    assert.equal(moved.size, N0 + 5 * PER);
    assert.deepEqual(moved.inserts, stored.inserts);
    for (const i of [0, PER + 3, 2 * PER + 5, 3 * PER + 7, 4 * PER + 11, 5 * PER - 1])
      assert.ok(await findsItself(i), `inserted vector ${i} finds itself after the move`);
    // A retried insert is answered from the record, not applied twice.
    assert.deepEqual(
      await ref.ask({
        type: 'insert',
        rid: 'ins4',
        keys: [N0 + 4 * PER],
        vectors: inserted.subarray(0, DIM),
      }),
      { size: N0 + 5 * PER },
    );

    // The inserts since the base pass INSERTS_SHARE of the index: saved whole; the inserts object goes.
    await insert();
    const compacted = await counts();
    assert.equal(compacted.inserts.length, 0);
    assert.notEqual(compacted.base.digest, saved.base.digest);
    const gone = await getIndexObject(cluster.url, cluster.name, stored.inserts[0]!.name);
    assert.equal(gone.bytes, null);
    // `persist` saves it whole on demand (an inserts object first, then persist).
    await insert();
    await insert();
    assert.equal((await counts()).inserts.length, 1);
    await ref.ask({ type: 'persist' }, { timeoutMs: 30_000 });
    const persisted = await counts();
    assert.deepEqual([persisted.inserts.length, persisted.size], [0, N0 + 8 * PER]);
    assert.ok(await findsItself(8 * PER - 1));
  } finally {
    await second.close();
  }
});

test('restore: a snapshot from before inserts objects; a missing inserts object is VECTOR_INDEX_UNAVAILABLE', async () => {
  const path = join(dir, 'small.usearch');
  const small = new VectorIndex({ dim: DIM, metric: 'cos', maxVectors: 100 });
  await small.add([1, 2], inserted.subarray(0, 2 * DIM));
  await small.save(path);
  await small.close();
  const cfg = config({ index_path: path, max_vectors: 100 });
  const old = {
    config: cfg,
    base: { kind: 'file', path },
    journal: { keys: [3], vectors: Array.from(inserted.subarray(2 * DIM, 3 * DIM)) },
    applied: 2,
    seen: [],
  };
  const s = (await vectorOperator.restore!(old, 'search')) as { index: VectorIndex; inserts: unknown[] };
  assert.equal(s.index.size, 3);
  assert.deepEqual(s.inserts, []);
  await s.index.close();
  await assert.rejects(
    Promise.resolve(
      vectorOperator.restore!(
        { ...old, inserts: [{ name: 'dep.search.inserts.1', digest: 'SHA-256=x', count: 1 }] },
        'search',
      ),
    ),
    (e: { code?: string; message?: string }) =>
      e.code === 'VECTOR_INDEX_UNAVAILABLE' && /missing/.test(e.message!),
  );
});

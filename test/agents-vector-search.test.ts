// A graph that embeds its query and searches an index (text.embed → memory.vector_search) deployed
// on a real nats-server: the encoder is the node's model on compiled kernels, the index a usearch
// file the node loads from its STITCH_VECTOR_DIR, held by the op-vector operator.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  type Coordinator,
  type Deployment,
  encodeText,
  GraphRunner,
  insertVectors,
  partitionIndexName,
  TINY_LLAMA,
  VECTOR_DIR_ENV,
  VectorIndex,
  vectorPartition,
} from '@stitch/agents';
import type { Cluster } from '@stitch/runtime';
import { type AgentCluster, startAgentCluster } from './fixtures/operator-nodes.js';

const CLUSTER = 'vecsearch';
const DOCS = [
  'JetStream keeps messages in streams and values in key-value buckets',
  'the KV cache holds the keys and values of every token seen so far',
  'Gaudi 3 is an accelerator with 128 GB of HBM2e',
  'solar panels turn about a fifth of the light into electricity',
  'a vector index answers nearest-neighbour queries without scanning everything',
  'the planner places each operator where the SLA holds at the lowest cost',
];
const PARTITIONS = 3;
const graph = (dim: number, index = 'docs.usearch', more = '') => `"agent.graph"() ({
  %query = "agent.input"() {name = "query"} : () -> !agent.text
  %vec = "text.embed"(%query) {dim = ${dim} : i64, engine = "tiny-llama", model_params = 15000000 : i64} : (!agent.text) -> tensor<${dim}xf32>
  %hits = "memory.vector_search"(%vec) {dim = ${dim} : i64, index = "${index}", k = 3 : i64, n_vectors = 1000 : i64${more}} : (tensor<${dim}xf32>) -> !agent.json
  "agent.output"(%hits) {name = "answer"} : (!agent.json) -> ()
}) {sla_ms = 60000 : i64, sym_name = "rag"} : () -> ()
`;

const dir = mkdtempSync(join(tmpdir(), 'stitch-vectors-'));
let agents: AgentCluster;
let client: Cluster;
let coordinator: Coordinator;
let d: Deployment;

before(async () => {
  // The index file, made as a user would: the documents through the same encoder, saved by usearch;
  // and the same documents split into one file per partition, each key where vectorPartition says.
  const dim = TINY_LLAMA.dim;
  const whole = new VectorIndex({ dim, metric: 'cos', maxVectors: 1000 });
  const parts = Array.from(
    { length: PARTITIONS },
    () => new VectorIndex({ dim, metric: 'cos', maxVectors: 1000 }),
  );
  for (const [i, doc] of DOCS.entries()) {
    const v = await encodeText(doc, null);
    await whole.add([i], v);
    await parts[vectorPartition(i, PARTITIONS)]!.add([i], v);
  }
  await whole.save(join(dir, 'docs.usearch'));
  for (const [i, part] of parts.entries())
    await part.save(join(dir, partitionIndexName('docs.usearch', i, PARTITIONS)));
  await Promise.all([whole, ...parts].map((index) => index.close()));
  process.env[VECTOR_DIR_ENV] = dir;
  agents = await startAgentCluster(CLUSTER, [
    ['node-cpu', []],
    ['node-cpu2', []],
  ]);
  ({ client, coordinator } = agents);
  d = await coordinator.deploy(graph(TINY_LLAMA.dim), 'rag');
});

after(async () => {
  delete process.env[VECTOR_DIR_ENV];
  await agents?.close();
  rmSync(dir, { recursive: true, force: true });
});

type Hits = { neighbours: { key: number; distance: number }[] };

test('the query is embedded and found in the index the node loaded; the search is the op-vector operator', async () => {
  assert.equal(d.ops.find((o) => o.op === 'memory.vector_search')!.actorType, 'op-vector');
  const runner = new GraphRunner(client, { timeoutMs: 60_000 });
  for (const [i, doc] of DOCS.entries()) {
    const r = await runner.run(d, `q${i}`, { query: doc });
    const { neighbours } = r.answer as Hits;
    assert.equal(neighbours.length, 3);
    assert.equal(neighbours[0]!.key, i, `"${doc}" finds itself first`);
    assert.ok(neighbours[0]!.distance < 1e-4, `distance ${neighbours[0]!.distance}`);
  }
});

test('inserts at run time are searched by the next request', async () => {
  const search = d.ops.find((o) => o.op === 'memory.vector_search')!;
  const ref = client.ref({ type: search.actorType, id: search.actorId });
  const text = 'continuous batching steps many sequences together';
  await ref.ask({ type: 'insert', rid: 'ins-1', keys: [100], vectors: await encodeText(text, null) });
  const r = await new GraphRunner(client, { timeoutMs: 60_000 }).run(d, 'q-new', { query: text });
  assert.equal((r.answer as Hits).neighbours[0]!.key, 100);
});

test('an index of another width is refused at deploy; an encoder of another width fails requests, saying so', async () => {
  await assert.rejects(coordinator.deploy(graph(384), 'rag384'), (e: Error) =>
    /not a usearch index of 384-dimensional/.test(e.message),
  );
  // No file of this name: the index starts empty, and the encoder's width is what does not fit.
  const wrong = await coordinator.deploy(graph(384, 'empty.usearch'), 'rag384e');
  await assert.rejects(
    new GraphRunner(client, { timeoutMs: 60_000 }).run(wrong, 'q-wrong', { query: 'x' }),
    (e: Error) =>
      /makes 128-dimensional vectors but the graph says dim = 384/.test(
        `${e.message} ${(e.cause as Error)?.message}`,
      ),
  );
});

test('a search with partitions = 3: each partition holds its keys on its own actor, and the merged answer equals the whole index’s', async () => {
  const parted = await coordinator.deploy(
    graph(TINY_LLAMA.dim, 'docs.usearch', `, partitions = ${PARTITIONS} : i64`),
    'ragp',
  );
  const searches = parted.ops.filter((o) => o.op === 'memory.vector_search');
  assert.deepEqual(
    searches.map((o) => [o.actorType, o.attrs.partition]),
    [0, 1, 2].map((i) => ['op-vector', i]),
  );
  assert.equal(new Set(searches.map((o) => o.node)).size, 2, 'the partitions are spread over both nodes');
  const sizes = await Promise.all(
    searches.map(
      async (o) =>
        ((await client.ref({ type: o.actorType, id: o.actorId }).ask({ type: 'counts' })) as { size: number })
          .size,
    ),
  );
  assert.deepEqual(
    sizes,
    [0, 1, 2].map((p) => DOCS.filter((_, i) => vectorPartition(i, PARTITIONS) === p).length),
  );
  const runner = new GraphRunner(client, { timeoutMs: 60_000 });
  const rag = await coordinator.deploy(graph(TINY_LLAMA.dim), 'rag-whole');
  for (const [i, doc] of DOCS.entries()) {
    const merged = ((await runner.run(parted, `p${i}`, { query: doc })).answer as Hits).neighbours;
    const one = ((await runner.run(rag, `w${i}`, { query: doc })).answer as Hits).neighbours;
    assert.equal(merged[0]!.key, i, `"${doc}" finds itself first`);
    assert.deepEqual(
      merged.map((n) => n.key),
      one.map((n) => n.key),
    );
  }

  // Inserts go to the partition each key belongs to; the same insert sent again is applied once.
  const keys = [200, 201, 202, 203, 204, 205, 206, 207];
  const texts = keys.map((k) => `inserted note number ${k} about ${k % 2 ? 'batching' : 'placement'}`);
  const vectors = new Float32Array(keys.length * TINY_LLAMA.dim);
  for (const [j, t] of texts.entries()) vectors.set(await encodeText(t, null), j * TINY_LLAMA.dim);
  const insert = { rid: 'bulk-1', keys, vectors };
  const first = await insertVectors(client, parted, insert);
  const again = await insertVectors(client, parted, insert);
  assert.deepEqual(again, first, 'a repeated insert changes nothing');
  assert.deepEqual(
    new Set(first.map((r) => r.partition)),
    new Set(keys.map((k) => vectorPartition(k, PARTITIONS))),
  );
  const after = await Promise.all(
    searches.map(
      async (o) =>
        ((await client.ref({ type: o.actorType, id: o.actorId }).ask({ type: 'counts' })) as { size: number })
          .size,
    ),
  );
  for (const p of [0, 1, 2])
    assert.equal(
      after[p]! - sizes[p]!,
      keys.filter((k) => vectorPartition(k, PARTITIONS) === p).length,
      `partition ${p}`,
    );
  for (const [j, t] of texts.entries()) {
    const r = await runner.run(parted, `ins${j}`, { query: t });
    assert.equal((r.answer as Hits).neighbours[0]!.key, keys[j], t);
  }

  // A key sent straight to a partition that does not hold it is refused, naming the right one.
  const stray = keys.find((k) => vectorPartition(k, PARTITIONS) !== 0)!;
  await assert.rejects(
    client
      .ref({ type: searches[0]!.actorType, id: searches[0]!.actorId })
      .ask({ type: 'insert', rid: 'stray', keys: [stray], vectors: vectors.subarray(0, TINY_LLAMA.dim) }),
    (e: Error) =>
      new RegExp(`key ${stray} belongs to partition ${vectorPartition(stray, PARTITIONS)} of 3`).test(
        e.message,
      ),
  );
  // Keys that are not integers are refused before any routing, by the client and by the operator.
  await assert.rejects(
    insertVectors(client, parted, { rid: 'bad', keys: [1.5], vectors: vectors.subarray(0, TINY_LLAMA.dim) }),
    (e: Error & { code?: string }) =>
      e.code === 'VECTOR_INVALID' && /integers from 0 to 2\^53/.test(e.message),
  );
  await assert.rejects(
    client
      .ref({ type: searches[0]!.actorType, id: searches[0]!.actorId })
      .ask({ type: 'insert', rid: 'bad', keys: ['7'], vectors: vectors.subarray(0, TINY_LLAMA.dim) }),
    (e: Error) => /keys must be an array of integers from 0 to 2\^53/.test(e.message),
  );
});

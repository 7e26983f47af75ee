// The control loop on a real nats-server with in-process nodes (a cpu node and two modelled gaudi3 with
// two slots each): under steady load it changes nothing; a 5× burst scales the decode op out onto the
// other device, and once the burst is over it scales back in. At every step the replicas in the record
// are exactly the activations the nodes host, and every request is answered once with its effect
// (memory.store) applied once.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import {
  type AgentRequest,
  Coordinator,
  closeMemoryConnections,
  type Deployment,
  GraphRunner,
  memoryBucketName,
  OPERATOR_ACTORS,
} from '@stitch/agents';
import { type Cluster, connectCluster, type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';

const CLUSTER = 'rebal';
// The tool agent with 16 output tokens: its decode takes ~70 ms on a modelled gaudi3.
const graph = readFileSync(
  new URL('../packages/ir/samples/tool-agent.llama3-8b.mlir', import.meta.url),
  'utf8',
).replace(/max_tokens = \d+ : i64/, 'max_tokens = 16 : i64');
const request: AgentRequest = { query: 'what is 2+2?', expr: '2+2', search: 'kv cache' };

let nats: EmbeddedNats;
let client: Cluster;
let coordinator: Coordinator;
const nodes: Cluster[] = [];

before(async () => {
  nats = await startEmbeddedNats();
  const log = () => undefined;
  for (const [id, virtual] of [
    ['node-cpu', []],
    ['node-gaudi3-a', ['gaudi3:2']],
    ['node-gaudi3-b', ['gaudi3:2']],
  ] as const) {
    const c = await connectCluster({ nats: nats.url, name: CLUSTER, log });
    await c.startNode({ id, actors: OPERATOR_ACTORS, virtual: [...virtual] });
    nodes.push(c);
  }
  client = await connectCluster({ nats: nats.url, name: CLUSTER, log });
  coordinator = new Coordinator(client, {
    driftEvery: 1_000_000,
    autoscale: {
      policy: 'rebalance',
      intervalMs: 300,
      windowMs: 1500,
      rebalance: { cooldownMs: 1500 },
      retireMs: 300,
    },
  });
  await coordinator.start();
});

after(async () => {
  await coordinator?.stop();
  await closeMemoryConnections();
  await Promise.all(nodes.map((c) => c.close().catch(() => undefined)));
  await client?.close();
  await nats?.stop();
});

/** Activations of op `opId` the nodes host now (its first and its replicas), by actor id. */
async function hosted(d: Deployment, opId: string): Promise<string[]> {
  const op = d.ops.find((o) => o.id === opId)!;
  const all = await Promise.all(nodes.map((c) => client.inspectNode(c.node!.nodeId)));
  return all
    .flatMap((ins) => ins?.actors ?? [])
    .filter((a) => a.type === op.actorType && (a.id === op.actorId || a.id.startsWith(`${op.actorId}-r`)))
    .filter((a) => a.status === 'running')
    .map((a) => a.id)
    .sort();
}

const inRecord = (d: Deployment, opId: string) => {
  const op = d.ops.find((o) => o.id === opId)!;
  return [op.actorId, ...(op.replicas ?? []).map((r) => r.actorId)].sort();
};

async function memoryPuts(): Promise<number> {
  const nc = await connect({ servers: nats.url });
  try {
    const info = await (await jetstreamManager(nc)).streams.info(`KV_${memoryBucketName(CLUSTER)}`);
    return info.state.last_seq;
  } finally {
    await nc.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('steady load changes nothing; a burst scales decode out and back in; no request lost or applied twice', async () => {
  const d0 = await coordinator.deploy(graph);
  const current = () => coordinator.deployment(d0.name)!;
  const decode = d0.ops.find((o) => o.op === 'llm.decode')!;
  assert.equal(decode.classId, 'gaudi3');
  const runner = new GraphRunner(client, { timeoutMs: 60_000 });
  await runner.run(current, 'warm-up', request);
  const putsBefore = await memoryPuts();
  let sent = 0;
  let answered = 0;
  const inFlight: Promise<void>[] = [];
  /** Open-loop load: one request every `everyMs` for `forMs`. */
  const load = async (everyMs: number, forMs: number) => {
    const until = performance.now() + forMs;
    while (performance.now() < until) {
      const rid = `q${sent++}`;
      inFlight.push(runner.run(current, rid, request).then(() => void answered++));
      await sleep(everyMs);
    }
  };
  // Steady: decode busy about a quarter of the time on its one replica, inside the policy's band.
  await load(280, 4000);
  assert.equal(
    coordinator.scalings.length,
    0,
    `steady load changed: ${JSON.stringify(coordinator.scalings)}`,
  );
  // A burst: about 5× the steady rate, far more than one decode can take.
  await load(55, 5000);
  await Promise.all(inFlight);
  const grown = current();
  const out = coordinator.scalings.filter((s) => s.kind === 'scale-out' && s.opId === decode.id);
  assert.ok(out.length >= 1, `decode was not scaled out: ${JSON.stringify(coordinator.scalings)}`);
  assert.ok(inRecord(grown, decode.id).length > 1);
  assert.deepEqual(await hosted(grown, decode.id), inRecord(grown, decode.id));
  // Every added replica runs on a gaudi3 node, and the slots were respected (two per node).
  for (const r of grown.ops.find((o) => o.id === decode.id)!.replicas ?? [])
    assert.match(r.node, /^node-gaudi3-/);
  // Idle: the loop scales back in to one, and the retired replicas stop.
  const deadline = Date.now() + 30_000;
  while (inRecord(current(), decode.id).length > 1 && Date.now() < deadline) {
    await load(1000, 1000);
  }
  assert.equal(inRecord(current(), decode.id).length, 1, JSON.stringify(coordinator.scalings));
  await sleep(600);
  assert.deepEqual(await hosted(current(), decode.id), [decode.actorId]);
  assert.ok(coordinator.scalings.some((s) => s.kind === 'scale-in' && s.opId === decode.id));
  await Promise.all(inFlight);
  assert.equal(answered, sent);
  // memory.store puts two keys per execution: exactly one execution per request.
  assert.equal((await memoryPuts()) - putsBefore, 2 * sent);
  assert.equal(coordinator.metrics().replicasAdded, coordinator.metrics().replicasRemoved);
});

// The control loop on a real nats-server with in-process nodes (a cpu node and two modelled gaudi3 with
// two slots each): under steady load it changes nothing; a 5× burst scales the decode op out onto the
// other device, and once the burst is over it scales back in. At every step the replicas in the record
// are exactly the activations the nodes host, and every request is answered once with its effect
// (memory.store) applied once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Deployment, deploymentsBucketName, watchDeployment } from '@stitch/agents';
import {
  type AgentCluster,
  deploymentLoad,
  startAgentCluster,
  TEST_AUTOSCALE,
  toolAgentGraph,
} from './fixtures/operator-nodes.js';
import { waitUntil } from './fixtures/wait.js';

const CLUSTER = 'rebal';
// The tool agent with 64 output tokens: its decode takes ~280 ms on a modelled gaudi3, far longer
// than the real work the host does for it (4 tokens: this file's nodes run in this process), so even
// a CPU several times oversubscribed does not change what the loop sees.
process.env.STITCH_LLM_MAX_TOKENS = '4';
const graph = toolAgentGraph((m) => m.replace(/max_tokens = \d+ : i64/, 'max_tokens = 64 : i64'));

let agents: AgentCluster;

before(async () => {
  agents = await startAgentCluster(
    CLUSTER,
    [
      ['node-cpu', []],
      ['node-gaudi3-a', ['gaudi3:2']],
      ['node-gaudi3-b', ['gaudi3:2']],
    ],
    { autoscale: TEST_AUTOSCALE },
  );
});

after(() => agents?.close());

/** Activations of op `opId` the nodes host now (its first and its replicas), by actor id. */
async function hosted(d: Deployment, opId: string): Promise<string[]> {
  const op = d.ops.find((o) => o.id === opId)!;
  const all = await Promise.all(agents.nodes.map((c) => agents.client.inspectNode(c.node!.nodeId)));
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('steady load changes nothing; a burst scales decode out and back in; no request lost or applied twice', async () => {
  const { coordinator } = agents;
  const d0 = await coordinator.deploy(graph);
  const current = () => coordinator.deployment(d0.name)!;
  const decode = d0.ops.find((o) => o.op === 'llm.decode')!;
  assert.equal(decode.classId, 'gaudi3');
  // The caller follows the record as one in another process would: through the deployments bucket.
  const traffic = await deploymentLoad(agents, d0.name);
  const { watch, counts } = traffic;
  const load = traffic.run;
  // Steady: decode busy about a quarter of the time on its one replica, inside the policy's band.
  await load(1100, 5000);
  assert.equal(
    coordinator.scalings.length,
    0,
    `steady load changed: ${JSON.stringify(coordinator.scalings)}`,
  );
  // A burst: about 5× the steady rate, far more than one decode can take. While it lasts, the
  // replicas in the record become exactly the activations the nodes host (a replica is hosted a
  // moment before the record names it, so the two are compared until they agree).
  const burst = load(220, 4000);
  let agreed: string[] | undefined;
  const until = Date.now() + 30_000;
  while (!agreed && Date.now() < until) {
    const want = inRecord(current(), decode.id);
    if (want.length > 1 && JSON.stringify(await hosted(current(), decode.id)) === JSON.stringify(want))
      agreed = want;
    else await sleep(50);
  }
  assert.ok(agreed, `decode was not scaled out: ${JSON.stringify(coordinator.scalings)}`);
  const grown = current();
  // Every added replica runs on a gaudi3 node: the only class with the decode's device.
  for (const r of grown.ops.find((o) => o.id === decode.id)!.replicas ?? [])
    assert.match(r.node, /^node-gaudi3-/);
  await burst;
  await traffic.settled();
  // Idle: the loop scales back in to one, and the retired replicas stop.
  const deadline = Date.now() + 30_000;
  while (inRecord(current(), decode.id).length > 1 && Date.now() < deadline) {
    await load(2000, 1000);
  }
  assert.equal(inRecord(current(), decode.id).length, 1, JSON.stringify(coordinator.scalings));
  await sleep(600);
  assert.deepEqual(await hosted(current(), decode.id), [decode.actorId]);
  assert.ok(coordinator.scalings.some((s) => s.kind === 'scale-in' && s.opId === decode.id));
  await traffic.settled();
  assert.equal(counts.answered, counts.sent);
  // Exactly one memory.store execution per request.
  assert.equal(await traffic.executions(), counts.sent);
  assert.equal(coordinator.metrics().replicasAdded, coordinator.metrics().replicasRemoved);
  // The watch saw the record the coordinator keeps now.
  assert.equal(watch.current().version, current().version);
  watch.close();
});

test('a deployment watch ignores what is not a record of it, and names a deployment that does not exist', async () => {
  const { client, coordinator } = agents;
  const d = coordinator.deployment('tool_agent')!;
  const watch = await watchDeployment(client, d.name);
  const kv = await client.kv(deploymentsBucketName(CLUSTER));
  // One at a time: a watch that restarts under load resumes from the newest value, and may skip one
  // written just before it.
  await kv.put(d.name, JSON.stringify({ name: d.name, ops: 'not a list' }));
  await waitUntil(() => watch.ignored === 1, 5000, 20);
  await kv.put(d.name, '{ not json');
  await waitUntil(() => watch.ignored === 2, 5000, 20);
  await sleep(200);
  assert.equal(watch.ignored, 2, 'each value counted once');
  assert.equal(watch.current().version, d.version);
  watch.close();
  await kv.put(d.name, JSON.stringify(d));
  await assert.rejects(watchDeployment(client, 'no_such_agent', 300), { code: 'DEPLOYMENT_UNKNOWN' });
});

// The control loop and a node that sheds load: the graph's gaudi3 ops run on the class's only node,
// which sheds everything (its heap bound is a ten-thousandth of the heap), so each request is refused
// (Overloaded, nothing ran) and no replica can go anywhere. Once a calm gaudi3 node joins, the loop
// reads the refusals as replicas that do not serve and adds one there for each such op; the ops stay
// where they are (shedding is the node's own defence) and callers trade each refusal for the replica
// that takes it. In-process nodes on a real nats-server; the gaudi3 devices are modelled.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { GraphRunner, watchDeployment } from '@stitch/agents';
import {
  type AgentCluster,
  startAgentCluster,
  startOperatorNodes,
  TEST_AUTOSCALE,
  TOOL_AGENT_REQUEST,
  toolAgentGraph,
} from './fixtures/operator-nodes.js';
import { waitUntil } from './fixtures/wait.js';

const CLUSTER = 'shedreplicas';
process.env.STITCH_LLM_MAX_TOKENS = '4';
const graph = toolAgentGraph((m) => m.replace(/max_tokens = \d+ : i64/, 'max_tokens = 16 : i64'));

let agents: AgentCluster;

before(async () => {
  agents = await startAgentCluster(
    CLUSTER,
    [
      ['node-cpu', []],
      ['node-gaudi3-shed', ['gaudi3:2'], { heapFraction: 1e-4 }],
    ],
    { autoscale: TEST_AUTOSCALE },
  );
});

after(() => agents?.close());

test('ops whose only replica sheds get a replica on a node that joins with room; every request is then answered once', async () => {
  const { coordinator } = agents;
  const d0 = await coordinator.deploy(graph);
  const onShed = d0.ops.filter((o) => o.node === 'node-gaudi3-shed');
  assert.ok(
    onShed.some((o) => o.op === 'llm.decode'),
    `the class's only node hosts decode: ${JSON.stringify(d0.ops.map((o) => [o.id, o.node]))}`,
  );
  const watch = await watchDeployment(agents.client, d0.name);
  const runner = new GraphRunner(agents.client, { timeoutMs: 60_000 });
  const counts = { sent: 0, answered: 0, refused: 0 };
  const ask = async () => {
    try {
      await runner.run(watch.current, `q${counts.sent++}`, TOOL_AGENT_REQUEST);
      counts.answered++;
    } catch (err) {
      // Refused before any op ran (Overloaded, from the shedding node), and said so.
      assert.match(String(err), /node node-gaudi3-shed is shedding load/);
      counts.refused++;
    }
  };
  const before = await agents.storedAnswers();
  // With no other node of the class, nothing helps: requests are refused, no replica is added.
  const quietUntil = Date.now() + 3000;
  while (Date.now() < quietUntil) await Promise.all([ask(), new Promise((r) => setTimeout(r, 150))]);
  assert.equal(counts.answered, 0);
  assert.ok(counts.refused > 0);
  assert.equal(coordinator.scalings.length, 0, JSON.stringify(coordinator.scalings));

  const calm = await startOperatorNodes(agents.nats.url, CLUSTER, [['node-gaudi3-calm', ['gaudi3:2']]]);
  try {
    const served = (op: { replicas?: { node: string }[] }) =>
      (op.replicas ?? []).some((r) => r.node === 'node-gaudi3-calm');
    const allServed = () => {
      const now = coordinator.deployment(d0.name)!;
      return onShed.every((o) => served(now.ops.find((x) => x.id === o.id)!));
    };
    const until = Date.now() + 30_000;
    while (!allServed() && Date.now() < until)
      await Promise.all([ask(), new Promise((r) => setTimeout(r, 150))]);
    assert.ok(allServed(), `replicas on the calm node: ${JSON.stringify(coordinator.scalings)}`);
    const record = coordinator.deployment(d0.name)!;
    for (const o of onShed) {
      const now = record.ops.find((x) => x.id === o.id)!;
      assert.equal(now.node, 'node-gaudi3-shed', `${o.id} stays where it runs`);
      assert.equal(now.replicas?.length, 1, `${o.id}: one replica stands in for the refusing one`);
    }
    const outs = coordinator.scalings.filter((s) => s.kind === 'scale-out');
    assert.ok(outs.length >= onShed.length);
    for (const s of outs) {
      assert.deepEqual(s.nodes, ['node-gaudi3-calm']);
      assert.match(s.reason, /0 serving replica\(s\) \(1 more refused most requests: a node shedding load\)/);
    }
    // Callers follow the record: every request is answered now (a refusal is traded for the replica).
    await waitUntil(() => watch.current().version === record.version, 10_000);
    const answeredBefore = counts.answered;
    for (let i = 0; i < 8; i++) {
      const r = await runner.run(watch.current, `after${i}`, TOOL_AGENT_REQUEST);
      assert.notEqual(r.answer, undefined, `request ${i} answered`);
    }
    // Each request answered ran memory.store once; a refused one ran nothing.
    assert.equal((await agents.storedAnswers()) - before, counts.answered + 8);
    assert.ok(counts.answered >= answeredBefore);
    // Nothing flaps: with a replica that serves, the loop leaves the op alone.
    const settled = coordinator.scalings.length;
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(coordinator.scalings.length, settled, JSON.stringify(coordinator.scalings.slice(settled)));
  } finally {
    watch.close();
    await Promise.all([...calm.values()].map((c) => c.close()));
  }
});

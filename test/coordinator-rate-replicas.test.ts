// A graph deployed for a rate (rate_rps) whose decode keeps more of its class busy than one node may
// hold: the first plan gives decode a replica on the class's other node, the coordinator starts both
// before the record names them, and callers spread requests over both. The nodes are in-process, on
// a real nats-server; the gaudi3 devices are modelled, one slot each.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { GraphRunner, OPERATOR_ACTORS } from '@stitch/agents';
import { connectCluster } from '@stitch/runtime';
import {
  type AgentCluster,
  startAgentCluster,
  TOOL_AGENT_REQUEST,
  toolAgentGraph,
} from './fixtures/operator-nodes.js';

const CLUSTER = 'ratereplicas';
process.env.STITCH_LLM_MAX_TOKENS = '4';
// Decode of 64 tokens takes ≈280 ms on a modelled gaudi3: at 4 requests/s it keeps 1.1 slots busy,
// more than the 80 % of one gaudi3:1 node a plan may fill. The search's latency is cut to 20 ms so
// that the cpu class holds its share on any core count.
const graph = toolAgentGraph((m) =>
  m
    .replace(/max_tokens = \d+ : i64/, 'max_tokens = 64 : i64')
    .replace('latency_ms = 350', 'latency_ms = 20')
    .replace('sla_ms = 5000 : i64,', 'sla_ms = 5000 : i64, rate_rps = 4.0 : f64,'),
);

let agents: AgentCluster;

before(async () => {
  agents = await startAgentCluster(CLUSTER, [
    ['node-cpu', []],
    ['node-gaudi3-a', ['gaudi3:1']],
    ['node-gaudi3-b', ['gaudi3:1']],
  ]);
});

after(() => agents?.close());

test('an op busier than one node at the planned rate starts with a replica on another node, and both serve', async () => {
  const d = await agents.coordinator.deploy(graph);
  assert.ok(
    d.notes.some((n) => n.startsWith('sized for 4 requests/s')),
    d.notes.join('; '),
  );
  const decode = d.ops.find((o) => o.op === 'llm.decode')!;
  assert.equal(decode.classId, 'gaudi3');
  assert.equal(decode.replicas?.length, 1, JSON.stringify(decode));
  const nodes = [decode.node, decode.replicas![0]!.node].sort();
  assert.deepEqual(nodes, ['node-gaudi3-a', 'node-gaudi3-b']);
  // No other op is busy enough to need one.
  assert.deepEqual(
    d.ops.filter((o) => o.replicas).map((o) => o.id),
    [decode.id],
  );
  // Both activations run where the record says, before any caller asks.
  for (const r of [{ actorId: decode.actorId, node: decode.node }, ...decode.replicas!]) {
    const ins = await agents.client.inspectNode(r.node);
    const a = ins?.actors.find((x) => x.type === decode.actorType && x.id === r.actorId);
    assert.equal(a?.status, 'running', `${r.actorId} on ${r.node}`);
  }
  const before = await agents.storedAnswers();
  const runner = new GraphRunner(agents.client, { timeoutMs: 60_000 });
  const n = 12;
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) => runner.run(d, `rr${i}`, TOOL_AGENT_REQUEST)),
  );
  assert.equal(results.length, n);
  assert.equal((await agents.storedAnswers()) - before, n, 'each request stored its answer once');
  // Callers spread their concurrent asks over both activations. What each processed is the requests'
  // decodes: configure is a set-up turn, which the mailbox's counters leave out.
  const runs = await Promise.all(
    [{ actorId: decode.actorId, node: decode.node }, ...decode.replicas!].map(async (r) => {
      const ins = await agents.client.inspectNode(r.node);
      return ins!.actors.find((x) => x.id === r.actorId)!.mailbox.processed;
    }),
  );
  for (const r of runs) assert.ok(r > 0, `decode runs per activation: ${runs}`);
  // At least one per request (a timed-out ask sent again is answered from the record, not run again).
  assert.ok(runs[0]! + runs[1]! >= n, `${runs}`);
});

test('a replica that refuses an ask (its node sheds load) is traded at once for one that takes it: every request is answered', async () => {
  const d = agents.coordinator.deployment('tool_agent') ?? (await agents.coordinator.deploy(graph));
  const decode = d.ops.find((o) => o.op === 'llm.decode')!;
  // A third decode activation on a node that sheds everything (its bound is a ten-thousandth of the
  // heap), listed first: callers ask it as often as the others, and it refuses each fast ask.
  const shedding = await connectCluster({ nats: agents.nats.url, name: CLUSTER, log: () => undefined });
  try {
    await shedding.startNode({
      id: 'node-shed',
      actors: OPERATOR_ACTORS,
      virtual: ['gaudi3:1'],
      shedding: { heapFraction: 1e-4 },
    });
    const def = OPERATOR_ACTORS.find((a) => a.type === decode.actorType)!;
    const refusing = `${decode.actorId}-shed`;
    await agents.client.spawn(def, { id: refusing, node: 'node-shed' });
    const replicas = [{ actorId: refusing, node: 'node-shed' }, ...(decode.replicas ?? [])];
    const withRefusing = { ...d, ops: d.ops.map((o) => (o.id === decode.id ? { ...o, replicas } : o)) };
    const before = await agents.storedAnswers();
    // No hold: each pick is a fair draw among the three, refused lately or not.
    const runner = new GraphRunner(agents.client, { timeoutMs: 60_000, refusedHoldMs: 0 });
    const n = 32;
    const results = [];
    // One at a time: each pick is a fair draw among the three, so the refusing one is asked.
    for (let i = 0; i < n; i++) results.push(await runner.run(withRefusing, `shed${i}`, TOOL_AGENT_REQUEST));
    assert.equal(results.length, n, 'every request answered');
    assert.equal((await agents.storedAnswers()) - before, n, 'each request stored its answer once');
    const shed = (await agents.client.inspectNode('node-shed'))?.shedding?.shed ?? 0;
    assert.ok(shed > 0, 'the shedding replica was asked and refused');
    // Each refused ask went to another replica at once (the report counts it as a re-send).
    assert.ok(results.some((r) => r.retries > 0));
    // With a hold, a runner passes over a replica that refused it: one refused round trip in all,
    // not one in three requests.
    const held = new GraphRunner(agents.client, { timeoutMs: 60_000, refusedHoldMs: 60_000 });
    const heldResults = [];
    for (let i = 0; i < 16; i++)
      heldResults.push(await held.run(withRefusing, `held${i}`, TOOL_AGENT_REQUEST));
    const shedAfter = (await agents.client.inspectNode('node-shed'))?.shedding?.shed ?? 0;
    const heldRetries = heldResults.reduce((sum, r) => sum + r.retries, 0);
    assert.ok(shedAfter - shed <= 1, `refused ${shedAfter - shed} times with a hold`);
    assert.equal(heldRetries, shedAfter - shed);
    assert.throws(() => new GraphRunner(agents.client, { refusedHoldMs: -1 }), RangeError);
  } finally {
    await shedding.close();
  }
});

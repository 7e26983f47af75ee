// The control loop moves an operator between classes on a real nats-server with in-process nodes: a
// cpu node, one modelled gaudi3 with one slot and one modelled h100 with four. The plan puts decode on
// gaudi3 (a request costs least there); a burst fills gaudi3's one slot, so the loop moves decode live
// to h100, which has room; once the burst is over it moves it back to gaudi3, the cheaper class. Every
// request is answered once with its effect (memory.store) applied once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  type AgentCluster,
  deploymentLoad,
  startAgentCluster,
  TEST_AUTOSCALE,
  toolAgentGraph,
} from './fixtures/operator-nodes.js';

// 64 modelled output tokens (~280 ms of decode on gaudi3), 4 real ones: what the loop sees is the
// modelled device, not this host's CPU (see coordinator-rebalance.test.ts).
process.env.STITCH_LLM_MAX_TOKENS = '4';
const graph = toolAgentGraph((m) => m.replace(/max_tokens = \d+ : i64/, 'max_tokens = 64 : i64'));

let agents: AgentCluster;
const log: string[] = [];

before(async () => {
  agents = await startAgentCluster(
    'classmove',
    [
      ['node-cpu', []],
      ['node-gaudi3', ['gaudi3:1']],
      ['node-h100', ['h100:4']],
    ],
    {
      log: (line) => log.push(line),
      autoscale: TEST_AUTOSCALE,
    },
  );
});

after(() => agents?.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a burst that fills its class moves decode live to a class with room; idle, it moves back to the cheaper one', async () => {
  const { client, coordinator } = agents;
  const d0 = await coordinator.deploy(graph);
  const current = () => coordinator.deployment(d0.name)!;
  const decode = d0.ops.find((o) => o.op === 'llm.decode')!;
  assert.equal(decode.classId, 'gaudi3', `the plan put decode on ${decode.classId}`);
  const traffic = await deploymentLoad(agents, d0.name);
  const { watch, counts } = traffic;
  const load = traffic.run;
  const decodeClass = () => current().ops.find((o) => o.id === decode.id)!.classId;
  const moves = () => coordinator.scalings.filter((s) => s.kind === 'move' && s.opId === decode.id);

  // A burst far beyond one gaudi3 slot: decode moves to h100 while it serves.
  const burst = load(220, 5000);
  const until = Date.now() + 30_000;
  // The record names the new class as the move starts; the scaling is recorded once it is done.
  while (moves().length === 0 && Date.now() < until) await sleep(50);
  assert.equal(decodeClass(), 'h100', `decode did not move: ${log.join('\n')}`);
  const [out] = moves();
  assert.equal(out?.classId, 'gaudi3');
  assert.equal(out?.toClassId, 'h100');
  assert.match(out!.reason, /class gaudi3 is full, h100 has room/);
  assert.equal((await client.locate({ type: decode.actorType, id: decode.actorId }))?.node, 'node-h100');
  await burst;
  await traffic.settled();

  // Idle: once the cooldown has passed (and any replica added on h100 is scaled in), back to gaudi3.
  const deadline = Date.now() + 30_000;
  while (moves().length < 2 && Date.now() < deadline) await load(2000, 1000);
  assert.equal(decodeClass(), 'gaudi3', `decode did not move back: ${log.join('\n')}`);
  const back = moves().at(-1)!;
  assert.equal(back.toClassId, 'gaudi3');
  assert.match(back.reason, /a request costs \d+ % of this on gaudi3/);
  assert.equal((await client.locate({ type: decode.actorType, id: decode.actorId }))?.node, 'node-gaudi3');
  // The moves are migrations too, each carried out live.
  assert.ok(coordinator.metrics().operatorsMovedLive >= 2);

  await traffic.settled();
  assert.equal(counts.answered, counts.sent);
  // Exactly one memory.store execution per request.
  assert.equal(await traffic.executions(), counts.sent);
  assert.equal(watch.current().version, current().version);
  watch.close();
});

// A drained node whose operators can only go to one other node: more of them than a node takes
// migrations at once (8). The coordinator feeds the target a few at a time, so every one moves live
// (a refused live move used to fall back to a stop and a restart).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { Cluster } from '@stitch/runtime';
import { type AgentCluster, startAgentCluster, startOperatorNodes } from './fixtures/operator-nodes.js';
import { waitUntil } from './fixtures/wait.js';

const SAMPLE = new URL('../packages/ir/samples/tool-agent.tiny-llama.mlir', import.meta.url);

let agents: AgentCluster;
let second: Cluster | undefined;
const log: string[] = [];

before(async () => {
  agents = await startAgentCluster('onetarget', [['first', []]], { log: (line) => log.push(line) });
});

after(async () => {
  await second?.close();
  await agents?.close();
});

test('eleven operators drained into the one other node all move live', async () => {
  const { coordinator } = agents;
  const d = await coordinator.deploy(readFileSync(SAMPLE, 'utf8'));
  assert.ok(d.ops.length > 8, `${d.ops.length} operators`);
  assert.ok(d.ops.every((o) => o.node === 'first'));
  second = (await startOperatorNodes(agents.nats.url, 'onetarget', [['second', []]])).get('second');
  const left = await agents.nodes[0]!.node!.drain(60_000);
  assert.equal(left, 0);
  await waitUntil(() => coordinator.migrations.some((m) => m.reason.includes('first is draining')));
  const moved = coordinator.migrations.flatMap((m) => m.moved);
  assert.deepEqual(moved.map((m) => m.opId).sort(), d.ops.map((o) => o.id).sort());
  for (const m of moved) assert.equal(m.phases?.how, 'live', `${m.opId} moved live`);
  assert.ok(coordinator.deployment(d.name)!.ops.every((o) => o.node === 'second'));
  // The coordinator took the drain on, and released it once nothing of its own was left there.
  await waitUntil(() => log.some((l) => l.startsWith('released the drain of first')));
  const taken = log.findIndex((l) => l.startsWith('took the drain of first on'));
  const moves = log.findLastIndex((l) => l.startsWith('migrated '));
  const released = log.findIndex((l) => l.startsWith('released the drain of first'));
  assert.ok(taken >= 0 && taken < moves && moves < released, log.join('\n'));
});

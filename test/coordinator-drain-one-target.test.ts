// A drained node whose operators can only go to one other node: more of them than a node takes
// migrations at once (8). The coordinator feeds the target a few at a time, so every one moves live
// (a refused live move used to fall back to a stop and a restart).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { Coordinator, closeMemoryConnections } from '@stitch/agents';
import { type Cluster, connectCluster, type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';
import { startOperatorNodes } from './fixtures/operator-nodes.js';
import { waitUntil } from './fixtures/wait.js';

const CLUSTER = 'onetarget';
const sample = readFileSync(
  new URL('../packages/ir/samples/tool-agent.tiny-llama.mlir', import.meta.url),
  'utf8',
);

let nats: EmbeddedNats;
let client: Cluster;
let coordinator: Coordinator;
const nodes: Cluster[] = [];

before(async () => {
  nats = await startEmbeddedNats();
  client = await connectCluster({ nats: nats.url, name: CLUSTER, log: () => undefined });
  coordinator = new Coordinator(client, { driftEvery: 1_000_000 });
  await coordinator.start();
});

after(async () => {
  await coordinator?.stop();
  await closeMemoryConnections();
  await Promise.all(nodes.map((c) => c.close().catch(() => undefined)));
  await client?.close();
  await nats?.stop();
});

test('eleven operators drained into the one other node all move live', async () => {
  for (const c of (await startOperatorNodes(nats.url, CLUSTER, [['first', []]])).values()) nodes.push(c);
  const d = await coordinator.deploy(sample);
  assert.ok(d.ops.length > 8, `${d.ops.length} operators`);
  assert.ok(d.ops.every((o) => o.node === 'first'));
  for (const c of (await startOperatorNodes(nats.url, CLUSTER, [['second', []]])).values()) nodes.push(c);
  const left = await nodes[0]!.node!.drain(60_000);
  assert.equal(left, 0);
  await waitUntil(() => coordinator.migrations.some((m) => m.reason.includes('first is draining')));
  const moved = coordinator.migrations.flatMap((m) => m.moved);
  assert.deepEqual(moved.map((m) => m.opId).sort(), d.ops.map((o) => o.id).sort());
  for (const m of moved) assert.equal(m.phases?.how, 'live', `${m.opId} moved live`);
  assert.ok(coordinator.deployment(d.name)!.ops.every((o) => o.node === 'second'));
});

// Membership events travel on a plain subject that any client of the bus can publish on. The
// coordinator must confirm them with the nodes bucket before moving operators: a forged `dead` or
// `leave` for a node that still heartbeats, or a `join` for a node with no capability record, moves
// nothing. Each forged event is followed by a real change whose effect the test waits for, so the
// forged one had every chance to act first.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  type AgentRequest,
  Coordinator,
  closeMemoryConnections,
  GraphRunner,
  loadDeployment,
  OPERATOR_ACTORS,
} from '@stitch/agents';
import { type Cluster, connectCluster, type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';
import { waitUntil } from './fixtures/wait.js';

const CLUSTER = 'forged';
const SUBJECT = `stitch.${CLUSTER}.membership`;
const sample = readFileSync(
  new URL('../packages/ir/samples/tool-agent.tiny-llama.mlir', import.meta.url),
  'utf8',
);
const request: AgentRequest = { query: 'what is 2+2?', expr: '2+2', search: 'kv cache' };

describe('coordinator: forged membership events', () => {
  let nats: EmbeddedNats;
  let client: Cluster;
  let coordinator: Coordinator;
  let raw: NatsConnection;
  const nodes = new Map<string, Cluster>();

  before(async () => {
    nats = await startEmbeddedNats();
    const log = () => undefined;
    // Two cpu nodes (one class: a cpu node leaving moves its operators to the other and nothing
    // else) and a virtual h100 that hosts the modelled operators.
    for (const [id, virtual] of [
      ['cpu-a', []],
      ['cpu-b', []],
      ['h100', ['h100']],
    ] as const) {
      const c = await connectCluster({ nats: nats.url, name: CLUSTER, log });
      await c.startNode({ id: `node-${id}`, actors: OPERATOR_ACTORS, virtual: [...virtual] });
      nodes.set(`node-${id}`, c);
    }
    client = await connectCluster({ nats: nats.url, name: CLUSTER, log });
    coordinator = new Coordinator(client, { driftEvery: 1_000_000 });
    await coordinator.start();
    raw = await connect({ servers: nats.url });
  });

  after(async () => {
    await coordinator?.stop();
    await raw?.close();
    await closeMemoryConnections();
    await Promise.all([...nodes.values()].map((c) => c.close().catch(() => undefined)));
    await client?.close();
    await nats?.stop();
  });

  async function forge(kind: 'join' | 'leave' | 'dead', nodeId: string, revision: number) {
    const ev = {
      kind,
      nodeId,
      revision,
      at: Date.now(),
      ...(kind === 'dead' ? { silentForMs: 60_000 } : {}),
    };
    raw.publish(SUBJECT, JSON.stringify(ev));
    // Once the server has it, it is ahead of anything published later on the subject.
    await raw.flush();
  }

  async function requestsSucceed(prefix: string) {
    const runner = new GraphRunner(client);
    for (let i = 0; i < 3; i++) {
      const r = await runner.run(coordinator.deployment('tool_agent')!, `${prefix}${i}`, request);
      assert.equal(r.rid, `${prefix}${i}`);
      assert.ok(r.answer !== undefined && r.answer !== null, 'the request has an answer');
    }
  }

  test('a forged dead or leave for a healthy node moves none of its operators', async () => {
    const d = await coordinator.deploy(sample);
    await requestsSucceed('a');
    const victim = d.ops.find((o) => o.modelled)?.node;
    assert.ok(victim, 'the plan uses the virtual h100');
    const onVictim = d.ops.filter((o) => o.node === victim).map((o) => o.id);
    const cpuHost = d.ops.find((o) => o.node !== victim)?.node;
    assert.ok(cpuHost, 'an operator runs on a cpu node');
    const ignored = coordinator.ignoredMembership;

    await forge('dead', victim, 1_000_001);
    await forge('leave', victim, 1_000_002);
    // The real change: the cpu node hosting operators leaves; its move is queued after anything the
    // forged events would have started.
    await nodes.get(cpuHost)!.close();
    nodes.delete(cpuHost);
    await waitUntil(() => coordinator.migrations.some((m) => m.reason.includes(`${cpuHost} left`)));

    for (const m of coordinator.migrations) {
      assert.ok(!m.reason.includes(victim), `no migration for the forged event: ${m.reason}`);
      assert.ok(
        m.moved.every((x) => x.from !== victim),
        'no operator moved off the healthy node',
      );
    }
    const now = coordinator.deployment('tool_agent')!;
    assert.deepEqual(
      now.ops.filter((o) => o.node === victim).map((o) => o.id),
      onVictim,
    );
    assert.ok(
      now.ops.every((o) => o.node !== cpuHost),
      'the real leave was handled',
    );
    const stored = await loadDeployment(client, 'tool_agent');
    assert.deepEqual(
      stored?.ops.map((o) => [o.id, o.node]),
      now.ops.map((o) => [o.id, o.node]),
    );
    for (const o of now.ops.filter((x) => x.node === victim)) {
      const where = await client.locate({ type: o.actorType, id: o.actorId });
      assert.equal(where?.node, victim, `${o.id} still runs on ${victim}`);
    }
    await requestsSucceed('b');
    assert.ok(
      coordinator.ignoredMembership >= ignored + 2,
      `both forged events counted (${coordinator.ignoredMembership - ignored})`,
    );
  });

  test('a forged join or death of an unknown node changes nothing', async () => {
    const before = coordinator.deployment('tool_agent')!;
    const migrations = coordinator.migrations.length;
    const ignored = coordinator.ignoredMembership;
    await forge('join', 'node-ghost', 7);
    await forge('dead', 'node-ghost', 8);
    await waitUntil(() => coordinator.ignoredMembership >= ignored + 1);
    // A real join after the forged ones: the coordinator has handled the forged events once it
    // re-planned for this one (a cpu node of the class already in use: nothing needs to move).
    const c = await connectCluster({ nats: nats.url, name: CLUSTER, log: () => undefined });
    await c.startNode({ id: 'node-cpu-c', actors: OPERATOR_ACTORS });
    nodes.set('node-cpu-c', c);
    await coordinator.replan('tool_agent', 'probe after the forged join');
    assert.equal(coordinator.migrations.length, migrations);
    assert.ok(coordinator.migrations.every((m) => !m.reason.includes('node-ghost')));
    const now = coordinator.deployment('tool_agent')!;
    assert.deepEqual(
      now.ops.map((o) => [o.id, o.node]),
      before.ops.map((o) => [o.id, o.node]),
    );
    await requestsSucceed('c');
  });
});

// The claim is that a migration happens, not how soon: each re-plan may spend up to 5 s in the MILP.

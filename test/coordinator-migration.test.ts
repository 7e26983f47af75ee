// The coordinator places the tool agent on in-process nodes (cpu and modelled accelerators) of a real
// nats-server and moves operators while requests flow: on a node leaving, on a re-plan between live
// nodes, and off a draining node. Counts of applied effects must match the requests exactly.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { connect } from '@nats-io/transport-node';
import {
  type AgentRequest,
  answersBucket,
  Coordinator,
  closeMemoryConnections,
  type Deployment,
  GraphRunner,
  OPERATOR_ACTORS,
  type RequestResult,
} from '@stitch/agents';
import { type Cluster, connectCluster, type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';
import { startOperatorNodes } from './fixtures/operator-nodes.js';
import { waitUntil } from './fixtures/wait.js';

const CLUSTER = 'migr';
const sample = readFileSync(
  new URL('../packages/ir/samples/tool-agent.tiny-llama.mlir', import.meta.url),
  'utf8',
);
const request: AgentRequest = { query: 'what is 2+2?', expr: '2+2', search: 'kv cache' };

describe('coordinator migration', () => {
  let nats: EmbeddedNats;
  let client: Cluster;
  let coordinator: Coordinator;
  const nodes = new Map<string, Cluster>();

  before(async () => {
    nats = await startEmbeddedNats();
    const log = () => undefined;
    const started = await startOperatorNodes(nats.url, CLUSTER, [
      ['node-cpu', []],
      ['node-h100', ['h100']],
      ['node-gaudi3', ['gaudi3']],
    ]);
    for (const [id, c] of started) nodes.set(id, c);
    client = await connectCluster({ nats: nats.url, name: CLUSTER, log });
    // Drift re-plans are driven by hand below, so the leave is the only automatic move.
    coordinator = new Coordinator(client, { driftEvery: 1_000_000 });
    await coordinator.start();
  });

  after(async () => {
    await coordinator?.stop();
    await closeMemoryConnections();
    await Promise.all([...nodes.values()].map((c) => c.close().catch(() => undefined)));
    await client?.close();
    await nats?.stop();
  });

  /** Runs `n` requests two at a time; `during` runs once the first `at` have completed. */
  async function flow(
    n: number,
    at: number,
    during: () => Promise<unknown>,
    prefix: string,
    mode: 'fast' | 'durable' = 'fast',
  ) {
    const runner = new GraphRunner(client, { mode });
    const results: RequestResult[] = [];
    let next = 0;
    let fired: Promise<unknown> | undefined;
    const worker = async () => {
      while (next < n) {
        const rid = `${prefix}${next++}`;
        const d = coordinator.deployment('tool_agent') as Deployment;
        results.push(await runner.run(d, rid, request));
        if (results.length === at) fired = during();
      }
    };
    await Promise.all([worker(), worker()]);
    await fired;
    return results;
  }

  async function applied(d: Deployment): Promise<number[]> {
    return Promise.all(
      d.ops.map(async (o) => {
        const c = await client
          .ref({ type: o.actorType, id: o.actorId })
          .ask({ type: 'counts' }, { retries: 3 });
        return (c as { applied: number }).applied;
      }),
    );
  }

  test('a node leaving: its operators restore elsewhere, no request lost or applied twice', async () => {
    const d = await coordinator.deploy(sample);
    const victim = d.ops.find((o) => o.modelled)?.node;
    assert.ok(victim, 'the plan uses a modelled class');
    const results = await flow(12, 3, () => nodes.get(victim)!.close(), 'a');
    assert.equal(results.length, 12);
    await waitUntil(() => coordinator.migrations.some((m) => m.reason.includes(victim)));
    const now = coordinator.deployment('tool_agent')!;
    assert.ok(now.ops.every((o) => o.node !== victim));
    const ev = coordinator.migrations.find((m) => m.reason.includes(victim))!;
    // Each move says where its time went; the counters agree with the events.
    for (const m of ev.moved) assert.ok(m.phases && m.phases.spawnMs >= 0 && m.phases.configureMs >= 0);
    const metrics = coordinator.metrics();
    assert.equal(metrics.migrations, coordinator.migrations.length);
    assert.ok(metrics.operatorsMoved >= ev.moved.length);
    assert.equal(metrics.leading, true);
    assert.deepEqual(
      ev.moved.map((m) => m.opId).sort(),
      d.ops
        .filter((o) => o.node === victim)
        .map((o) => o.id)
        .sort(),
    );
    assert.deepEqual(
      await applied(now),
      now.ops.map(() => 12),
    );
    const kv = await client.kv(answersBucket(CLUSTER).name);
    const keys: string[] = [];
    for await (const k of await kv.keys('tool_agent.>')) keys.push(k);
    assert.equal(keys.length, 12);
  });

  test('a re-plan between live nodes moves the operators live', async () => {
    // The LLM ops carry a "gpu" placement hint, so a drift can only send them to another accelerator.
    const a100 = await connectCluster({ nats: nats.url, name: CLUSTER, log: () => undefined });
    await a100.startNode({ id: 'node-a100', actors: OPERATOR_ACTORS, virtual: ['a100-80g'] });
    nodes.set('node-a100', a100);
    let ev: Awaited<ReturnType<Coordinator['replan']>>;
    const results = await flow(
      8,
      2,
      async () => {
        // Make the classes the LLM ops run on look 20× slower than the model says. Re-plans are
        // serialised: if a100's join moved them first, the next round makes a100 the slow one.
        for (let round = 0; round < 3 && !ev; round++) {
          const prev = coordinator.deployment('tool_agent')!;
          for (const o of prev.ops.filter((x) => x.modelled))
            coordinator.correction.observe(o.kind, o.classId, 1, 20);
          ev = await coordinator.replan('tool_agent', 'test drift');
        }
      },
      'b',
    );
    assert.equal(results.length, 8);
    assert.ok(ev, 'the re-plan moved something');
    for (const m of ev.moved) {
      assert.notEqual(m.from, m.to);
      assert.equal(m.phases?.how, 'live', `${m.opId} moved live`);
    }
    assert.ok(coordinator.metrics().operatorsMovedLive >= ev.moved.length);
    const now = coordinator.deployment('tool_agent')!;
    assert.deepEqual(
      await applied(now),
      now.ops.map(() => 20),
    );
  });

  test('durable asks: the operators of a leaving node pick up their stored messages elsewhere', async () => {
    const prev = coordinator.deployment('tool_agent')!;
    const victim = [...new Set(prev.ops.map((o) => o.node))].find((n) => n !== 'node-cpu' && nodes.has(n));
    assert.ok(victim, 'an operator runs on a second node');
    const results = await flow(8, 2, () => nodes.get(victim)!.close(), 'c', 'durable');
    assert.equal(results.length, 8);
    await waitUntil(() => coordinator.migrations.some((m) => m.reason.includes(victim)));
    const now = coordinator.deployment('tool_agent')!;
    assert.ok(now.ops.every((o) => o.node !== victim));
    assert.deepEqual(
      await applied(now),
      now.ops.map(() => 28),
    );
  });

  test('a restarted coordinator takes the deployment over from KV and keeps migrating', async () => {
    await coordinator.stop();
    const other = await connectCluster({ nats: nats.url, name: CLUSTER, log: () => undefined });
    nodes.set('coordinator-2', other);
    coordinator = new Coordinator(other, { driftEvery: 1_000_000 });
    await coordinator.start();
    assert.deepEqual(coordinator.deployments, ['tool_agent']);
    const b200 = await connectCluster({ nats: nats.url, name: CLUSTER, log: () => undefined });
    await b200.startNode({ id: 'node-b200', actors: OPERATOR_ACTORS, virtual: ['b200'] });
    nodes.set('node-b200', b200);
    // The accelerator the LLM ops run on leaves: b200 is the one left for their "gpu" hint.
    const gpu = coordinator.deployment('tool_agent')!.ops.find((o) => o.modelled)!.node;
    assert.notEqual(gpu, 'node-b200');
    const results = await flow(6, 2, () => nodes.get(gpu)!.close(), 'd');
    assert.equal(results.length, 6);
    await waitUntil(() => coordinator.migrations.some((m) => m.reason.includes(`${gpu} left`)));
    const moved = coordinator.deployment('tool_agent')!;
    assert.ok(moved.ops.filter((o) => o.modelled).every((o) => o.node === 'node-b200'));
    await b200.close();
    // No accelerator left: the hint names no live class and the planner puts everything on cpu.
    await waitUntil(() => coordinator.migrations.some((m) => m.reason.includes('node-b200 left')));
    const now = coordinator.deployment('tool_agent')!;
    assert.ok(now.ops.every((o) => o.node === 'node-cpu'));
    assert.deepEqual(
      await applied(now),
      now.ops.map(() => 34),
    );
  });

  test('a draining node: its operators move off it live while it serves; a forged drain is ignored', async () => {
    const joined = async (id: string, virtual: string) => {
      const c = await connectCluster({ nats: nats.url, name: CLUSTER, log: () => undefined });
      await c.startNode({ id, actors: OPERATOR_ACTORS, virtual: [virtual] });
      nodes.set(id, c);
      return c;
    };
    await joined('node-mi300x', 'mi300x');
    await joined('node-gaudi3-b', 'gaudi3');
    // The LLM ops leave cpu for an accelerator once one joins.
    await waitUntil(() =>
      coordinator.deployment('tool_agent')!.ops.some((o) => o.modelled && o.node !== 'node-cpu'),
    );
    // A drain event the node did not send: the node says it is not draining, nothing moves.
    const before = coordinator.metrics();
    const forged = { kind: 'drain', nodeId: 'node-cpu', revision: 1, at: Date.now() };
    const nc = await connect({ servers: nats.url });
    nc.publish(`stitch.${CLUSTER}.membership`, JSON.stringify(forged));
    await nc.flush();
    await nc.close();
    await waitUntil(() => coordinator.metrics().ignoredMembership > before.ignoredMembership);
    assert.ok(!coordinator.migrations.some((m) => m.reason.includes('node-cpu is draining')));

    const gpu = coordinator.deployment('tool_agent')!.ops.find((o) => o.modelled)!.node;
    const draining = nodes.get(gpu)!.node!;
    let left = -1;
    const results = await flow(
      8,
      2,
      async () => {
        left = await draining.drain(20_000);
      },
      'e',
    );
    assert.equal(results.length, 8);
    assert.equal(left, 0, 'every operator left the draining node');
    assert.equal(draining.inspect().actors.length, 0);
    const ev = coordinator.migrations.find((m) => m.reason.includes(`${gpu} is draining`));
    assert.ok(ev, 'the coordinator re-planned for the drain');
    for (const m of ev.moved) assert.equal(m.phases?.how, 'live', `${m.opId} moved live`);
    const now = coordinator.deployment('tool_agent')!;
    assert.ok(now.ops.every((o) => o.node !== gpu));
    assert.deepEqual(
      await applied(now),
      now.ops.map(() => 42),
    );
    // A draining node takes no new actors (asked through a connection no coordinator has fenced).
    await assert.rejects(nodes.get('node-cpu')!.spawn('op-tool', { id: 'late', node: gpu }), /draining/);
  });
});

// The claim is that a migration happens, not how soon: each re-plan may spend up to 5 s in the MILP
// (placement.ts) and a failed one retries, so on a loaded machine 10 s could run out first.

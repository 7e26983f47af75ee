// Coordinator high availability: coordinators of one cluster elect one leader through a KV lease with
// a fencing epoch. Started together, exactly one leads; the leader killed with SIGKILL, a standby takes
// over, announces its epoch to the nodes, and the old epoch's commands are refused; the new leader
// deploys; a leader killed in the middle of a re-plan leaves nothing half-moved once its successor has
// taken over; a node that began draining while no coordinator led is emptied by the next leader. The
// lease is 500 ms here so that the test waits little.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Coordinator, closeMemoryConnections, OPERATOR_ACTORS } from '@stitch/agents';
import {
  type Cluster,
  connectCluster,
  type EmbeddedNats,
  StaleFence,
  startEmbeddedNats,
} from '@stitch/runtime';
import { waitFor, waitUntil } from './fixtures/wait.js';

const BIN = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const SAMPLE = fileURLToPath(new URL('../packages/ir/samples/tool-agent.tiny-llama.mlir', import.meta.url));
const C = 'ha';
const LEASE_MS = 500;

let nats: EmbeddedNats;
let node: Cluster;
const clusters: Cluster[] = [];
const coordinators: Coordinator[] = [];
let child: ChildProcess | undefined;

before(async () => {
  nats = await startEmbeddedNats();
  node = await connectCluster({ nats: nats.url, name: C, log: () => undefined });
  await node.startNode({ id: 'worker', actors: OPERATOR_ACTORS });
});

after(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(coordinators.map((c) => c.stop()));
  await closeMemoryConnections();
  await Promise.all(clusters.map((c) => c.close().catch(() => undefined)));
  await node?.close();
  await nats?.stop();
});

async function coordinator(name: string, log?: (line: string) => void): Promise<Coordinator> {
  const cluster = await connectCluster({ nats: nats.url, name: C, log: () => undefined });
  clusters.push(cluster);
  const c = new Coordinator(cluster, {
    name,
    leaseMs: LEASE_MS,
    driftEvery: 1_000_000,
    ...(log ? { log } : {}),
  });
  coordinators.push(c);
  return c;
}

/**
 * A coordinator process (the CLI) of this cluster and lease; `out()` is what it printed so far, and
 * `onOutput` sees it as it grows.
 */
function coordinatorProcess(id: string, extra: string[] = [], onOutput?: (out: string) => void) {
  let out = '';
  const proc = spawn(
    process.execPath,
    [
      BIN,
      'coordinator',
      '--nats',
      nats.url,
      '--name',
      C,
      '--id',
      id,
      '--lease-ms',
      String(LEASE_MS),
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child = proc;
  const take = (b: Buffer) => {
    out += b.toString();
    onOutput?.(out);
  };
  proc.stdout!.on('data', take);
  proc.stderr!.on('data', take);
  return { proc, out: () => out };
}

test('coordinators started at once: exactly one leads, the other stands by and refuses deployments', async () => {
  const [a, b] = await Promise.all([coordinator('one'), coordinator('two')]);
  await Promise.all([a!.start(), b!.start()]);
  await waitUntil(() => a!.leading !== b!.leading);
  // Several lease periods later it is still exactly one, the same one.
  const leader = a!.leading ? a! : b!;
  const standby = a!.leading ? b! : a!;
  await new Promise((r) => setTimeout(r, LEASE_MS * 3));
  // No election since, nor a deposition (a loaded host may leave the leader unsure for a moment:
  // `leading` then waits for its next renewal, the lease stays its own).
  assert.deepEqual(
    [leader.metrics().elected, leader.metrics().deposed, standby.metrics().elected],
    [1, 0, 0],
  );
  await waitUntil(() => leader.leading);
  assert.equal(standby.leading, false);
  assert.equal(leader.epoch, 1);
  await assert.rejects(standby.deploy(readFileSync(SAMPLE, 'utf8'), 'on-standby'), {
    code: 'COORDINATOR_NOT_LEADER',
  });
  // A leader that stops hands the lease over at once.
  await leader.stop();
  assert.equal(leader.leading, false, 'a stopped coordinator does not lead');
  await waitUntil(() => standby.leading);
  assert.equal(standby.epoch, 2);
  await standby.stop();
});

test('the leader killed with SIGKILL: a standby takes over, fences the old epoch out, and deploys', async () => {
  const { proc, out } = coordinatorProcess('a', ['--deploy', SAMPLE]);
  await waitUntil(() => /deployed tool_agent/.test(out()), 60_000);
  const epochA = Number(/leading the cluster's coordinators \(epoch (\d+)\)/.exec(out())?.[1]);
  assert.ok(epochA >= 1, out());

  const lines: string[] = [];
  const standby = await coordinator('b', (line) => lines.push(line));
  await standby.start();
  assert.equal(standby.leading, false);
  proc.kill('SIGKILL');
  await waitUntil(() => standby.leading);
  // The take-over is logged once done, with the time of each phase.
  const tookOver = await waitFor(async () => lines.find((l) => l.startsWith('take-over (epoch')), 60_000);
  assert.match(
    tookOver,
    /^take-over \(epoch \d+\) done in \d+ ms: fence announced \d+ ms; deployments read \d+ ms; drains checked \d+ ms; tool_agent re-planned \d+ ms, configured \d+ ms$/,
  );
  assert.ok(standby.epoch > epochA);
  assert.deepEqual(
    [standby.metrics().elected, standby.metrics().deposed, standby.metrics().epoch],
    [1, 0, standby.epoch],
  );

  // The node was told the new epoch: a command of the dead leader's epoch is refused.
  const d = standby.deployment('tool_agent');
  assert.ok(d, 'the new leader took the deployment over from KV');
  const op = d.ops[0]!;
  const nc = await connectCluster({ nats: nats.url, name: C, log: () => undefined });
  clusters.push(nc);
  nc.fence('coordinator', epochA);
  await assert.rejects(
    nc.stop({ type: op.actorType, id: op.actorId }),
    (e: Error) => e instanceof StaleFence,
  );
  assert.ok(await nc.locate({ type: op.actorType, id: op.actorId }), 'the operator still runs');
  // So is a configure of that epoch: the take-over configured each operator with the new one.
  const ref = nc.ref({ type: op.actorType, id: op.actorId });
  const { config } = (await ref.ask({ type: 'counts' })) as { config: unknown };
  await assert.rejects(
    ref.ask({ type: 'configure', config, epoch: epochA }),
    (e: { code?: string }) => e.code === 'STALE_FENCE',
  );

  // The new leader deploys.
  const second = await standby.deploy(readFileSync(SAMPLE, 'utf8'), 'after-takeover');
  assert.equal(second.name, 'after-takeover');
});

test('the leader killed while it re-plans for a joining accelerator: a standby takes over and every operator ends in one place, answering', async () => {
  // The previous test's standby leads; stopped, it hands the lease to a leader process started now.
  await Promise.all(coordinators.map((c) => c.stop()));
  const { proc: leader, out } = coordinatorProcess('c');
  await waitUntil(() => /leading the cluster's coordinators/.test(out()), 60_000);
  const standby = await coordinator('d');
  await standby.start();
  // An accelerator joins: the leader re-plans and moves the LLM ops (their "gpu" hint) onto it, live.
  // It is killed a quarter of a second later: during the re-plan or its moves on most machines (a
  // move the source node already drives finishes without it), after them on a fast one.
  const gpu = await connectCluster({ nats: nats.url, name: C, log: () => undefined });
  clusters.push(gpu);
  await gpu.startNode({ id: 'gpu', actors: OPERATOR_ACTORS, virtual: ['h100'] });
  await new Promise((r) => setTimeout(r, 250));
  leader.kill('SIGKILL');
  await waitUntil(() => standby.leading);

  // Whatever the dead leader finished, the new one converges: the plan's LLM ops on the accelerator,
  // each operator in exactly one live place, and every one answering.
  for (const name of ['tool_agent', 'after-takeover']) {
    await waitUntil(() =>
      (standby.deployment(name)?.ops ?? []).filter((o) => o.modelled).every((o) => o.node === 'gpu'),
    );
    const d = standby.deployment(name)!;
    for (const op of d.ops) {
      const ref = { type: op.actorType, id: op.actorId };
      const where = await gpu.locate(ref);
      assert.ok(where && ['worker', 'gpu'].includes(where.node), `${op.id} is somewhere live`);
      await gpu.ref(ref).ask({ type: 'counts' }, { retries: 3 });
    }
  }
});

test('a node that began draining while no coordinator led: the next leader moves its operators off it, live', async () => {
  await Promise.all(coordinators.map((c) => c.stop()));
  const spare = await connectCluster({ nats: nats.url, name: C, log: () => undefined });
  clusters.push(spare);
  await spare.startNode({ id: 'spare', actors: OPERATOR_ACTORS });
  // Nobody leads: the drain event reaches no coordinator, and after 300 ms without a move the node
  // stops waiting, its operators still there, still draining.
  const worker = node.node!;
  const left = await worker.drain(10_000, 300);
  assert.ok(left > 0, 'the worker still hosts operators');
  const next = await coordinator('e');
  await next.start();
  await waitUntil(() => next.leading);
  await waitUntil(() => worker.inspect().actors.length === 0);
  const ev = next.migrations.find((m) => m.reason.includes('draining: worker'));
  assert.ok(ev, `no re-plan named the drain: ${JSON.stringify(next.migrations.map((m) => m.reason))}`);
  for (const m of ev.moved) assert.equal(m.phases?.how, 'live', `${m.opId} moved live`);
});

test('the leader killed just after it took a drain on: the node waits for the standby, which moves the rest off it live', async () => {
  await Promise.all(coordinators.map((c) => c.stop()));
  /** Killed as soon as it says it took this node's drain on, before it plans (a poll would be late). */
  let killOn: string | undefined;
  const { proc: leader, out } = coordinatorProcess('f', [], (text) => {
    if (killOn && text.includes(killOn)) leader.kill('SIGKILL');
  });
  await waitUntil(() => /take-over \(epoch \d+\) done/.test(out()), 60_000);
  const standby = await coordinator('g');
  await standby.start();
  assert.equal(standby.leading, false);
  // A node of this process that hosts operators now (the previous tests moved them about).
  const target = clusters.find((c) => c.node && c.node.id !== 'worker' && c.node.inspect().actors.length > 0);
  assert.ok(target?.node, 'a node of this process hosts operators');
  const id = target.node.id;
  // Idle after 300 ms: far shorter than a take-over, so only the leader's word keeps the node waiting.
  killOn = `took the drain of ${id} on`;
  const draining = target.node.drain(30_000, 300);
  await waitUntil(() => leader.signalCode === 'SIGKILL', 30_000);
  assert.equal(await draining, 0, `the drain of ${id} ended with operators still there`);
  await waitUntil(() => standby.leading);
  for (const name of ['tool_agent', 'after-takeover'])
    assert.ok(
      standby.deployment(name)?.ops.every((o) => o.node !== id),
      `${name} left ${id}`,
    );
  // What the standby moved off the draining node, it moved live.
  for (const ev of standby.migrations.filter((m) => m.reason.includes(`draining: ${id}`)))
    for (const m of ev.moved) assert.equal(m.phases?.how, 'live', `${m.opId} moved live`);
});

// A node that drains, closes or dies while one of its actors is being moved off it: the drain does not
// give up on the move as idle (someone is moving its actors), a close lets the move finish and answer
// its commander before the connection goes, and a kill -9 fails the commander's request once the node
// is gone (in each of the last two, the commander used to wait out its 60 s request).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  type Cluster,
  connectCluster,
  type EmbeddedNats,
  InvalidOptions,
  type MembershipEvent,
  NoResponders,
  Overloaded,
  StaleFence,
  startEmbeddedNats,
} from '@stitch/runtime';
import { Counter } from './fixtures/runtime-actors.js';
import { startNode, stopAll } from './fixtures/runtime-procs.js';
import { waitFor } from './fixtures/wait.js';

const NAME = 'drainmove';
/** The source keeps receiving this long around the hand-off (as a server in a cluster makes it wait): a move takes seconds. */
const GRACE_MS = 1500;

let nats: EmbeddedNats;
let commander: Cluster;
const clusters: Cluster[] = [];

async function nodeProcess(id: string, migrationGraceMs = 0): Promise<Cluster> {
  const c = await connectCluster({ nats: nats.url, name: NAME, log: () => undefined });
  clusters.push(c);
  await c.startNode({ id, actors: [Counter], migrationGraceMs });
  return c;
}

before(async () => {
  nats = await startEmbeddedNats();
  commander = await connectCluster({ nats: nats.url, name: NAME, log: () => undefined });
  await nodeProcess('target');
});

after(async () => {
  await Promise.all([commander, ...clusters].map((c) => c.close().catch(() => undefined)));
  await stopAll();
  await nats?.stop();
});

test('a drain waits for a move under way rather than end as idle with the actor still here', async () => {
  const source = await nodeProcess('source-drain', GRACE_MS);
  const ref = await commander.spawn(Counter, { id: 'c-drain', node: 'source-drain' });
  assert.equal(await ref.ask({ type: 'add', by: 2 }), 2);
  // Asked of the node itself, so that the move is under way when the drain starts, however loaded the host.
  const moving = source.node!.migrate(Counter.type, 'c-drain', 'target');
  // Idle after 200 ms: far shorter than the move.
  const left = await source.node!.drain(20_000, 200);
  const report = await moving;
  assert.equal(report.to, 'target');
  assert.equal(left, 0, 'the drain ended with the moving actor still on the node');
  assert.equal(await ref.ask({ type: 'add', by: 1 }), 3);
});

test('a drain a commander took on waits its wait between moves, not the idle time (a plan, a take-over)', async () => {
  const source = await nodeProcess('source-taken');
  const ref = await commander.spawn(Counter, { id: 'c-taken', node: 'source-taken' });
  assert.equal(await ref.ask({ type: 'add', by: 4 }), 4);
  await assert.rejects(commander.takeDrain('source-taken', -1), /waitMs must be an integer from 0 to 60000/);
  const t0 = performance.now();
  // Idle after 200 ms; the commander asks for up to 20 s, and moves the actor a second later.
  const draining = source.node!.drain(30_000, 200);
  await commander.takeDrain('source-taken', 20_000);
  await delay(1000);
  const report = await commander.migrate(ref, 'target');
  assert.equal(report.to, 'target');
  assert.equal(
    await draining,
    0,
    `the drain ended as idle with the actor still there (${Math.round(performance.now() - t0)} ms)`,
  );
  assert.equal(await ref.ask({ type: 'add', by: 1 }), 5);
});

test('a drain taken on with no wait, or by a deposed commander, ends as idle as before', async () => {
  const source = await nodeProcess('source-untaken');
  await commander.spawn(Counter, { id: 'c-untaken', node: 'source-untaken' });
  const leader = await connectCluster({ nats: nats.url, name: NAME, log: () => undefined });
  const deposed = await connectCluster({ nats: nats.url, name: NAME, log: () => undefined });
  clusters.push(leader, deposed);
  leader.fence('coordinator', 2);
  deposed.fence('coordinator', 1);
  // Every live node is told the epoch; the drained one must have confirmed it.
  assert.ok(!(await leader.announceFence()).includes('source-untaken'));
  await assert.rejects(deposed.takeDrain('source-untaken', 20_000), (e: Error) => e instanceof StaleFence);
  await leader.takeDrain('source-untaken', 0);
  const t0 = performance.now();
  assert.equal(await source.node!.drain(30_000, 200), 1);
  assert.ok(performance.now() - t0 < 15_000, 'the drain waited for a wait the deposed commander asked for');
});

test('a draining node says so in its capability record, and activations go elsewhere without trying it', async () => {
  const source = await nodeProcess('source-record');
  await commander.spawn(Counter, { id: 'c-record', node: 'source-record' });
  const tried: string[][] = [];
  // A placement that would pick the draining node first, were it offered.
  const asker = await connectCluster({
    nats: nats.url,
    name: NAME,
    log: () => undefined,
    activationPlacement: (_type, nodes) => {
      tried.push(nodes.map((n) => n.nodeId));
      return nodes.find((n) => n.nodeId === 'source-record')?.nodeId ?? nodes[0]?.nodeId;
    },
  });
  clusters.push(asker);
  assert.equal(await source.node!.drain(30_000, 100), 1);
  const record = (await asker.nodes()).find((n) => n.nodeId === 'source-record');
  assert.equal(record?.draining, true);
  assert.equal(await asker.get(Counter, 'c-elsewhere').ask({ type: 'add', by: 1 }), 1);
  assert.notEqual((await asker.locate({ type: Counter.type, id: 'c-elsewhere' }))?.node, 'source-record');
  assert.ok(tried.length > 0 && tried.every((ids) => !ids.includes('source-record')), JSON.stringify(tried));
});

test('a node drained from another process takes no new actors, keeps those nobody moved, and takes actors again once undrained', async () => {
  await nodeProcess('remote-drain');
  const kept = await commander.spawn(Counter, { id: 'c-remote', node: 'remote-drain' });
  assert.equal(await kept.ask({ type: 'add', by: 1 }), 1);
  for (const timeoutMs of [0, 600_001, 1.5])
    await assert.rejects(commander.drainNode('remote-drain', { timeoutMs }), InvalidOptions);
  // No coordinator moves its actor: the drain ends as idle (1 s without a move), the actor still there.
  assert.deepEqual(await commander.drainNode('remote-drain', { timeoutMs: 30_000 }), { left: 1 });
  assert.equal((await commander.nodes()).find((n) => n.nodeId === 'remote-drain')?.draining, true);
  await assert.rejects(
    commander.spawn(Counter, { id: 'c-refused', node: 'remote-drain' }),
    (err: Error) => err instanceof Overloaded && /remote-drain is draining/.test(err.message),
  );
  assert.equal(await kept.ask({ type: 'add', by: 1 }), 2, 'what it hosts still serves');
  const seen: MembershipEvent[] = [];
  const unsubscribe = await commander.onMembership((ev) => seen.push(ev));
  try {
    assert.deepEqual(await commander.undrainNode('remote-drain'), { undrained: true });
    assert.deepEqual(await commander.undrainNode('remote-drain'), { undrained: false }, 'once');
    assert.notEqual((await commander.nodes()).find((n) => n.nodeId === 'remote-drain')?.draining, true);
    const back = await commander.spawn(Counter, { id: 'c-back', node: 'remote-drain' });
    assert.equal(await back.ask({ type: 'add', by: 3 }), 3);
    // It is back: a coordinator hears it join, and may place operators there again.
    await waitFor(async () => seen.find((e) => e.kind === 'join' && e.nodeId === 'remote-drain'), 5000);
  } finally {
    unsubscribe();
  }
});

test('a node closed during a move lets it finish and answers its commander before it leaves', async () => {
  const source = await nodeProcess('source-close', GRACE_MS);
  const ref = await commander.spawn(Counter, { id: 'c-close', node: 'source-close' });
  assert.equal(await ref.ask({ type: 'add', by: 5 }), 5);
  const t0 = performance.now();
  const moving = commander.migrate(ref, 'target').then(
    (r) => r.to,
    (err: Error) => `failed: ${err.message}`,
  );
  // Closed while the move runs (it takes at least twice the grace).
  await waitFor(async () => (source.node!.inspect().migrations?.underWay === 1 ? true : undefined), 10_000);
  const closing = source.close();
  const outcome = await Promise.race([moving, delay(15_000, 'no answer in 15 s', { ref: false })]);
  await closing;
  assert.equal(outcome, 'target', `${outcome} after ${Math.round(performance.now() - t0)} ms`);
  assert.equal(await ref.ask({ type: 'add', by: 1 }), 6);
});

test('a node killed during a move fails its commander as soon as it is gone, not at the request timeout', async () => {
  const source = await startNode({
    nats: nats.url,
    cluster: NAME,
    nodeId: 'source-kill',
    migrationGraceMs: GRACE_MS,
  });
  const ref = await commander.spawn(Counter, { id: 'c-kill', node: source.nodeId });
  assert.equal(await ref.ask({ type: 'add', by: 1 }), 1);
  const moving = commander.migrate(ref, 'target').then(
    (r) => `moved to ${r.to}`,
    (err: Error) => err,
  );
  await waitFor(
    async () => ((await commander.inspectNode(source.nodeId))?.migrations?.underWay === 1 ? true : undefined),
    10_000,
  );
  source.child.kill('SIGKILL');
  await source.exited;
  const outcome = await Promise.race([moving, delay(15_000, 'no answer in 15 s', { ref: false })]);
  assert.ok(outcome instanceof NoResponders, String(outcome));
  assert.match(outcome.message, /node source-kill \(it went away while it moved counter\/c-kill to target/);
});

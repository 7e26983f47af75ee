// Load shedding on node processes: while a node's event loop runs late, new fast-mode asks are
// answered Overloaded at once (each one refused is not applied), durable asks wait in the stream and
// run, and once the loop keeps time again asks are served as before. A node that sheds says so in its
// capability record, and new activations go to the others.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  type Cluster,
  connectCluster,
  type EmbeddedNats,
  Overloaded,
  startEmbeddedNats,
} from '@stitch/runtime';
import { Blocker, Counter, Hoarder, Prepared } from './fixtures/runtime-actors.js';
import { type NodeProc, startNode, stopAll } from './fixtures/runtime-procs.js';

const CLUSTER = 'shed';
let nats: EmbeddedNats;
let client: Cluster;
let node: NodeProc;
let full: NodeProc;

before(async () => {
  nats = await startEmbeddedNats();
  client = await connectCluster({ nats: nats.url, name: CLUSTER, deadAfterMs: 5000 });
  const env = { nats: nats.url, cluster: CLUSTER };
  [node, , full] = await Promise.all([
    startNode({ ...env, nodeId: 'shed-1', shedding: { lagMs: 250 } }),
    startNode({ ...env, nodeId: 'shed-calm' }),
    // Its heap is always above this share of its limit: it sheds from its first measurement on.
    startNode({ ...env, nodeId: 'shed-full', shedding: { heapFraction: 0.001 } }),
  ]);
});

after(async () => {
  await client?.close();
  await stopAll();
  await nats?.stop();
});

test('a node whose event loop ran late refuses new fast asks at once until it keeps time again', async () => {
  const blocker = await client.spawn(Blocker, { id: 'b1', node: node.nodeId });
  const counter = await client.spawn(Counter, { id: 'c1', node: node.nodeId });
  assert.equal(await counter.ask({ type: 'add', by: 1 }), 1);
  const before = (await client.inspectNode(node.nodeId))?.shedding;
  assert.deepEqual(before, { shed: 0 });

  const blocked = blocker.ask({ type: 'block', ms: 1000 }, { timeoutMs: 10_000 });
  await delay(100);
  // Sent while the node's loop is blocked: they wait in its socket and are read once it is free.
  const fast = Array.from({ length: 40 }, () => counter.ask({ type: 'add', by: 1 }, { timeoutMs: 10_000 }));
  const durable = Array.from({ length: 5 }, () =>
    counter.ask({ type: 'add', by: 1 }, { mode: 'durable', timeoutMs: 10_000 }),
  );
  assert.equal(await blocked, 1000);
  const settled = await Promise.allSettled(fast);
  const refused = settled.filter((r) => r.status === 'rejected').map((r) => r.reason as Error);
  assert.ok(refused.length > 0, 'some asks were refused while the loop was late');
  for (const err of refused) {
    assert.ok(err instanceof Overloaded, String(err));
    assert.match(err.message, /node shed-1 is shedding load: its event loop runs \d+ ms late/);
  }
  // Durable asks are not shed: they waited in the stream and ran.
  await Promise.all(durable);

  // Calm again: served as before, and the node counted each refusal.
  let shedding = (await client.inspectNode(node.nodeId))?.shedding;
  const until = Date.now() + 5000;
  while (shedding?.reason !== undefined && Date.now() < until) {
    await delay(50);
    shedding = (await client.inspectNode(node.nodeId))?.shedding;
  }
  assert.deepEqual(shedding, { shed: refused.length });
  const applied = 1 + (fast.length - refused.length) + durable.length;
  assert.equal(
    await counter.ask({ type: 'get' }),
    applied,
    'each refused ask was not applied, each other one once',
  );
  assert.equal(await counter.ask({ type: 'add', by: 1 }), applied + 1);
});

test('a node that sheds load says so in its record: new activations go to the others; it refuses fast asks, not durable ones', async () => {
  const until = Date.now() + 10_000;
  let record = (await client.nodes()).find((n) => n.nodeId === full.nodeId);
  while (record?.shedding !== true && Date.now() < until) {
    await delay(100);
    record = (await client.nodes()).find((n) => n.nodeId === full.nodeId);
  }
  assert.equal(record?.shedding, true, 'the heartbeat carries the shedding');
  for (let i = 0; i < 8; i++) {
    const ref = client.get(Counter, `placed-${i}`);
    assert.equal(await ref.ask({ type: 'add', by: 1 }), 1);
    const where = await client.locate(ref);
    assert.ok(where && where.node !== full.nodeId, `placed-${i} went to ${where?.node}`);
  }
  const there = await client.spawn(Counter, { id: 'on-full', node: full.nodeId });
  await assert.rejects(
    there.ask({ type: 'add', by: 1 }),
    (err: Error) =>
      err instanceof Overloaded &&
      /node shed-full is shedding load: its heap is \d+\.\d % full \(shedding\.heapFraction 0\.001\)/.test(
        err.message,
      ),
  );
  assert.equal(await there.ask({ type: 'add', by: 1 }, { mode: 'durable' }), 1);
  assert.equal((await client.inspectNode(full.nodeId))?.shedding?.shed, 1);
  // A set-up message (setupHandlers: a coordinator's configure) is taken all the same: refused, the
  // actor could not serve even once the node is calm again.
  const setUp = await client.spawn(Prepared, { id: 'set-up', node: full.nodeId });
  assert.equal(await setUp.ask({ type: 'prepare', ms: 0 }), true);
  await assert.rejects(setUp.ask({ type: 'work' }), Overloaded);
  const after = await client.inspectNode(full.nodeId);
  assert.equal(after?.shedding?.shed, 2);
  // Each actor counts what it refused (a control loop reads these as replicas that did not serve);
  // refused, a message is not one it accepted.
  const mailboxOf = (id: string) => after?.actors.find((a) => a.id === id)?.mailbox;
  assert.equal(mailboxOf('on-full')?.shed, 1);
  assert.equal(mailboxOf('on-full')?.accepted, 1, 'the durable ask');
  assert.equal(mailboxOf('set-up')?.shed, 1);
  assert.equal(mailboxOf('set-up')?.accepted, 0, 'a set-up turn is not metered');
});

test('a node whose heap fills up sheds instead of running out of memory, and still runs durable asks', async () => {
  // 128 MiB of old generation: shedding at 90 % of it, before V8 would stop the process.
  const small = await startNode(
    { nats: nats.url, cluster: CLUSTER, nodeId: 'shed-small', deadAfterMs: 5000 },
    ['--max-old-space-size=128'],
  );
  const hoarder = await client.spawn(Hoarder, { id: 'h1', node: small.nodeId });
  let kept = 0;
  let refusal: Error | undefined;
  for (let i = 0; i < 400 && !refusal; i++) {
    try {
      kept = await hoarder.ask({ type: 'keep', mib: 1 }, { timeoutMs: 10_000 });
    } catch (err) {
      refusal = err as Error;
    }
  }
  assert.ok(refusal instanceof Overloaded, `refused at ${kept} MiB: ${refusal}`);
  assert.match(refusal.message, /node shed-small is shedding load: its heap is \d+\.\d % full/);
  assert.ok(kept >= 64, `it kept ${kept} MiB before shedding`);
  // Alive, and serving what is not shed.
  assert.equal(small.child.exitCode, null);
  assert.equal(await hoarder.ask({ type: 'count' }, { mode: 'durable', timeoutMs: 10_000 }), kept);
  assert.ok(((await client.inspectNode(small.nodeId))?.shedding?.shed ?? 0) >= 1);
});

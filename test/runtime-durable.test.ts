// Durable mode: every message takes effect exactly once across a kill -9 of the hosting process.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';
import {
  AlreadyActive,
  type Cluster,
  ClusterNotInitialized,
  connectCluster,
  type EmbeddedNats,
  startEmbeddedNats,
} from '@stitch/runtime';
import { decode, encode } from '@stitch/runtime/internal';
import { Counter, Ledger } from './fixtures/runtime-actors.js';
import { startNode, stopAll } from './fixtures/runtime-procs.js';
import { waitUntil, within } from './fixtures/wait.js';

const CLUSTER = 'dur';
const DEAD_AFTER = 1500;
const N = 400;

describe('durable delivery', () => {
  let nats: EmbeddedNats;
  let client: Cluster;

  before(async () => {
    nats = await startEmbeddedNats();
    client = await connectCluster({ nats: nats.url, name: CLUSTER, deadAfterMs: DEAD_AFTER });
  });

  after(async () => {
    await client?.close();
    await stopAll();
    await nats?.stop();
  });

  test('effects happen once across kill -9 of the hosting node and a restart elsewhere', async () => {
    const env = { nats: nats.url, cluster: CLUSTER, deadAfterMs: DEAD_AFTER };
    const first = await startNode({ ...env, nodeId: 'ledger-a' });
    const ref = await client.spawn(Ledger, { id: 'l1', node: first.nodeId });
    // Started before the sends, so that the kill below lands while the first node is mid-mailbox.
    const second = await startNode({ ...env, nodeId: 'ledger-b' });
    const keys = Array.from({ length: N }, (_, i) => `k${i}`);
    // Every key is sent twice: the stream's duplicate window drops the second publish.
    for (let i = 0; i < N; i += 50) {
      const batch = keys.slice(i, i + 50).flatMap((k) => [k, k]);
      await Promise.all(
        batch.map((k, j) => ref.tell({ type: 'apply', n: j }, { mode: 'durable', idempotencyKey: k })),
      );
    }
    // Cached by the directory watch; the takeover below must replace it.
    assert.deepEqual(await client.locate(ref), { node: 'ledger-a', epoch: 1 });
    // Single activation: while the first node is alive the id stays with it.
    await assert.rejects(client.spawn(Ledger, { id: 'l1', node: second.nodeId }), AlreadyActive);
    // Kill the host while it is part-way through the mailbox.
    for (;;) {
      const seen = await ref.inspect();
      if (seen.mailbox.processed >= N / 4) break;
      await delay(20);
    }
    first.child.kill('SIGKILL');
    assert.equal(await first.exited, 'SIGKILL');
    // Once its heartbeat expires the id can be taken over, with the next epoch.
    for (;;) {
      try {
        await client.spawn(Ledger, { id: 'l1', node: second.nodeId });
        break;
      } catch (err) {
        assert.ok(err instanceof AlreadyActive, String(err));
        await delay(100);
      }
    }
    assert.deepEqual(await client.locate(ref), { node: 'ledger-b', epoch: 2 });
    const applied = await waitForAll(ref, N);
    assert.deepEqual(Object.keys(applied).sort(), [...keys].sort());
    assert.deepEqual(
      Object.entries(applied).filter(([, n]) => n !== 1),
      [],
      'no key was applied twice',
    );
    const stats = (await ref.inspect()).durable;
    process.stdout.write(`# durable after kill -9: ${JSON.stringify(stats)}\n`);
  });

  test('a repeat that bypasses the stream dedup window is skipped by the effect record', async () => {
    const ref = client.ref<typeof Ledger>({ type: 'ledger', id: 'l1' });
    const before = (await ref.inspect()).durable.duplicatesSkipped;
    // What a caller retrying after the duplicate window would send: same idempotency key, new message id.
    const nc = await connect({ servers: nats.url });
    try {
      const h = headers();
      h.set('Stitch-Idempotency-Key', 'k7');
      await jetstream(nc).publish(`stitch.${CLUSTER}.durable.ledger.l1`, encode({ type: 'apply', n: 0 }), {
        headers: h,
        msgID: 'another-id',
      });
    } finally {
      await nc.close();
    }
    for (;;) {
      if ((await ref.inspect()).durable.duplicatesSkipped > before) break;
      await delay(20);
    }
    const applied = await ref.ask({ type: 'get' });
    assert.equal(applied.k7, 1);
    // A durable ask repeating an applied key (the stream drops the publish) still gets the recorded reply.
    assert.equal(await ref.ask({ type: 'apply', n: 1 }, { mode: 'durable', idempotencyKey: 'k8' }), 1);
    assert.equal(await ref.ask({ type: 'apply', n: 1 }, { mode: 'durable', idempotencyKey: 'fresh' }), 1);
    assert.equal(await ref.ask({ type: 'apply', n: 1 }, { mode: 'durable', idempotencyKey: 'fresh' }), 1);
    assert.equal((await ref.ask({ type: 'get' })).fresh, 1);
  });

  test("one idempotency key sent to two actors is applied by each: a key is an actor's, not the stream's", async () => {
    const refs = ['same-key-a', 'same-key-b'].map((id) => client.get(Ledger, id));
    const asked = refs.map((r) =>
      r.ask({ type: 'apply', n: 0 }, { mode: 'durable', idempotencyKey: 'shared' }),
    );
    assert.deepEqual(await Promise.all(asked), [1, 1]);
    for (const r of refs) assert.deepEqual(await r.ask({ type: 'get' }), { shared: 1 });
  });

  test('after its connection reconnects, a node sends its durable answers of the last seconds again', async () => {
    const host = await connectCluster({ nats: nats.url, name: CLUSTER, log: () => undefined });
    const raw = await connect({ servers: nats.url });
    try {
      const node = await host.startNode({ id: 'replay-a', actors: [Counter] });
      await client.spawn(Counter, { id: 'replayed', node: node.id });
      const answers: number[] = [];
      const sub = raw.subscribe('replay.answers', {
        callback: (_e, m) => void answers.push(decode(m.data) as number),
      });
      const h = headers();
      h.set('Stitch-Reply-To', 'replay.answers');
      h.set('Stitch-Idempotency-Key', 'replay-1');
      await jetstream(raw).publish(
        `stitch.${CLUSTER}.durable.counter.replayed`,
        encode({ type: 'add', by: 3 }),
        {
          headers: h,
          msgID: 'replay-1',
        },
      );
      await waitUntil(() => answers.length >= 1, 10_000);
      assert.deepEqual(answers, [3]);
      // What the node sent just before its connection broke may be lost: it sends it again once back.
      await node.nc.reconnect();
      await waitUntil(() => answers.length >= 2, 10_000);
      assert.deepEqual(answers, [3, 3], 'the same answer, once more');
      assert.equal(
        await client.ref<typeof Counter>({ type: 'counter', id: 'replayed' }).ask({ type: 'get' }),
        3,
      );
      sub.unsubscribe();
    } finally {
      await raw.close();
      await host.close();
    }
  });

  test('a durable publish no stream takes waits for one within its timeout (a stream between leaders), else says why', async () => {
    const name = 'dur-no-stream';
    const c = await connectCluster({ nats: nats.url, name, askTimeoutMs: 3000, log: () => undefined });
    const raw = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(raw);
      const stream = `stitch_${name}_mailbox`;
      const { config } = await jsm.streams.info(stream);
      await jsm.streams.delete(stream);
      const ref = c.ref<typeof Counter>({ type: 'counter', id: 'waits' });
      // The stream comes back a second later, as a new leader would: the tell lands, once.
      const told = ref.tell({ type: 'add', by: 1 }, { mode: 'durable', idempotencyKey: 'nl-1' });
      await delay(1000);
      await jsm.streams.add(config);
      await told;
      assert.equal((await jsm.streams.info(stream)).state.messages, 1);
      // None comes back: after its timeout the caller is told the cluster is not set up.
      await jsm.streams.delete(stream);
      const t0 = Date.now();
      await assert.rejects(
        ref.tell({ type: 'add', by: 1 }, { mode: 'durable', idempotencyKey: 'nl-2' }),
        (e: unknown) => e instanceof ClusterNotInitialized && e.message.includes(stream),
      );
      assert.ok(Date.now() - t0 >= 2500, `rejected after ${Date.now() - t0} ms, not at once`);
    } finally {
      await raw.close();
      await c.close();
    }
  });

  test('a durable publish whose answer is lost is sent again with the same message id, not waited out', async () => {
    const name = 'dur-lost-ack';
    const c = await connectCluster({ nats: nats.url, name, askTimeoutMs: 60_000, log: () => undefined });
    const raw = await connect({ servers: nats.url });
    try {
      // The stream stands aside for a responder that ignores a message's first publish, as a server
      // that stopped while handling it would, and answers the next as the stream does.
      await (await jetstreamManager(raw)).streams.delete(`stitch_${name}_mailbox`);
      const ids: string[] = [];
      raw.subscribe(`stitch.${name}.durable.>`, {
        callback: (_e, m) => {
          const id = m.headers?.get('Nats-Msg-Id') ?? '';
          ids.push(id);
          if (ids.filter((x) => x === id).length > 1) m.respond(JSON.stringify({ stream: 'x', seq: 1 }));
        },
      });
      await raw.flush();
      const ref = c.ref<typeof Counter>({ type: 'counter', id: 'lost-ack' });
      const told = ref.tell({ type: 'add', by: 1 }, { mode: 'durable', idempotencyKey: 'lost-1' });
      assert.equal(
        await within(
          told.then(() => 'told'),
          20_000,
        ),
        'told',
      );
      assert.deepEqual(ids, ['counter.lost-ack.lost-1', 'counter.lost-ack.lost-1']);
    } finally {
      await raw.close();
      await c.close();
    }
  });
});

async function waitForAll(ref: { ask(m: { type: 'get' }): Promise<Record<string, number>> }, n: number) {
  for (let i = 0; ; i++) {
    const applied = await ref.ask({ type: 'get' });
    if (Object.keys(applied).length >= n || i > 300) return applied;
    await delay(50);
  }
}

// Coalesced fast-mode messages (Stitch-Batch): many asks in one tick travel as one NATS message and
// each item is still treated exactly like a single message.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, createInbox, headers, type NatsConnection } from '@nats-io/transport-node';
import {
  BadMessage,
  type Cluster,
  connectCluster,
  type EmbeddedNats,
  NoResponders,
  Overloaded,
  startEmbeddedNats,
} from '@stitch/runtime';
import { decode, decodeReplies, encode, isTraceparent, newTraceparent } from '@stitch/runtime/internal';
import { Counter, Echo } from './fixtures/runtime-actors.js';

const CLUSTER = 'batch';
const subject = (type: string, id: string) => `stitch.${CLUSTER}.actor.${type}.${id}`;

describe('coalesced fast-mode messages', () => {
  let nats: EmbeddedNats;
  let host: Cluster;
  let client: Cluster;
  let raw: NatsConnection;

  before(async () => {
    nats = await startEmbeddedNats();
    host = await connectCluster({ nats: nats.url, name: CLUSTER });
    await host.startNode({ actors: [Counter, Echo] });
    client = await connectCluster({ nats: nats.url, name: CLUSTER });
    raw = await connect({ servers: nats.url });
  });

  after(async () => {
    await raw?.close();
    await client?.close();
    await host?.close();
    await nats?.stop();
  });

  /**
   * Counts the NATS messages (and batch headers) that reach an actor's subject. `stop` flushes first:
   * the replies can reach the caller before the watcher's copies of the asks reach the watcher.
   */
  async function watch(s: string): Promise<{ messages: number; batched: number; stop(): Promise<void> }> {
    const seen = {
      messages: 0,
      batched: 0,
      stop: async () => {
        await raw.flush();
        sub.unsubscribe();
      },
    };
    const sub = raw.subscribe(s, {
      callback: (_err, m) => {
        seen.messages++;
        if (m.headers?.get('Stitch-Batch')) seen.batched++;
      },
    });
    await raw.flush();
    return seen;
  }

  test('200 asks in one tick are batched, all answered, applied in send order', async () => {
    const ref = await host.spawn(Counter, { id: 'order' });
    const seen = await watch(subject('counter', 'order'));
    const results = await Promise.all(Array.from({ length: 200 }, () => ref.ask({ type: 'add', by: 1 })));
    await seen.stop();
    assert.deepEqual(
      results,
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
    assert.ok(seen.batched >= 1 && seen.messages < 200, `${seen.messages} messages for 200 asks`);
    await ref.tell({ type: 'add', by: 5 });
    assert.equal(await ref.ask({ type: 'get' }), 205, 'a lone tell and ask keep the single format');
  });

  test("each message names its sender's previous message to the actor (Stitch-Prev): 0 for the first", async () => {
    const [first, second] = await Promise.all([
      host.spawn(Counter, { id: 'prev-1' }),
      host.spawn(Counter, { id: 'prev-2' }),
    ]);
    const fresh = await connectCluster({ nats: nats.url, name: CLUSTER });
    const seen: { subject: string; seq: string; prev: string }[] = [];
    const sub = raw.subscribe(subject('counter', '*'), {
      callback: (_err, m) => {
        seen.push({
          subject: m.subject,
          seq: m.headers?.get('Stitch-Seq') ?? '',
          prev: m.headers?.get('Stitch-Prev') ?? '',
        });
      },
    });
    await raw.flush();
    try {
      const a = fresh.ref<typeof Counter>({ type: first.type, id: first.id });
      const b = fresh.ref<typeof Counter>({ type: second.type, id: second.id });
      await a.ask({ type: 'add', by: 1 });
      await b.ask({ type: 'add', by: 1 });
      await Promise.all([a.ask({ type: 'add', by: 1 }), a.ask({ type: 'add', by: 1 })]);
      await a.tell({ type: 'add', by: 1 });
      await b.ask({ type: 'add', by: 1 });
      await raw.flush();
    } finally {
      sub.unsubscribe();
      await fresh.close();
    }
    for (const id of ['prev-1', 'prev-2']) {
      const to = seen.filter((m) => m.subject === subject('counter', id));
      assert.ok(to.length >= 2, JSON.stringify(seen));
      // The first names none before it (0); each other the count of the one before it to this actor,
      // though the sender's messages to the other actor came in between.
      assert.deepEqual(
        to.map((m) => m.prev),
        ['0', ...to.slice(0, -1).map((m) => m.seq)],
        id,
      );
    }
  });

  test('a message changed after ask() returns is delivered as it was when asked', async () => {
    const ref = await host.spawn(Counter, { id: 'snapshot' });
    const msg = { type: 'add' as const, by: 1 };
    const first = client.ref<typeof Counter>(ref).ask(msg);
    msg.by = 100;
    const second = client.ref<typeof Counter>(ref).ask(msg);
    assert.deepEqual(await Promise.all([first, second]), [1, 101]);
  });

  test('every item keeps its trace context up to its handler; a malformed one is replaced', async () => {
    const ref = client.ref<typeof Echo>(await host.spawn(Echo, { id: 'trace' }));
    const lone = newTraceparent();
    assert.equal(await ref.ask({ type: 'trace' }, { traceparent: lone }), lone);
    const sent = [newTraceparent(), newTraceparent(), newTraceparent()];
    const seen = await Promise.all(sent.map((traceparent) => ref.ask({ type: 'trace' }, { traceparent })));
    assert.deepEqual(seen, sent, 'batched items keep their own trace context');

    const inbox = createInbox();
    const got = new Promise<ReturnType<typeof decodeReplies>>((resolve) => {
      const sub = raw.subscribe(`${inbox}.*`, {
        callback: (_err, m) => {
          resolve(decodeReplies(m.data));
          sub.unsubscribe();
        },
      });
    });
    const h = headers();
    h.set('Stitch-Batch', '2');
    h.set('Stitch-Sender', 'raw-test');
    const item = (n: number, traceparent: string) => [
      `${inbox}.${n}`,
      traceparent,
      Date.now() + 5000,
      null,
      Buffer.from(encode({ type: 'trace' })),
    ];
    raw.publish(subject('echo', 'trace'), encode([item(0, 'bogus'), item(1, lone)]), {
      headers: h,
      reply: `${inbox}.0`,
    });
    const [fresh, kept] = await got;
    assert.ok(fresh?.ok && isTraceparent(String(fresh.value)) && fresh.value !== 'bogus');
    assert.ok(kept?.ok && kept.value === lone);

    const single = headers();
    single.set('traceparent', 'bogus');
    const reply = await raw.request(subject('echo', 'trace'), encode({ type: 'trace' }), {
      timeout: 2000,
      headers: single,
    });
    const seenSingle = String(decode(reply.data));
    assert.ok(isTraceparent(seenSingle) && seenSingle !== 'bogus', 'a lone message is treated alike');
  });

  test('per-item errors: unknown handler and over capacity fail alone, the rest succeed', async () => {
    const counter = await host.spawn(Counter, { id: 'mixed' });
    const settled = await Promise.allSettled([
      counter.ask({ type: 'add', by: 1 }),
      counter.ask({ type: 'nope' } as never),
      counter.ask({ type: 'add', by: 1 }),
    ]);
    assert.equal(settled[0]!.status === 'fulfilled' && settled[0].value, 1);
    assert.ok(settled[1]!.status === 'rejected' && settled[1].reason instanceof BadMessage);
    assert.equal(settled[2]!.status === 'fulfilled' && settled[2].value, 2);

    const echo = await host.spawn(Echo, { id: 'cap' });
    const seen = await watch(subject('echo', 'cap'));
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () => echo.ask({ type: 'sleep', ms: 50 })),
    );
    await seen.stop();
    assert.equal(seen.messages, 1, 'the six asks went as one batch');
    // perCaller is 3: three run or queue, three are refused, each with its own typed error.
    assert.equal(results.filter((r) => r.status === 'fulfilled' && r.value === 50).length, 3);
    assert.equal(results.filter((r) => r.status === 'rejected' && r.reason instanceof Overloaded).length, 3);
  });

  test('an item whose body is not msgpack gets BadMessage; its batch mates are answered', async () => {
    await host.spawn(Counter, { id: 'raw' });
    const inbox = createInbox();
    const got = new Promise<ReturnType<typeof decodeReplies>>((resolve) => {
      const sub = raw.subscribe(`${inbox}.*`, {
        callback: (_err, m) => {
          assert.equal(m.headers?.get('Stitch-Batch'), '3');
          resolve(decodeReplies(m.data));
          sub.unsubscribe();
        },
      });
    });
    // Bodies sent as bin (the message's bytes) are decoded one by one, so one bad body fails alone.
    const item = (n: number, body: Uint8Array) => [
      `${inbox}.${n}`,
      newTraceparent(),
      Date.now() + 5000,
      null,
      Buffer.from(body),
    ];
    const h = headers();
    h.set('Stitch-Batch', '3');
    h.set('Stitch-Sender', 'raw-test');
    raw.publish(
      subject('counter', 'raw'),
      encode([
        item(0, encode({ type: 'add', by: 2 })),
        item(1, new Uint8Array([0xc1, 0xff])),
        item(2, encode({ type: 'get' })),
      ]),
      { headers: h, reply: `${inbox}.0` },
    );
    const replies = await got;
    const by = new Map(replies.map((r) => [r.reply.slice(inbox.length + 1), r]));
    assert.equal(by.size, 3);
    assert.deepEqual(by.get('0'), { reply: `${inbox}.0`, ok: true, value: 2 });
    const bad = by.get('1')!;
    assert.ok(!bad.ok && bad.error.code === 'ACTOR_BAD_MESSAGE');
    assert.deepEqual(by.get('2'), { reply: `${inbox}.2`, ok: true, value: 2 });
  });

  test('a batch to a subject nobody serves rejects every ask with NoResponders', async () => {
    const missing = client.ref<typeof Counter>({ type: 'counter', id: 'nobody' });
    const started = Date.now();
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => missing.ask({ type: 'get' }, { timeoutMs: 4000 })),
    );
    assert.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof NoResponders));
    assert.ok(Date.now() - started < 3000, 'answered by the server, not by the timeout');
  });

  test('repeats of one idempotency key inside and across batches keep one effect', async () => {
    const ref = await host.spawn(Counter, { id: 'idem' });
    const key = 'once-1';
    const first = await Promise.all(
      Array.from({ length: 5 }, () => ref.ask({ type: 'add', by: 10 }, { idempotencyKey: key, retries: 1 })),
    );
    assert.deepEqual(first, [10, 10, 10, 10, 10]);
    const again = await Promise.all([
      ref.ask({ type: 'add', by: 10 }, { idempotencyKey: key }),
      ref.ask({ type: 'add', by: 1 }),
    ]);
    assert.deepEqual(again, [10, 11]);
    assert.equal(await ref.ask({ type: 'get' }), 11);
  });
});

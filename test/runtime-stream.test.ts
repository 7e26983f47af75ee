// Streams from actors (ref.stream / ctx.stream) through a real nats-server: order, back-pressure,
// cancellation, deadlines, errors, and frames forged by another client.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  type ActorContext,
  BadMessage,
  type Cluster,
  connectCluster,
  defineActor,
  type EmbeddedNats,
  RemoteError,
  StreamCancelled,
  startEmbeddedNats,
} from '@stitch/runtime';
import { encode } from '@stitch/runtime/internal';

const CLUSTER = 'streams';

/** What the producer saw, read by the test (the actor runs in this process, its messages cross NATS). */
const seen = { written: 0, cancelled: '' };

const Producer = defineActor({
  type: 'producer',
  handlers: {
    count: async (_s: null, msg: { n: number; failAt?: number }, ctx: ActorContext) => {
      const stream = ctx.stream;
      if (!stream) throw new Error('ask with ref.stream()');
      seen.written = 0;
      seen.cancelled = '';
      try {
        for (let i = 0; i < msg.n; i++) {
          if (i === msg.failAt) throw Object.assign(new Error(`failed at ${i}`), { code: 'COUNT_FAILED' });
          await stream.write({ i });
          seen.written = stream.written;
        }
      } catch (err) {
        if (stream.signal.aborted) seen.cancelled = (stream.signal.reason as Error).message;
        throw err;
      }
      return { total: msg.n };
    },
    plain: () => 'no stream',
  },
  init: () => null,
});

const until = async (ok: () => boolean, what: string) => {
  for (let i = 0; i < 200 && !ok(); i++) await delay(25);
  assert.ok(ok(), what);
};

describe('actor streams', () => {
  let nats: EmbeddedNats;
  let host: Cluster;
  let client: Cluster;
  let raw: NatsConnection;

  before(async () => {
    nats = await startEmbeddedNats();
    host = await connectCluster({ nats: nats.url, name: CLUSTER });
    await host.startNode({ actors: [Producer] });
    client = await connectCluster({ nats: nats.url, name: CLUSTER });
    raw = await connect({ servers: nats.url });
  });

  after(async () => {
    await raw?.close();
    await client?.close();
    await host?.close();
    await nats?.stop();
  });

  test('every item arrives once, in order, then the reply', async () => {
    const ref = await client.spawn(Producer, { id: 'p-order' });
    const stream = ref.stream<{ i: number }>({ type: 'count', n: 500 }, { window: 8 });
    const got: number[] = [];
    for await (const item of stream) got.push(item.i);
    assert.deepEqual(
      got,
      Array.from({ length: 500 }, (_, i) => i),
    );
    assert.deepEqual(await stream.result, { total: 500 });
    // A plain ask of the same actor still works, and its handler sees no stream.
    assert.equal(await ref.ask({ type: 'plain' }), 'no stream');
  });

  test('a slow reader holds the producer to the window', async () => {
    const ref = await client.spawn(Producer, { id: 'p-slow' });
    const window = 4;
    const stream = ref.stream<{ i: number }>({ type: 'count', n: 40 }, { window });
    let read = 0;
    for await (const _ of stream) {
      read++;
      if (read % 10 === 0) {
        // Time enough for the producer to run ahead if nothing held it back.
        await delay(150);
        assert.ok(seen.written <= read + window, `written ${seen.written} after ${read} read`);
      }
    }
    assert.equal(read, 40);
  });

  test('breaking out of the loop cancels the work at the actor', async () => {
    const ref = await client.spawn(Producer, { id: 'p-cancel' });
    const stream = ref.stream<{ i: number }>({ type: 'count', n: 100_000 }, { window: 4 });
    let read = 0;
    for await (const _ of stream) if (++read === 5) break;
    await until(() => seen.cancelled !== '', 'the producer saw the cancel');
    assert.match(seen.cancelled, /cancelled/);
    assert.ok(seen.written < 100, `the producer stopped early (wrote ${seen.written})`);
    await assert.rejects(stream.result, StreamCancelled);
    // The actor serves the next request.
    const again = ref.stream<{ i: number }>({ type: 'count', n: 3 });
    const items: number[] = [];
    for await (const item of again) items.push(item.i);
    assert.deepEqual(items, [0, 1, 2]);
  });

  test('an abort signal and a passed deadline stop the producer', async () => {
    const ref = await client.spawn(Producer, { id: 'p-abort' });
    const controller = new AbortController();
    const stream = ref.stream<{ i: number }>(
      { type: 'count', n: 100_000 },
      { window: 2, signal: controller.signal },
    );
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    controller.abort();
    await assert.rejects(it.next(), StreamCancelled);
    await until(() => seen.cancelled !== '', 'the producer saw the abort');

    // Nobody reads: the producer blocks on the window until the caller's deadline cancels it.
    const unread = ref.stream({ type: 'count', n: 100_000 }, { window: 2, timeoutMs: 300 });
    await until(() => /deadline/.test(seen.cancelled), 'the deadline cancelled the producer');
    await assert.rejects(unread.result);
    assert.equal(seen.written, 2);
  });

  test('a handler error ends the stream after the items it wrote', async () => {
    const ref = await client.spawn(Producer, { id: 'p-fail' });
    const stream = ref.stream<{ i: number }>({ type: 'count', n: 10, failAt: 3 });
    const got: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const item of stream) got.push(item.i);
      })(),
      (err: unknown) => err instanceof RemoteError && err.code === 'COUNT_FAILED',
    );
    assert.deepEqual(got, [0, 1, 2]);
  });

  test('frames forged into the inbox change nothing; a bad stream request is refused', async () => {
    const ref = await client.spawn(Producer, { id: 'p-forged' });
    // A client that can read every inbox (no permissions on this server) learns the reader's inbox
    // from the first frame and injects garbage, far and repeated sequence numbers, and a false end.
    const spy = raw.subscribe('_INBOX.>', {
      callback: (_err, m) => {
        if (!m.subject.includes('.') || m.data.length === 0) return;
        raw.publish(m.subject, new Uint8Array([0xc1, 0xff]));
        raw.publish(m.subject, encode({ t: 'item', seq: 1_000_000, v: { i: -1 } }));
        raw.publish(m.subject, encode({ t: 'item', seq: 0, v: { i: -2 } }));
        raw.publish(m.subject, encode({ t: 'open', ctl: 'stitch.streams.actor.x' }));
      },
      max: 5,
    });
    const stream = ref.stream<{ i: number }>({ type: 'count', n: 20 }, { window: 4 });
    const got: number[] = [];
    for await (const item of stream) got.push(item.i);
    spy.unsubscribe();
    // The forged seq-0 item may win the race with the real one; either way no value outside the
    // producer's range appears, none twice, and nothing is missing.
    assert.equal(got.length, 20);
    assert.ok(got.slice(1).every((v, k) => v === k + 1));
    assert.ok(stream.dropped > 0);

    const bad = [
      { inbox: 'stitch.streams.actor.producer.p-forged', window: 4 },
      { inbox: '_INBOX.x', window: 0 },
      { inbox: '_INBOX.x.*', window: 4 },
      'not an object',
    ];
    for (const $stream of bad) {
      await assert.rejects(
        ref.ask({ type: 'count', n: 1, $stream } as never),
        (err: unknown) => err instanceof BadMessage,
        JSON.stringify($stream),
      );
    }
    assert.equal(await ref.ask({ type: 'plain' }), 'no stream');
  });
});

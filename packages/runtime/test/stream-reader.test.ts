// The reader of a stream against a real nats-server, with the test as the producer: core NATS may
// drop a frame across a reconnect, and a lost item or credit must end or resume the stream, never
// leave the loop waiting for good.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { Msg } from '@nats-io/transport-node';
import { natsForTests } from '../../../test/fixtures/nats-connection.js';
import { StreamBroken } from '../src/errors.js';
import { encodeFrame, parseReaderFrame, type StreamSpec } from '../src/stream/frames.js';
import { ActorStream } from '../src/stream/reader.js';
import { ManualClock } from './fixtures/manual-clock.js';

const server = natsForTests();

/** Waits (bounded) until `ok()` holds: the frames cross the server. */
async function until(ok: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !ok(); i++) await delay(10);
  assert.ok(ok(), what);
}

/** A stream whose producer is the test: `spec` once the reader asked, and the credits it sent. */
function playProducer(clock: ManualClock, window: number) {
  const nc = server.nc;
  const ctl = `_INBOX.ctl.${Math.random().toString(36).slice(2)}`;
  const credits: number[] = [];
  nc.subscribe(ctl, {
    callback: (_err: Error | null, m: Msg) => {
      const f = parseReaderFrame(m.data);
      if (f?.t === 'credit') credits.push(f.read);
    },
  });
  let spec: StreamSpec | undefined;
  let reply: (v: unknown) => void = () => undefined;
  const stream = new ActorStream<number>(nc, '_INBOX', clock, { window }, (s) => {
    spec = s;
    return new Promise((resolve) => {
      reply = resolve;
    });
  });
  const send = (frame: Parameters<typeof encodeFrame>[0]) => nc.publish(spec!.inbox, encodeFrame(frame));
  send({ t: 'open', ctl });
  // The items the loop has read, and the loop itself (settling as the stream ends).
  const got: number[] = [];
  const read = (async () => {
    for await (const v of stream) got.push(v);
  })();
  return { stream, send, credits, got, read, reply: (v: unknown) => reply(v) };
}

test('an item lost before the end frame ends the stream broken once the grace after the reply passes', async () => {
  const clock = new ManualClock(0);
  const p = playProducer(clock, 8);
  const { got, read } = p;
  const failed = read.then(
    () => undefined,
    (e: unknown) => e,
  );
  p.send({ t: 'item', seq: 0, v: 0 });
  p.send({ t: 'item', seq: 1, v: 1 });
  // Item 2 never arrives; 3 and the end do.
  p.send({ t: 'item', seq: 3, v: 3 });
  p.send({ t: 'end', count: 4 });
  await server.nc.flush();
  await until(() => got.length === 2, 'the items before the gap are read');
  p.reply('done');
  await p.stream.result;
  await delay(20);
  clock.advance(2000);
  const err = await failed;
  assert.ok(err instanceof StreamBroken, String(err));
  assert.match((err as Error).message, /item 2 of the 4/);
  assert.deepEqual(got, [0, 1]);
});

test('a late item within the grace completes the stream', async () => {
  const clock = new ManualClock(0);
  const p = playProducer(clock, 8);
  const { got, read } = p;
  p.send({ t: 'item', seq: 0, v: 0 });
  p.send({ t: 'end', count: 2 });
  p.reply('done');
  await p.stream.result;
  clock.advance(1000);
  p.send({ t: 'item', seq: 1, v: 1 });
  await read;
  assert.deepEqual(got, [0, 1]);
});

test('a lost credit is sent again while the loop waits, so the producer goes on', async () => {
  const clock = new ManualClock(0);
  const p = playProducer(clock, 4);
  const { got, read } = p;
  for (let i = 0; i < 4; i++) p.send({ t: 'item', seq: i, v: i });
  await until(() => got.length === 4 && p.credits.length > 0, 'the window is read and credited');
  // Suppose that credit was lost: the producer still waits with 4 items unread as it sees it. The
  // loop, waiting for item 4, repeats its credit for all it has read.
  p.credits.length = 0;
  clock.advance(1000);
  await until(() => p.credits.includes(4), 'the credit is repeated');
  p.send({ t: 'item', seq: 4, v: 4 });
  p.send({ t: 'end', count: 5 });
  p.reply('done');
  await read;
  assert.deepEqual(got, [0, 1, 2, 3, 4]);
});

// EventChannel, the bounded buffer between a request's ops and the caller reading its stream: every
// producer that waits for room in it is woken, by the reader making room or by a cancel.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate } from 'node:timers/promises';
import { RuntimeErrorCode } from '@stitch/runtime';
import { within } from '../../../test/fixtures/wait.js';
import { EventChannel, type StreamEvent } from '../src/request-stream.js';

/** Far longer than the wake-ups take; a producer never woken shows as this bound passing. */
const BOUND_MS = 10_000;

const event = (opId: string): StreamEvent => ({ opId, item: { token: 1 } });

/** Whether `p` has settled once the callbacks already due have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await setImmediate();
  return done;
}

/** Pushes events until the buffer is full, then two more from producers `a` and `b`, which wait for room. */
async function fullWithTwoWaiting(channel: EventChannel<unknown>) {
  const buffered: string[] = [];
  for (;;) {
    const id = `e${buffered.length}`;
    const a = channel.push(event(id));
    if (!(await settled(a))) {
      const b = channel.push(event('b'));
      assert.equal(await settled(b), false, 'b waits for room too');
      return { buffered, a, b, aId: id };
    }
    buffered.push(id);
  }
}

test('every producer waiting for room is woken as the reader makes it, in the order they came', async () => {
  const channel = new EventChannel<unknown>({});
  const { buffered, a, b, aId } = await fullWithTwoWaiting(channel);
  const events = channel[Symbol.asyncIterator]();
  try {
    const read: string[] = [];
    for (let i = 0; i < buffered.length + 2; i++) {
      const next = await within(events.next(), BOUND_MS);
      if (typeof next === 'string') break;
      read.push((next.value as StreamEvent).opId);
    }
    assert.deepEqual(read, [...buffered, aId, 'b']);
    assert.equal(
      await within(
        a.then(() => 'pushed'),
        BOUND_MS,
      ),
      'pushed',
    );
    assert.equal(
      await within(
        b.then(() => 'pushed'),
        BOUND_MS,
      ),
      'pushed',
    );
  } finally {
    // Not events.return(): it would wait behind a read still waiting for an event.
    channel.cancel();
  }
});

test('cancel() settles every producer waiting for room: their pushes reject as cancelled', async () => {
  const channel = new EventChannel<unknown>({});
  const { a, b } = await fullWithTwoWaiting(channel);
  channel.cancel();
  const outcome = (p: Promise<void>) =>
    within(
      p.then(
        () => 'pushed',
        (err: { code?: string }) => err.code,
      ),
      BOUND_MS,
    );
  assert.equal(await outcome(a), RuntimeErrorCode.StreamCancelled);
  assert.equal(await outcome(b), RuntimeErrorCode.StreamCancelled);
});

// The purge queue's pacing: a few purges in flight at once, every one made in the order asked, and
// a bound on what waits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JetStreamManager } from '@nats-io/jetstream';
import { PurgeQueue, purgeQueue } from '../src/actor/purge-queue.js';

/** A stand-in for the API's purge that answers when told to; no bus is involved. */
function pausedJsm() {
  const asked: string[] = [];
  const pending: (() => void)[] = [];
  let inFlight = 0;
  let most = 0;
  const jsm = {
    streams: {
      purge: (_stream: string, opts: { filter: string }) =>
        new Promise<void>((resolve) => {
          asked.push(opts.filter);
          inFlight++;
          most = Math.max(most, inFlight);
          pending.push(() => {
            inFlight--;
            resolve();
          });
        }),
    },
  } as unknown as JetStreamManager;
  const answerAll = async () => {
    while (pending.length > 0) {
      pending.shift()!();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { jsm, asked, answerAll, most: () => most };
}

test('purges go a few at a time, every one in the order asked', async () => {
  const { jsm, asked, answerAll, most } = pausedJsm();
  const q = new PurgeQueue(jsm);
  const errors: unknown[] = [];
  for (let i = 0; i < 5000; i++) q.purge('S', `s.${i}`, (e) => errors.push(e));
  assert.equal(asked.length, 2, 'two in flight, the rest wait');
  assert.equal(q.waiting, 4998);
  await answerAll();
  assert.equal(most(), 2);
  assert.deepEqual(
    asked,
    Array.from({ length: 5000 }, (_, i) => `s.${i}`),
  );
  assert.equal(q.waiting, 0);
  assert.deepEqual(errors, []);
});

test('a failed purge is reported and the queue goes on', async () => {
  let calls = 0;
  const jsm = {
    streams: {
      purge: async () => {
        calls++;
        if (calls === 1) throw new Error('stream gone');
      },
    },
  } as unknown as JetStreamManager;
  const q = new PurgeQueue(jsm);
  const errors: unknown[] = [];
  for (let i = 0; i < 3; i++) q.purge('S', `s.${i}`, (e) => errors.push(e));
  for (let i = 0; i < 10 && calls < 3; i++) await new Promise((r) => setImmediate(r));
  assert.equal(calls, 3);
  assert.equal(errors.length, 1);
});

test('past its bound the queue makes no more purges and says so once', async () => {
  const { jsm } = pausedJsm();
  const q = new PurgeQueue(jsm);
  const errors: unknown[] = [];
  for (let i = 0; i < 100_010; i++) q.purge('S', `s.${i}`, (e) => errors.push(e));
  assert.equal(q.waiting, 100_000);
  assert.equal(q.notMade, 8);
  assert.equal(errors.length, 1);
});

test('one queue per connection', () => {
  const a = pausedJsm().jsm;
  assert.equal(purgeQueue(a), purgeQueue(a));
  assert.notEqual(purgeQueue(a), purgeQueue(pausedJsm().jsm));
});

// The durable answers a node keeps to send again after a reconnect: the last few seconds' only, and
// never more than its count and byte limits, whatever the rate.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentReplies } from '../src/actor/recent-replies.js';
import type { Outcome } from '../src/wire/outcome.js';
import { ManualClock } from './fixtures/manual-clock.js';

const answer = (n: number): Outcome => ({ ok: true, data: new Uint8Array(n) });

test('answers older than the replay window are not sent again; the rest are, oldest first', () => {
  const clock = new ManualClock();
  const recent = new RecentReplies(clock);
  const sent: string[] = [];
  const sender = { send: (subject: string) => sent.push(subject) };
  recent.note(sender, 'a', answer(1));
  clock.advance(3000);
  recent.note(sender, 'b', answer(1));
  clock.advance(2500);
  recent.note(sender, 'c', answer(1));
  assert.equal(recent.replay(), 2);
  assert.deepEqual(sent, ['b', 'c']);
  clock.advance(10_000);
  assert.equal(recent.replay(), 0);
  assert.equal(recent.size, 0);
});

test('a burst keeps the latest answers within the count and byte limits', () => {
  const clock = new ManualClock();
  const recent = new RecentReplies(clock);
  const sender = { send: () => undefined };
  for (let i = 0; i < 25_000; i++) recent.note(sender, `r.${i}`, answer(10));
  assert.equal(recent.size, 10_000);
  for (let i = 0; i < 40; i++) recent.note(sender, `big.${i}`, answer(1024 * 1024));
  assert.ok(recent.size <= 16, `${recent.size} answers of 1 MiB kept`);
  const sent: string[] = [];
  recent.replay();
  recent.note({ send: (s: string) => sent.push(s) }, 'last', answer(1));
  assert.equal(recent.replay() > 0, true);
  assert.equal(sent.at(-1), 'last');
});

test('an answer that is a view of a larger buffer is kept as a copy of its own bytes', () => {
  const recent = new RecentReplies(new ManualClock());
  // What `encode` returns after a large message: a few bytes of msgpackr's shared buffer.
  const shared = new Uint8Array(4 * 1024 * 1024);
  shared.set([1, 2], 64);
  const sent: [string, Outcome][] = [];
  const sender = { send: (s: string, out: Outcome) => sent.push([s, out]) };
  recent.note(sender, 'a.ü', { ok: true, data: shared.subarray(64, 66) });
  shared.set([9, 9], 64); // the shared buffer is written again by the next encode
  recent.note(sender, 'b', { ok: false, code: 'HANDLER_ERROR', name: 'HandlerError', message: 'no' });
  assert.equal(recent.replay(), 2);
  const [[subject, out], [failedSubject, failed]] = sent as [[string, Outcome], [string, Outcome]];
  assert.equal(subject, 'a.ü', 'a subject that is not ASCII comes back as it was');
  const data = (out as { ok: true; data: Uint8Array }).data;
  assert.deepEqual([...data], [1, 2]);
  assert.ok(data.buffer.byteLength < shared.buffer.byteLength, 'does not hold the shared buffer');
  assert.equal(failedSubject, 'b');
  assert.deepEqual(failed, { ok: false, code: 'HANDLER_ERROR', name: 'HandlerError', message: 'no' });
});

test('answers larger than a slab get one of their own; older ones leave as new ones come', () => {
  const clock = new ManualClock();
  const recent = new RecentReplies(clock);
  const sent: Uint8Array[] = [];
  const sender = { send: (_s: string, out: Outcome) => out.ok && sent.push(out.data) };
  for (let i = 0; i < 8; i++) {
    clock.advance(6000);
    recent.note(sender, `r.${i}`, { ok: true, data: new Uint8Array(512 * 1024).fill(i) });
  }
  assert.equal(recent.size, 1, 'the answers of earlier windows are gone');
  assert.equal(recent.replay(), 1);
  assert.equal(sent[0]![0], 7);
  assert.equal(sent[0]!.buffer.byteLength, 512 * 1024 + 3 * 'r.7'.length, 'a slab of its own');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeptOutcomes } from '../src/actor/kept-outcomes.js';

const ok = (n: number) => ({ ok: true as const, data: new Uint8Array([n]) });

test('dropFrom forgets the keys applied from a number on, and they can be applied again', () => {
  const kept = new KeptOutcomes();
  for (let i = 0; i < 10; i++) kept.add(`k${i}`, ok(i));
  kept.dropBelow(3);
  kept.dropFrom(6);
  assert.equal(kept.next, 6);
  assert.equal(kept.get('k2'), undefined, 'dropped below');
  assert.deepEqual(kept.get('k5'), ok(5));
  for (const k of ['k6', 'k9']) assert.equal(kept.get(k), undefined, `${k} rolled back`);
  kept.add('k6', ok(60));
  assert.equal(kept.next, 7);
  assert.deepEqual(kept.get('k6'), ok(60));
  assert.deepEqual(
    kept.slice(3).map((e) => e[0]),
    ['k3', 'k4', 'k5', 'k6'],
  );
  kept.dropFrom(20);
  assert.equal(kept.next, 7, 'past the end: nothing to drop');
});

test('a kept reply that is a view of a larger buffer is kept as its own bytes', () => {
  const kept = new KeptOutcomes();
  // What `encode` returns after a large message: a few bytes of msgpackr's shared buffer.
  const shared = new Uint8Array(4 * 1024 * 1024);
  shared.set([7, 8, 9], 1000);
  kept.add('k', { ok: true, data: shared.subarray(1000, 1003) });
  const out = kept.get('k') as { ok: true; data: Uint8Array };
  assert.deepEqual([...out.data], [7, 8, 9]);
  assert.equal(out.data.buffer.byteLength, 3, 'holds only its own bytes');
});

test('seqsBelow gives the stream sequences of the entries a dropBelow would forget, durable ones only', () => {
  const kept = new KeptOutcomes();
  kept.add('fast', ok(0));
  for (let i = 1; i < 6; i++) kept.add(`k${i}`, ok(i), 100 + i);
  // Entries as a record stored them, one with a sequence that is not one.
  kept.restore(6, [
    ['r6', new Uint8Array([6]), 106],
    ['r7', new Uint8Array([7]), -1 as never],
  ]);
  assert.deepEqual(kept.seqsBelow(8), [106]);
  const fresh = new KeptOutcomes();
  for (let i = 0; i < 6; i++) fresh.add(`k${i}`, ok(i), i === 0 ? undefined : 100 + i);
  assert.deepEqual(fresh.seqsBelow(4), [101, 102, 103]);
  fresh.dropBelow(2);
  assert.deepEqual(fresh.seqsBelow(4), [102, 103], 'what is forgotten already is not given');
});

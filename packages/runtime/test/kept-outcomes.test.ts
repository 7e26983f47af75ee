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

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentOutcomes } from '../src/actor/recent-outcomes.js';

const reply = (bytes: number) => ({ ok: true as const, data: new Uint8Array(bytes) });

test('a retried key gets the remembered reply; a large reply is remembered as applied only', () => {
  const recent = new RecentOutcomes();
  recent.remember('small', reply(10));
  assert.deepEqual(recent.get('small'), reply(10));
  recent.remember('large', reply(1 << 20));
  const large = recent.get('large');
  assert.equal(large?.ok, false);
  assert.equal(large?.ok === false && large.code, 'ACTOR_DUPLICATE');
});

test('remembered replies stay under the byte budget however many keys arrive (oldest forgotten first)', () => {
  const recent = new RecentOutcomes();
  // 900 replies of 60 KiB each: under the key limit, 54 MB in all — far above the byte budget.
  for (let i = 0; i < 900; i++) recent.remember(`k${i}`, reply(60 * 1024));
  let kept = 0;
  let bytes = 0;
  for (let i = 0; i < 900; i++) {
    const out = recent.get(`k${i}`);
    if (!out) continue;
    kept++;
    if (out.ok) bytes += out.data.length;
  }
  assert.ok(bytes <= 4 * 1024 * 1024, `kept ${bytes} bytes`);
  assert.ok(kept > 0 && recent.get('k899') !== undefined, 'the newest is kept');
  assert.equal(recent.get('k0'), undefined, 'the oldest is forgotten');
});

test('at most 1000 keys are remembered', () => {
  const recent = new RecentOutcomes();
  for (let i = 0; i < 1500; i++) recent.remember(`k${i}`, reply(1));
  assert.equal(recent.get('k499'), undefined);
  assert.notEqual(recent.get('k500'), undefined);
});

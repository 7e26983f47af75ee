import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidOptions } from '../src/errors.js';
import { LoadShedder, resolveShedding, SHEDDING_SAMPLE_MS } from '../src/node/load-shedder.js';

const heapAt = (share: { used: number }) => () => ({ used: share.used, limit: 1000 });

test('a late event loop starts shedding; it ends once the loop has kept near time for a while', () => {
  const s = new LoadShedder(resolveShedding({ lagMs: 100, heapFraction: 1 }), heapAt({ used: 0 }));
  s.sample(0, 20);
  assert.equal(s.reason, undefined);
  s.sample(50, 450);
  assert.match(s.reason ?? '', /event loop runs 450 ms late \(shedding\.lagMs 100\)/);
  // Under the bound but above 80 % of it: still shedding, and the calm has not begun.
  s.sample(100, 90);
  s.sample(400, 90);
  assert.ok(s.reason);
  // Calm from 450: over after 200 ms of it, and a late sample in between starts it again.
  s.sample(450, 10);
  s.sample(550, 10);
  assert.ok(s.reason);
  s.sample(600, 200);
  s.sample(650, 10);
  s.sample(800, 10);
  assert.ok(s.reason, 'the calm began again at 650');
  s.sample(850, 10);
  assert.equal(s.reason, undefined);
});

test('a heap in use above its share of the limit sheds until it is back under 80 % of it', () => {
  const heap = { used: 500 };
  const s = new LoadShedder(resolveShedding({ heapFraction: 0.9 }), heapAt(heap));
  s.sample(0, 0);
  assert.equal(s.reason, undefined);
  heap.used = 950;
  s.sample(50, 0);
  assert.match(s.reason ?? '', /heap is 95\.0 % full \(shedding\.heapFraction 0\.9\)/);
  heap.used = 800;
  s.sample(100, 0);
  s.sample(400, 0);
  assert.ok(s.reason, '800 of 1000 is above 80 % of the bound (720)');
  heap.used = 700;
  s.sample(450, 0);
  s.sample(650, 0);
  assert.equal(s.reason, undefined);
});

test('each message shed is counted; the inspection says why it sheds while it does', () => {
  const heap = { used: 0 };
  const s = new LoadShedder(resolveShedding(undefined), heapAt(heap));
  assert.equal(s.refusal(), undefined, 'a message while it does not shed is not refused');
  assert.deepEqual(s.inspect(), { shed: 0 });
  heap.used = 999;
  s.sample(0, 10_000);
  assert.equal(s.refusal(), 'its heap is 99.9 % full (shedding.heapFraction 0.9)');
  s.refusal();
  // The default watches the heap only: a loop late by 10 s is not a reason of its own.
  assert.deepEqual(s.inspect(), { reason: 'its heap is 99.9 % full (shedding.heapFraction 0.9)', shed: 2 });
});

test('shedding off, or options out of range', () => {
  const s = new LoadShedder(resolveShedding(false), () => ({ used: 1000, limit: 1000 }));
  s.sample(0, 1e6);
  assert.equal(s.reason, undefined);
  for (const bad of [{ heapFraction: 0 }, { heapFraction: 1.5 }, { heapFraction: Number.NaN }, { lagMs: 10 }])
    assert.throws(() => resolveShedding(bad), InvalidOptions, JSON.stringify(bad));
  assert.deepEqual(resolveShedding({ lagMs: SHEDDING_SAMPLE_MS }), { heapFraction: 0.9, lagMs: 50 });
});

test('a shedder looks at the heap as it starts: a node over its bound sheds from its first record on', () => {
  const s = new LoadShedder(resolveShedding({ heapFraction: 0.5 }), heapAt({ used: 600 }));
  assert.equal(s.reason, undefined, 'nothing measured before it starts');
  s.start();
  try {
    assert.match(s.reason ?? '', /heap is 60\.0 % full/);
  } finally {
    s.stop();
  }
});

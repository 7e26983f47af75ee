import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rebuildError } from '../src/errors.js';
import { ActorRef, defineActor, InvalidOptions, Overloaded, RemoteError } from '../src/index.js';

test('defineActor validates the definition at the edge', () => {
  assert.throws(() => defineActor({ type: 'a.b', handlers: { x: () => 1 } }), InvalidOptions);
  assert.throws(() => defineActor({ type: 'a', handlers: {} }), InvalidOptions);
  assert.throws(() => defineActor({ type: 'a', handlers: { $x: () => 1 } }), InvalidOptions);
  assert.throws(() => defineActor({ type: 'a', handlers: { x: () => 1 }, concurrency: 0 }), InvalidOptions);
  assert.throws(
    () => defineActor({ type: 'a', handlers: { x: () => 1 }, concurrencyPerNode: 1.5 }),
    /concurrencyPerNode must be an integer ≥ 1/,
  );
  assert.throws(
    () => defineActor({ type: 'a', handlers: { x: () => 1 }, setupHandlers: ['y'] }),
    /setupHandlers names "y", which is not one of its handlers/,
  );
  assert.throws(
    () => defineActor({ type: 'a', handlers: { x: () => 1 }, snapshot: (s) => s }),
    /snapshot and restore/,
  );
});

test('a ref serializes to its type and id only', () => {
  const transport = {
    ask: async () => 1,
    tell: async () => {},
    stream: () => {
      throw new Error('not used');
    },
  };
  const ref = new ActorRef(transport, { type: 'counter', id: 'c1' });
  assert.equal(JSON.stringify(ref), '{"type":"counter","id":"c1"}');
  assert.deepEqual(Object.keys(ref), ['type', 'id']);
  assert.throws(() => new ActorRef(transport, { type: 'counter', id: 'a b' }), InvalidOptions);
});

test('errors that cross NATS are rebuilt: known codes as their class, others as RemoteError', () => {
  const o = rebuildError('ACTOR_OVERLOADED', 'Overloaded', 'full');
  assert.ok(o instanceof Overloaded);
  assert.equal(o.message, 'full');
  const r = rebuildError('QUOTA', 'QuotaError', 'no more');
  assert.ok(r instanceof RemoteError);
  assert.equal(r.code, 'QUOTA');
  assert.equal(r.remoteName, 'QuotaError');
});

test('persist is checked at definition: it needs snapshot, and everyMs or everyMessages as positive integers', () => {
  const base = { type: 'p', handlers: { x: () => 1 } };
  const snap = { snapshot: (s: unknown) => s, restore: (s: unknown) => s };
  assert.throws(() => defineActor({ ...base, persist: { everyMessages: 1 } }), /define snapshot and restore/);
  assert.throws(() => defineActor({ ...base, ...snap, persist: {} }), /everyMs, everyMessages or both/);
  assert.throws(() => defineActor({ ...base, ...snap, persist: { everyMs: 0 } }), InvalidOptions);
  assert.throws(() => defineActor({ ...base, ...snap, persist: { everyMessages: 1.5 } }), InvalidOptions);
  assert.doesNotThrow(() => defineActor({ ...base, ...snap, persist: { everyMs: 100, everyMessages: 10 } }));
});

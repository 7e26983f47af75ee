// Periodic saves of fast-mode snapshots under a manual clock: by message count, by time, one save at
// a time, a failed save retried by the next one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { Persister } from '../src/actor/persister.js';
import { ManualClock } from './fixtures/manual-clock.js';

function saver() {
  const calls: { done: () => void; fail: (e: Error) => void }[] = [];
  const save = () =>
    new Promise<void>((done, fail) => {
      calls.push({ done, fail });
    });
  return { calls, save };
}

test('everyMessages: a save starts on the Nth change; changes during it are saved by the next', async () => {
  const clock = new ManualClock();
  const s = saver();
  const p = new Persister({ everyMessages: 3 }, clock, s.save, () => undefined);
  p.changed();
  p.changed();
  assert.equal(s.calls.length, 0);
  p.changed();
  assert.equal(s.calls.length, 1);
  assert.deepEqual(p.metrics(), { saves: 0, unsaved: 0 });
  p.changed();
  p.changed();
  p.changed(); // the third change asks for a save while one runs: it follows that one
  assert.equal(s.calls.length, 1);
  s.calls[0]!.done();
  await tick();
  await tick();
  assert.equal(s.calls.length, 2);
  s.calls[1]!.done();
  await tick();
  await tick();
  assert.deepEqual(p.metrics(), { saves: 2, unsaved: 0 });
});

test('everyMs: one change is saved that long after it, not before; nothing unsaved, no save', async () => {
  const clock = new ManualClock();
  const s = saver();
  const p = new Persister({ everyMs: 500 }, clock, s.save, () => undefined);
  clock.advance(10_000);
  assert.equal(s.calls.length, 0);
  p.changed();
  clock.advance(499);
  assert.equal(s.calls.length, 0);
  clock.advance(1);
  assert.equal(s.calls.length, 1);
  s.calls[0]!.done();
  await tick();
  assert.deepEqual(p.metrics(), { saves: 1, unsaved: 0 });
  clock.advance(10_000);
  assert.equal(s.calls.length, 1);
});

test('a failed save keeps its changes unsaved and reports; the next save carries them', async () => {
  const clock = new ManualClock();
  const s = saver();
  const errors: unknown[] = [];
  const p = new Persister({ everyMessages: 2 }, clock, s.save, (e) => errors.push(e));
  p.changed();
  p.changed();
  s.calls[0]!.fail(new Error('kv down'));
  await tick();
  await tick();
  assert.equal(errors.length, 1);
  assert.deepEqual(p.metrics(), { saves: 0, unsaved: 2 });
  p.changed();
  assert.equal(s.calls.length, 2);
  s.calls[1]!.done();
  await tick();
  assert.deepEqual(p.metrics(), { saves: 1, unsaved: 0 });
});

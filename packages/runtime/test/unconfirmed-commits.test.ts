// Committed stream sequences not yet known acknowledged: held as runs above the confirmed floor, for
// one to two generations, within bounds that keep the oldest.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runsOf, seqRuns } from '../src/actor/committed-seqs.js';
import {
  MAX_UNCONFIRMED_RUNS,
  MAX_UNCONFIRMED_SEQS,
  UnconfirmedCommits,
} from '../src/actor/unconfirmed-commits.js';
import { ManualClock } from './fixtures/manual-clock.js';

test('sequences are held as ascending runs until a floor confirms them', () => {
  const u = new UnconfirmedCommits(new ManualClock(), 1000);
  assert.equal(u.pending, false);
  u.add(seqRuns([7, 5, 6, 10]));
  u.add(seqRuns([6, 11, 2]));
  assert.deepEqual(u.runs(), [
    [2, 1],
    [5, 3],
    [10, 2],
  ]);
  assert.ok(u.has(6) && u.has(11) && !u.has(8) && !u.has(12));
  u.confirm(6);
  assert.deepEqual(u.runs(), [
    [7, 1],
    [10, 2],
  ]);
  assert.ok(!u.has(5) && u.has(7));
  // At or below the floor they are acknowledged already: never held again.
  u.add(seqRuns([3, 12]));
  assert.deepEqual(u.runs(), [
    [7, 1],
    [10, 3],
  ]);
  u.confirm(4);
  assert.ok(u.has(7), 'a lower floor changes nothing');
  u.confirm(20);
  assert.equal(u.pending, false);
});

test('a sequence is held for at least one generation and forgotten after two', () => {
  const clock = new ManualClock();
  const u = new UnconfirmedCommits(clock, 1000);
  u.add(seqRuns([1]));
  clock.advance(999);
  assert.ok(u.has(1));
  clock.advance(1);
  u.add(seqRuns([2]));
  assert.ok(u.has(1) && u.has(2), 'the first in the previous generation');
  clock.advance(1000);
  assert.deepEqual(u.runs(), [[2, 1]]);
  clock.advance(2000);
  assert.equal(u.pending, false);
});

test('bounded: past the limits the oldest are held', () => {
  const u = new UnconfirmedCommits(new ManualClock(), 60_000);
  // Every other sequence: one run each.
  u.add(seqRuns(Array.from({ length: MAX_UNCONFIRMED_RUNS + 100 }, (_, i) => 1 + 2 * i)));
  const runs = u.runs();
  assert.equal(runs.length, MAX_UNCONFIRMED_RUNS);
  assert.deepEqual(runs[0], [1, 1]);
  const many = new UnconfirmedCommits(new ManualClock(), 60_000);
  many.add(seqRuns(Array.from({ length: MAX_UNCONFIRMED_SEQS + 5 }, (_, i) => 100 + i)));
  assert.deepEqual(many.runs(), [[100, MAX_UNCONFIRMED_SEQS]]);
});

test('runs a record read lists are held above the floor; runsOf refuses what is not runs', () => {
  const u = new UnconfirmedCommits(new ManualClock(), 1000);
  u.confirm(10);
  u.add([
    [5, 10],
    [20, 1],
  ]);
  assert.deepEqual(u.runs(), [
    [11, 4],
    [20, 1],
  ]);
  assert.deepEqual(runsOf([[3, 2]], 4, 4), [[3, 2]]);
  for (const bad of ['x', [[0, 1]], [[1, 0]], [[1, 5]], [[1.5, 1]], [[1]], [[1, 1, 1]], [1, 2, 3, 4, 5]])
    assert.equal(runsOf(bad, 4, 4), undefined, JSON.stringify(bad));
});

// The stream sequences an activation committed lately: kept one to two generations, and never more
// than two generations' worth however fast the actor commits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommittedSeqs, mergeRuns, seqRuns } from '../src/actor/committed-seqs.js';
import { ManualClock } from './fixtures/manual-clock.js';

test('a sequence is known for at least one generation and forgotten after two', () => {
  const clock = new ManualClock();
  const seqs = new CommittedSeqs(clock, 1000);
  seqs.add(1);
  clock.advance(999);
  seqs.add(2);
  assert.ok(seqs.has(1) && seqs.has(2));
  assert.ok(!seqs.has(3));
  clock.advance(1);
  seqs.add(3); // a new generation: 1 and 2 are in the previous one
  assert.ok(seqs.has(1) && seqs.has(2) && seqs.has(3));
  clock.advance(1000);
  seqs.add(4);
  assert.ok(!seqs.has(1) && !seqs.has(2), 'two generations old');
  assert.ok(seqs.has(3) && seqs.has(4));
});

test('a burst turns generations over by count: the latest are kept, memory stays bounded', () => {
  const clock = new ManualClock();
  const seqs = new CommittedSeqs(clock, 60_000);
  const n = 300_000;
  for (let s = 1; s <= n; s++) seqs.add(s);
  assert.ok(seqs.has(n) && seqs.has(n - 65_535), 'the latest generation');
  assert.ok(!seqs.has(1), 'the first generations are gone');
  let kept = 0;
  for (let s = 1; s <= n; s++) if (seqs.has(s)) kept++;
  assert.ok(kept >= 65_536 && kept <= 2 * 65_536, `${kept} kept`);
});

test('what a move ships: the sequences above a floor, those after a mark, as ascending runs', () => {
  const clock = new ManualClock();
  const seqs = new CommittedSeqs(clock, 1000);
  for (const s of [5, 6, 7, 9, 3]) seqs.add(s);
  const mark = seqs.mark();
  seqs.add(12);
  assert.deepEqual(seqs.above(4), [5, 6, 7, 9, 12]);
  assert.deepEqual(seqs.above(4, mark), [12]);
  clock.advance(1000);
  seqs.add(13); // a new generation since the mark: the rest of the old one and all of the new
  assert.deepEqual(seqs.above(0, mark), [12, 13]);
  clock.advance(1000);
  seqs.add(20); // two generations on: whatever is kept came after the mark
  assert.deepEqual(seqs.above(0, mark), [13, 20]);
  assert.deepEqual(seqRuns([9, 5, 7, 6, 12, 6, 13]), [
    [5, 3],
    [9, 1],
    [12, 2],
  ]);
  assert.deepEqual(seqRuns([]), []);
});

test('runs merged: overlapping and touching runs become one', () => {
  assert.deepEqual(
    mergeRuns(
      [
        [1, 3],
        [10, 2],
      ],
      [
        [4, 1],
        [11, 5],
        [20, 1],
      ],
    ),
    [
      [1, 4],
      [10, 6],
      [20, 1],
    ],
  );
  assert.deepEqual(mergeRuns([[5, 1]], []), [[5, 1]]);
});

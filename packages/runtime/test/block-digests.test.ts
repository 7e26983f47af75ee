// Block digests in place of a copy of a migration image: they name exactly the blocks a copy would,
// whatever changed (a byte, the length, nothing), and a digest is of the bytes when it was asked for.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlockDigests } from '../src/migration/block-digests.js';
import { changedRanges, IMAGE_BLOCK_BYTES, parts } from '../src/migration/image.js';

const B = IMAGE_BLOCK_BYTES;

function sent(bytes: Uint8Array, part: number): BlockDigests {
  const d = new BlockDigests();
  for (let at = 0; at < bytes.length; at += part)
    d.add(at, bytes.subarray(at, Math.min(bytes.length, at + part)));
  return d;
}

/** What a target holding `held` builds from the ranges of `next` it is sent (its length from the commit). */
function rebuilt(held: Uint8Array, next: Uint8Array, ranges: [number, number][]): Uint8Array {
  const out = new Uint8Array(next.length);
  out.set(held.subarray(0, next.length));
  for (const [start, end] of ranges) out.set(next.subarray(start, end), start);
  return out;
}

/** `x` with the bytes at `at` changed. */
function flip(x: Uint8Array, ...at: number[]): Uint8Array {
  for (const i of at) x[i]! ^= 1;
  return x;
}

const size = (ranges: [number, number][]) => ranges.reduce((n, [s, e]) => n + e - s, 0);

/** Ranges widened to whole blocks (the last cut at `length`), adjacent ones merged. */
function toBlocks(ranges: [number, number][], length: number): [number, number][] {
  const out: [number, number][] = [];
  for (const [s, e] of ranges) {
    const start = s - (s % B);
    const end = Math.min(length, Math.ceil(e / B) * B);
    const last = out[out.length - 1];
    if (last && last[1] >= start) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

test('the blocks whose bytes changed, as a comparison with a copy finds them', async () => {
  const before = new Uint8Array(10 * B + 123).map((_, i) => (i * 7) & 0xff);
  const cases: [string, (x: Uint8Array) => Uint8Array][] = [
    ['nothing', (x) => x],
    ['one byte in the first block', (x) => flip(x, 5)],
    ['the last byte of a block and the first of the next', (x) => flip(x, 3 * B - 1, 3 * B)],
    ['the short last block', (x) => flip(x, x.length - 1)],
    ['grown by a block', (x) => Uint8Array.from([...x, ...new Uint8Array(B)])],
    ['shrunk into its last block', (x) => x.slice(0, x.length - 100)],
    ['shrunk by two blocks', (x) => x.slice(0, x.length - 2 * B)],
  ];
  for (const [what, change] of cases) {
    for (const part of [B, 4 * B]) {
      const after = change(new Uint8Array(before));
      const ranges = await sent(before, part).changedRanges(after);
      assert.deepEqual(rebuilt(before, after, ranges), after, what);
      // A copy finds the changed 4 KiB units within the changed blocks; the digests, the blocks.
      const byCopy = toBlocks(changedRanges(before, after), after.length);
      // The one difference: a last block cut short is sent again, though its bytes are a prefix of
      // what was sent (a copy can see that; a digest of the whole block cannot).
      if (after.length % B === 0 || after.length >= before.length) assert.deepEqual(ranges, byCopy, what);
      else assert.ok(size(ranges) <= size(byCopy) + B, what);
    }
  }
});

test('an image never sent is changed everywhere; an empty one nowhere', async () => {
  const bytes = new Uint8Array(2 * B + 1);
  assert.deepEqual(await new BlockDigests().changedRanges(bytes), [[0, bytes.length]]);
  assert.deepEqual(await new BlockDigests().changedRanges(new Uint8Array(0)), []);
});

test('a digest is of the bytes when it was asked for, not when it is computed', async () => {
  const live = new Uint8Array(2 * B).fill(3);
  const copy = new Uint8Array(live);
  const d = sent(live, B);
  live.fill(9); // the state moves on once its part is sent
  assert.deepEqual(await d.changedRanges(copy), []);
  assert.deepEqual(await d.changedRanges(live), [[0, 2 * B]]);
});

test('a part that does not start at a block boundary is refused', () => {
  assert.throws(() => new BlockDigests().add(100, new Uint8Array(B)), RangeError);
});

test('a copy names the changed 4 KiB units of a changed block, not the whole block', () => {
  const before = new Uint8Array(4 * B).map((_, i) => (i * 13) & 0xff);
  const U = 4096;
  const after = flip(new Uint8Array(before), 5, B + 2 * U + 7, B + 2 * U + 9, B + 3 * U);
  assert.deepEqual(changedRanges(before, after), [
    [0, U],
    [B + 2 * U, B + 4 * U],
  ]);
  assert.deepEqual(rebuilt(before, after, changedRanges(before, after)), after);
  // Grown: the new tail is sent whole, in units.
  const grown = Uint8Array.from([...before, 1, 2, 3]);
  assert.deepEqual(changedRanges(before, grown), [[4 * B, 4 * B + 3]]);
});

test('ranges split into parts of the size asked for; a part size below one byte is refused', () => {
  assert.deepEqual(
    parts(
      [
        [0, 10],
        [20, 25],
      ],
      4,
    ),
    [
      [0, 4],
      [4, 8],
      [8, 10],
      [20, 24],
      [24, 25],
    ],
  );
  for (const size of [0, -1, Number.NaN]) assert.throws(() => parts([[0, 10]], size), RangeError);
});

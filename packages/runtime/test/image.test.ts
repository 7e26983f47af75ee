// Migration images: large typed arrays travel as aligned segments read where they are (no copy when
// the image is taken), small values inside the msgpack header; any range reads back the same bytes;
// a plain msgpack snapshot still decodes; malformed images are refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode } from '../src/wire/codec.js';
import { decodeSnapshot, encodeImage, SEGMENT_MIN_BYTES } from '../src/wire/image.js';

const whole = (image: { length: number; subarray(s: number, e: number): Uint8Array }, part: number) => {
  const out = new Uint8Array(image.length);
  for (let at = 0; at < image.length; at += part)
    out.set(image.subarray(at, Math.min(image.length, at + part)), at);
  return out;
};

test('large typed arrays become segments; the value round-trips through parts of any size', () => {
  const floats = new Float32Array(SEGMENT_MIN_BYTES / 4 + 3).map((_, i) => i / 3);
  const bytes = new Uint8Array(SEGMENT_MIN_BYTES * 2 + 1).map((_, i) => i & 0xff);
  const big = new BigInt64Array(SEGMENT_MIN_BYTES / 8).fill(-5n);
  const value = { rows: [floats, { inner: bytes }], big, small: new Float64Array([1.5, 2.5]), n: 7, s: 'x' };
  const image = encodeImage(value);
  // Segments are the arrays' own bytes: the image is barely larger than them (the first starts at a
  // 4 KiB boundary, the others 8-byte aligned).
  assert.ok(image.length < floats.byteLength + bytes.byteLength + big.byteLength + 4096 + 32);
  for (const part of [1000, 65_536, image.length]) {
    const back = decodeSnapshot(whole(image, part)) as typeof value;
    assert.deepEqual(back, value);
    assert.ok(back.rows[0] instanceof Float32Array && back.big instanceof BigInt64Array);
  }
});

test('a header that grows by a few bytes leaves the segments where they were', () => {
  const blob = new Uint8Array(SEGMENT_MIN_BYTES).map((_, i) => i & 0xff);
  const before = encodeImage({ counters: { a: 200 }, blob });
  const after = encodeImage({ counters: { a: 70_000, b: 1 }, blob });
  assert.equal(after.length, before.length);
  const from = before.length - blob.length;
  assert.deepEqual(after.subarray(from, after.length), before.subarray(from, before.length));
  assert.deepEqual((decodeSnapshot(whole(after, 1000)) as { counters: unknown }).counters, {
    a: 70_000,
    b: 1,
  });
});

test('the image reads the arrays as they are when a part is read, not when it was taken', () => {
  const blob = new Uint8Array(SEGMENT_MIN_BYTES).fill(1);
  const image = encodeImage({ blob, count: 1 });
  blob[100] = 9;
  const back = decodeSnapshot(whole(image, 4096)) as { blob: Uint8Array; count: number };
  assert.equal(back.blob[100], 9);
  assert.equal(back.count, 1);
});

test('a plain msgpack snapshot decodes as before; an image cut short or with a bad table is refused', () => {
  assert.deepEqual(decodeSnapshot(encode({ a: [1, 2] })), { a: [1, 2] });
  const bytes = whole(encodeImage({ blob: new Uint8Array(SEGMENT_MIN_BYTES) }), 4096);
  assert.throws(
    () => decodeSnapshot(bytes.subarray(0, bytes.length - 1)),
    /malformed: a segment runs past its end/,
  );
  assert.throws(() => decodeSnapshot(new Uint8Array([0xc1, 0, 0, 0, 9])), /malformed/);
});

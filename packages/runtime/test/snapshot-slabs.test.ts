// The buffers an actor that snapshots after every turn encodes into: used again while nothing reads
// the snapshots, never written over once a snapshot was read, and never shared with other messages.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SLAB_MIN_BYTES, SnapshotSlabs } from '../src/actor/snapshot-slabs.js';
import { decode, encode, encodeInto } from '../src/wire/codec.js';

// A copy, not a view: Buffer#slice (what encodings into a slab are) shares the memory.
const copyOf = (bytes: Uint8Array) => Uint8Array.from(bytes);

// A long string too: msgpackr writes those with Buffer methods, which a slab must have.
const state = (bytes: number, fill: number) => ({
  blob: new Uint8Array(bytes).fill(fill),
  n: fill,
  note: `snapshot ${fill} `.repeat(40),
});

const size = SLAB_MIN_BYTES * 2;

/** Slabs after two snapshots (the second is the first encoded into a slab), and the second. */
function afterTwo(): { slabs: SnapshotSlabs; second: Uint8Array } {
  const slabs = new SnapshotSlabs();
  slabs.encode(state(size, 1));
  return { slabs, second: slabs.encode(state(size, 2)) };
}

test('a snapshot nobody read gives its buffer to the snapshot after next', () => {
  const { slabs, second } = afterTwo();
  slabs.encode(state(size, 3));
  const fourth = slabs.encode(state(size, 4));
  assert.equal(fourth.buffer, second.buffer);
  assert.deepEqual(decode(fourth), state(size, 4));
});

test('a snapshot that was read keeps its bytes, however many snapshots follow', () => {
  const { slabs, second: kept } = afterTwo();
  slabs.read();
  for (let i = 3; i < 10; i++) slabs.encode(state(size, i));
  assert.deepEqual(decode(kept), state(size, 2));
});

test('messages encoded after a snapshot are never written into its buffer', () => {
  const { second: snap } = afterTwo();
  const before = copyOf(snap);
  const others = Array.from({ length: 200 }, (_, i) => encode({ reply: i, text: 'x'.repeat(i) }));
  for (const o of others) assert.notEqual(o.buffer, snap.buffer);
  assert.deepEqual(copyOf(snap), before);
});

test('after an encoding into a buffer, msgpackr goes on in its own buffer where it left off', () => {
  const into = Buffer.alloc(2 * SLAB_MIN_BYTES);
  // A large value first: msgpackr then writes into a buffer of several times its size, which leaves
  // room for everything below, so that what follows the encoding into `into` lands next to `held`.
  encode({ pad: 'x'.repeat(100_000) });
  const held = encode({ reply: 'kept', n: 1 });
  const heldCopy = copyOf(held);
  const snap = encodeInto(state(SLAB_MIN_BYTES, 9), into);
  assert.equal(snap.buffer, into.buffer);
  const next = encode({ reply: 'next', n: 2 });
  // No buffer of its own per call (that cost 8 KiB of external memory per snapshot), and nothing
  // written over: neither what msgpackr had handed out before, nor the snapshot.
  assert.equal(next.buffer, held.buffer);
  assert.ok(next.byteOffset >= held.byteOffset + held.length);
  assert.deepEqual(copyOf(held), heldCopy);
  assert.deepEqual(decode(next), { reply: 'next', n: 2 });
  assert.deepEqual(decode(snap), state(SLAB_MIN_BYTES, 9));
  // A value that does not fit goes to a buffer msgpackr makes; its own buffer goes on as before.
  const big = encodeInto(state(4 * SLAB_MIN_BYTES, 7), Buffer.alloc(64));
  assert.notEqual(big.buffer, held.buffer);
  assert.deepEqual(decode(big), state(4 * SLAB_MIN_BYTES, 7));
  assert.equal(encode({ n: 3 }).buffer, held.buffer);
  assert.deepEqual(copyOf(held), heldCopy);
});

test('any sequence of snapshots, reads and replacements leaves every snapshot read as it was', () => {
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('encode' as const),
      size: fc.integer({ min: 1, max: 3 * SLAB_MIN_BYTES }),
    }),
    fc.constant({ kind: 'read' as const }),
    fc.constant({ kind: 'replaced' as const }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const slabs = new SnapshotSlabs();
      const read: { bytes: Uint8Array; copy: Uint8Array }[] = [];
      let current: Uint8Array | undefined;
      let n = 0;
      for (const o of ops) {
        if (o.kind === 'encode') current = slabs.encode(state(o.size, ++n % 251));
        else if (o.kind === 'read') {
          slabs.read();
          if (current) read.push({ bytes: current, copy: copyOf(current) });
        } else {
          // The record took a snapshot from elsewhere (a restore, a load).
          slabs.replaced();
          current = undefined;
        }
      }
      for (const r of read) assert.deepEqual(copyOf(r.bytes), r.copy);
      const last = ops.filter((o) => o.kind === 'encode').at(-1);
      if (current && last?.kind === 'encode') assert.deepEqual(decode(current), state(last.size, n % 251));
    }),
    { numRuns: 60 },
  );
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BadMessage } from '../src/index.js';
import {
  Coalescer,
  decode,
  decodeReplies,
  decodeRequests,
  encode,
  encodeReplies,
  encodeRequests,
} from '../src/internal.js';
import { requestBytes, requestBytesAtMost } from '../src/wire/batch.js';

test('one tick of sends becomes one batch per subject, in order, never past the room', async () => {
  const sent: [string, number[]][] = [];
  const c = new Coalescer<{ bytes: number; n: number }>(100, (subject, items) =>
    sent.push([subject, items.map((i) => i.n)]),
  );
  for (let n = 0; n < 5; n++) c.add('a', { bytes: 30, n });
  c.add('b', { bytes: 1, n: 9 });
  assert.deepEqual(sent, [['a', [0, 1, 2]]], 'the fourth item would pass the room: the batch goes first');
  c.add('a', { bytes: 500, n: 5 });
  assert.deepEqual(
    sent.slice(1),
    [
      ['a', [3, 4]],
      ['a', [5]],
    ],
    'a large item flushes its subject, then goes alone',
  );
  await Promise.resolve();
  assert.deepEqual(sent.slice(3), [['b', [9]]]);
});

test('after a tick of one item, the first of the next goes at once; a burst is batched again', async () => {
  const sent: [string, number[]][] = [];
  const c = new Coalescer<{ bytes: number; n: number }>(100, (subject, items) =>
    sent.push([subject, items.map((i) => i.n)]),
  );
  c.add('a', { bytes: 1, n: 0 });
  assert.deepEqual(sent, [], 'the first tick waits for the microtask');
  await Promise.resolve();
  assert.deepEqual(sent, [['a', [0]]]);
  c.add('a', { bytes: 1, n: 1 });
  assert.deepEqual(sent.slice(1), [['a', [1]]], 'a lone tick before: sent at once');
  c.add('a', { bytes: 1, n: 2 });
  c.add('b', { bytes: 1, n: 3 });
  c.add('a', { bytes: 1, n: 4 });
  assert.equal(sent.length, 2, 'what follows in the same tick waits');
  await Promise.resolve();
  assert.deepEqual(sent.slice(2), [
    ['a', [2, 4]],
    ['b', [3]],
  ]);
  c.add('a', { bytes: 1, n: 5 });
  c.add('a', { bytes: 1, n: 6 });
  assert.equal(sent.length, 4, 'after a burst the next tick is batched from its first item');
  await Promise.resolve();
  assert.deepEqual(sent.slice(4), [['a', [5, 6]]]);
});

test('batch payloads round-trip with the messages spliced in; malformed ones are BadMessage', () => {
  const msg = { type: 'x', v: new Float32Array([1, 2]), s: 'ü'.repeat(40) };
  const items = [
    { reply: 'in.1', traceparent: 't', deadline: 5, key: 'k'.repeat(300), body: encode(msg) },
    {
      reply: undefined,
      traceparent: 't',
      deadline: Number.POSITIVE_INFINITY,
      key: undefined,
      body: encode(msg),
    },
  ];
  const back = decodeRequests(encodeRequests(items));
  assert.deepEqual(
    back.map(({ message, error, ...rest }) => rest),
    items.map(({ body, ...rest }) => rest),
  );
  for (const r of back) {
    assert.equal(r.error, undefined);
    assert.deepEqual(r.message, msg);
  }
  const replies = decodeReplies(
    encodeReplies([
      { reply: 'in.1', out: { ok: true, data: encode([1, 'two']) } },
      { reply: 'in.2', out: { ok: false, code: 'C', name: 'N', message: 'm' } },
    ]),
  );
  assert.deepEqual(replies, [
    { reply: 'in.1', ok: true, value: [1, 'two'] },
    { reply: 'in.2', ok: false, error: { ok: false, code: 'C', name: 'N', message: 'm' } },
  ]);
  // A message sent as bytes (bin) is decoded on its own: a bad one fails only its item.
  const mixed = decodeRequests(
    encode([
      ['in.1', 't', 5, null, new Uint8Array([0xc1, 0xff])],
      ['in.2', 't', 5, null, Buffer.from(encode({ type: 'x' }))],
    ]),
  );
  assert.ok(mixed[0]!.error instanceof BadMessage);
  assert.deepEqual(mixed[1]!.message, { type: 'x' });
  assert.throws(() => decodeRequests(encode({ not: 'an array' })), BadMessage);
  assert.throws(() => decodeRequests(encode([['too', 'short']])), BadMessage);
  assert.throws(() => decodeReplies(encode([['in.1', 2]])), BadMessage);
});

test('decoded typed arrays equal what was sent, views of the received bytes only where aligned', () => {
  const sent = {
    u8: new Uint8Array([1, 2, 3]),
    f32: new Float32Array([1.5, -2]),
    f64: new Float64Array([Math.PI]),
    i64: new BigInt64Array([-5n]),
  };
  for (let shift = 0; shift < 8; shift++) {
    // The same bytes at every offset of a larger buffer, as a message lands anywhere in a socket read.
    const bytes = encode(sent);
    const big = new Uint8Array(bytes.length + shift);
    big.set(bytes, shift);
    const got = decode(big.subarray(shift)) as typeof sent;
    assert.deepEqual(got, sent);
    for (const arr of Object.values(got)) {
      assert.equal(arr.byteOffset % arr.BYTES_PER_ELEMENT, 0);
      if (arr.buffer !== big.buffer) assert.equal(arr.byteOffset, 0, 'a copy owns its buffer');
    }
    assert.equal(got.u8.buffer, big.buffer, 'a byte array is always a view');
  }
});

test('the per-send size bound is never below the framed size', () => {
  fc.assert(
    fc.property(
      fc.option(fc.string({ unit: 'binary', maxLength: 300 }), { nil: undefined }),
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc.option(fc.string({ unit: 'binary', maxLength: 70_000 }), { nil: undefined }),
      fc.nat(5000),
      (reply, traceparent, key, bodyLength) => {
        const item = { reply, traceparent, deadline: 1, key, body: new Uint8Array(bodyLength) };
        const framed = encodeRequests([item]).length - 1; // minus the one-byte array header
        assert.equal(framed, requestBytes(item));
        assert.ok(requestBytesAtMost(item) >= framed);
      },
    ),
    { numRuns: 200 },
  );
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BadMessage } from '../src/index.js';
import {
  Coalescer,
  decodeReplies,
  decodeRequests,
  encode,
  encodeReplies,
  encodeRequests,
} from '../src/internal.js';

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

test('batch payloads round-trip; malformed ones are BadMessage', () => {
  const body = encode({ type: 'x' });
  const items = [
    { reply: 'in.1', traceparent: 't', deadline: 5, key: 'k', body },
    { reply: undefined, traceparent: 't', deadline: Number.POSITIVE_INFINITY, key: undefined, body },
  ];
  assert.deepEqual(
    decodeRequests(encodeRequests(items)).map((i) => ({ ...i, body: Buffer.from(i.body) })),
    items.map((i) => ({ ...i, body: Buffer.from(i.body) })),
  );
  const replies = decodeReplies(
    encodeReplies([
      { reply: 'in.1', out: { ok: true, data: body } },
      { reply: 'in.2', out: { ok: false, code: 'C', name: 'N', message: 'm' } },
    ]),
  );
  assert.equal(replies[1]!.out.ok, false);
  assert.deepEqual(Buffer.from((replies[0]!.out as { data: Uint8Array }).data), Buffer.from(body));
  assert.throws(() => decodeRequests(encode({ not: 'an array' })), BadMessage);
  assert.throws(() => decodeRequests(encode([['too', 'short']])), BadMessage);
  assert.throws(() => decodeReplies(encode([['in.1', 2]])), BadMessage);
});

// A queued message travels to a migration's target as a ForwardedMessage and comes back the same,
// and what the source forwards early fits the room it is given.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { forwardedFrom, forwardedOf, type Incoming, incomingOf } from '../src/actor/incoming.js';
import { BadMessage } from '../src/errors.js';
import { FORWARD_ROOM } from '../src/migration/protocol.js';
import { encode } from '../src/wire/codec.js';

const def = { type: 't', handlers: { add: () => 1 } } as never;

const item = (by: number, extra: Partial<Incoming> = {}): Incoming => ({
  msg: { type: 'add', by } as { type: string },
  env: { traceparent: '00-a-b-01', sender: 's1', deadline: 1_000 + by, seq: by, prev: by - 1 },
  reply: `_INBOX.r${by}`,
  durable: undefined,
  key: undefined,
  inbox: 'batch-inbox',
  ...extra,
});

test('a forwarded message comes back as the message, envelope and reply it was queued with', () => {
  const keyed = item(3, { env: { ...item(3).env, idempotencyKey: 'k3', more: true } });
  const back = incomingOf(def, 't/a', forwardedOf(keyed));
  assert.deepEqual(back.msg, keyed.msg);
  assert.deepEqual(back.env, keyed.env);
  assert.equal(back.reply, keyed.reply);
  assert.equal(back.key, 'k3');
  // A batch's inbox is the source's caller connection's: the target answers on the reply subject.
  assert.equal(back.inbox, undefined);
  const plain = forwardedOf(item(1, { reply: undefined }));
  assert.deepEqual(Object.keys(plain).sort(), ['b', 'd', 'p', 'q', 's', 't']);
});

test('a forwarded body that is no message of the actor is a bad message', () => {
  const f = { ...forwardedOf(item(1)), b: encode({ type: 'nosuch' }) };
  assert.throws(() => incomingOf(def, 't/a', f), BadMessage);
});

test('what goes early skips durable messages and those sent before, and stops at the room given', () => {
  const durable = item(0, { durable: {} as never });
  const queued = [item(1), durable, item(2), item(3), item(4)];
  const one = forwardedOf(item(2)).b.length + FORWARD_ROOM;
  assert.deepEqual(
    forwardedFrom(queued, 1, 2 * one).map((f) => f.q),
    [2, 3],
  );
  assert.deepEqual(
    forwardedFrom(queued, 0, 10 * one).map((f) => f.q),
    [1, 2, 3, 4],
  );
  assert.deepEqual(forwardedFrom(queued, 0, one - 1), []);
});

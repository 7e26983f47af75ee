import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeldMessages } from '../src/actor/held-messages.js';
import { SenderCounts } from '../src/actor/sender-counts.js';
import { MAX_SENDER_COUNTS } from '../src/migration/protocol.js';
import type { Envelope } from '../src/wire/envelope.js';

type Item = { name: string; env: Envelope };
const msg = (name: string, sender: string, seq?: number, prev?: number, more = false): Item => ({
  name,
  env: {
    traceparent: '',
    sender,
    deadline: Number.POSITIVE_INFINITY,
    ...(seq !== undefined ? { seq } : {}),
    ...(prev !== undefined ? { prev } : {}),
    ...(more ? { more: true as const } : {}),
  },
});
const ran = (counts: SenderCounts, sender: string, seq: number, more = false) =>
  counts.ran(msg('', sender, seq, undefined, more).env);

/** A target's hold as the activation drives it: held unless it follows, passed once queued. */
function target(ran: [string, number][]) {
  const queued: string[] = [];
  const held = new HeldMessages<Item>(ran, (i) => queued.push(i.name));
  const direct = (i: Item) => {
    if (!held.follows(i)) return held.hold(i);
    queued.push(i.name);
    held.passed(i);
  };
  const forwarded = (i: Item) => {
    if (i.env.seq !== undefined) held.before(i.env.sender, i.env.seq);
    queued.push(i.name);
    held.passed(i);
  };
  return { held, queued, direct, forwarded };
}

test('a message that follows one the source ran is queued at once; one whose predecessor is unknown is held', () => {
  const t = target([['a', 10]]);
  t.direct(msg('a11', 'a', 11, 10));
  t.direct(msg('a12', 'a', 12, 11));
  // Its previous message (count 12) is still at the source: held, and so is what follows it.
  t.direct(msg('b3', 'b', 3, 2));
  t.direct(msg('a14', 'a', 14, 13));
  t.direct(msg('a15', 'a', 15, 14));
  t.direct(msg('c1', 'c', 1));
  // A sender's first message to the actor follows nothing (Stitch-Prev 0), and what follows it too.
  t.direct(msg('d1', 'd', 1, 0));
  t.direct(msg('d2', 'd', 2, 1));
  assert.deepEqual(t.queued, ['a11', 'a12', 'd1', 'd2']);
  assert.equal(t.held.size, 4);
  // a13 comes forwarded from the source: a14 and a15, which follow it, go right after it.
  t.forwarded(msg('a13', 'a', 13, 12));
  assert.deepEqual(t.queued, ['a11', 'a12', 'd1', 'd2', 'a13', 'a14', 'a15']);
  // The rest waits for the release, then runs in each sender's order.
  assert.deepEqual(
    t.held.release().map((i) => i.name),
    ['b3', 'c1'],
  );
  assert.equal(t.held.size, 0);
});

test('a forwarded message goes after the held ones of its sender counted below it, and releases what follows', () => {
  const t = target([]);
  t.direct(msg('a7', 'a', 7, 5));
  t.direct(msg('a5', 'a', 5, 2));
  t.direct(msg('a9', 'a', 9, 8));
  t.direct(msg('b2', 'b', 2, 1));
  t.forwarded(msg('a8', 'a', 8, 7));
  assert.deepEqual(t.queued, ['a5', 'a7', 'a8', 'a9']);
  assert.deepEqual(
    t.held.release().map((i) => i.name),
    ['b2'],
  );
});

test("a coalesced batch's items share one count: what follows the batch waits for its last item", () => {
  const t = target([['a', 4]]);
  t.direct(msg('x', 'a', 6, 4, true));
  t.direct(msg('y', 'a', 6, 4, true));
  t.direct(msg('z', 'a', 6, 4));
  t.direct(msg('next', 'a', 7, 6));
  assert.deepEqual(t.queued, ['x', 'y', 'z', 'next']);
  // A batch forwarded in two requests: a message that follows it is held until its last item comes.
  const u = target([['a', 4]]);
  u.forwarded(msg('x', 'a', 5, 4, true));
  u.direct(msg('next', 'a', 6, 5));
  assert.deepEqual(u.queued, ['x']);
  u.forwarded(msg('y', 'a', 5, 4, true));
  u.forwarded(msg('z', 'a', 5, 4));
  assert.deepEqual(u.queued, ['x', 'y', 'z', 'next']);
});

test('held messages are released in each sender’s order of counts, those without counts as they came', () => {
  const t = target([]);
  t.direct(msg('a9', 'a', 9, 8));
  t.direct(msg('u1', 'old'));
  t.direct(msg('a3', 'a', 3, 1));
  t.direct(msg('u2', 'old'));
  t.direct(msg('a6', 'a', 6, 3));
  assert.deepEqual(t.queued, []);
  assert.deepEqual(
    t.held.release().map((i) => i.name),
    ['a3', 'a6', 'a9', 'u1', 'u2'],
  );
});

test("the source hands over, per sender, the last count it ran, below any of the sender's still queued", () => {
  const counts = new SenderCounts();
  ran(counts, 'a', 3);
  ran(counts, 'a', 5);
  ran(counts, 'b', 8);
  ran(counts, 'c', 2);
  // The first item of a batch ran: the sender counts up to the message before it.
  ran(counts, 'e', 6, true);
  const queued = [msg('', 'b', 8).env, msg('', 'b', 9).env, msg('', 'd', 4).env, msg('', 'c', 1).env];
  assert.deepEqual(counts.handOver(queued), [
    ['a', 5],
    ['b', 7],
    ['e', 5],
  ]);
  // A target takes them over for the next move.
  const next = new SenderCounts();
  next.adopt(counts.handOver([]));
  ran(next, 'a', 9);
  assert.deepEqual(next.handOver([]), [
    ['a', 9],
    ['b', 8],
    ['c', 2],
    ['e', 5],
  ]);
});

test('the source keeps counts of at most MAX_SENDER_COUNTS senders, forgetting the first noted', () => {
  const counts = new SenderCounts();
  for (let i = 0; i <= MAX_SENDER_COUNTS; i++) ran(counts, `s${i}`, 1);
  const handed = counts.handOver([]);
  assert.equal(handed.length, MAX_SENDER_COUNTS);
  assert.equal(handed[0]![0], 's1');
});

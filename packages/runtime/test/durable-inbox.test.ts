// A durable outcome is an answer only once a commit holding its effect succeeded: asked for earlier
// (the caller's publish was a duplicate), the answer waits for that commit, and a failed commit keeps
// it waiting for the redelivered message's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UnconfirmedCommits } from '../src/actor/unconfirmed-commits.js';
import { systemClock } from '../src/clock.js';
import { Guard } from '../src/guard.js';
import { encode } from '../src/internal.js';
import type { Outcome } from '../src/wire/outcome.js';
import { ManualClock } from './fixtures/manual-clock.js';
import { quietHost, testInbox } from './fixtures/test-inbox.js';

test("an applied key's outcome is given after the commit holding it, not before; a failed commit keeps it waiting", async () => {
  const sent: string[] = [];
  const kept = new Map<string, Outcome>();
  let saves = 0;
  let failNext = false;
  let release: () => void = () => undefined;
  const record = {
    outcome: (key: string) => kept.get(key),
    superseded: false,
    save: () => {
      saves++;
      const fail = failNext;
      failNext = false;
      return new Promise<void>((resolve, reject) => {
        release = () => (fail ? reject(new Error('no leader')) : resolve());
      });
    },
  };
  const host = quietHost();
  const replies = { send: (subject: string) => sent.push(subject) };
  const inbox = testInbox({ host, record, replies });
  const out: Outcome = { ok: true, data: encode(1) };
  const msg = () => ({ ack: () => undefined, nak: () => undefined });
  const settle = async () => {
    while (saves === 0) await new Promise((r) => setImmediate(r));
  };

  // Applied (its outcome kept, as the activation does before handing it over), commit in flight.
  kept.set('k', out);
  failNext = true;
  inbox.applied({ m: msg() as never, reply: 'first', out, key: 'k' });
  await settle();
  inbox.outcome('k', 'again', undefined, Infinity);
  assert.deepEqual(sent, [], 'nothing is answered before the commit');
  release();
  await inbox.settled();
  assert.deepEqual(sent, [], 'the commit failed: the effect may still be lost, so no answer');
  inbox.outcome('k', 'again2', undefined, Infinity);
  assert.deepEqual(sent, []);

  // The message comes back (nak), is found applied, and this commit succeeds.
  saves = 0;
  inbox.applied({ m: msg() as never, reply: 'first', out, key: 'k' });
  await settle();
  release();
  await inbox.settled();
  assert.deepEqual(sent.sort(), ['again', 'again2', 'first']);
  inbox.outcome('k', 'later', undefined, Infinity);
  assert.deepEqual(sent.at(-1), 'later', 'once committed, the kept outcome answers at once');
});

test('a failed commit sends its messages back after a second, a superseded one at once (the newer activation takes them)', async () => {
  for (const superseded of [false, true]) {
    const record = {
      outcome: () => undefined,
      superseded: false,
      save: () => {
        record.superseded = superseded;
        return Promise.reject(new Error(superseded ? 'wrong last sequence' : 'no leader'));
      },
    };
    const host = quietHost();
    const replies = { send: () => undefined };
    let stopped = 0;
    const inbox = testInbox({ host, record, replies, superseded: () => stopped++ });
    const naks: (number | undefined)[] = [];
    const m = { ack: () => undefined, nak: (delay?: number) => naks.push(delay) };
    inbox.applied({ m: m as never, reply: 'r', out: { ok: true, data: encode(1) }, key: 'k' });
    await inbox.settled();
    assert.deepEqual(naks, [superseded ? undefined : 1000], `superseded: ${superseded}`);
    assert.equal(stopped, superseded ? 1 : 0);
  }
});

/** A consumer whose pulls the test answers: messages pushed in (to consume's callback), its info set by the test. */
function fakeConsumer() {
  let callback: ((m: unknown) => void) | undefined;
  let stopped: () => void = () => undefined;
  const state = { info: { num_waiting: 0, num_pending: 0, num_ack_pending: 0 }, infoAsked: 0, closes: 0 };
  const messages = {
    inbox: '_INBOX.pull',
    async *status() {},
    closed: () => new Promise<void>((resolve) => (stopped = resolve)),
    close: async () => {
      state.closes++;
      callback = undefined;
      stopped();
    },
  };
  const consumer = {
    consume: async (opts: { callback: (m: unknown) => void }) => {
      callback = opts.callback;
      return messages;
    },
    info: async () => {
      state.infoAsked++;
      return { ...state.info };
    },
  };
  const push = (m: unknown) => callback?.(m);
  /** nats.js stops reading on its own (a 400 or 409 status on the pull inbox). */
  const stop = () => {
    callback = undefined;
    stopped();
  };
  return { consumer, state, push, stop };
}

/** Lets what the fake consumer set off run: a few turns of promises and immediates. */
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

/**
 * A DurableInbox of actor t/i reading `consumer` (see fakeConsumer): what it delivers, how often it was
 * asked to read the consumer again, and `read` (`again`: a read again reads it, as an activation does).
 */
function readingInbox(
  consumer: ReturnType<typeof fakeConsumer>['consumer'],
  clock: ManualClock,
  watchConsumerLeader: (name: string, cb: () => void) => () => void = () => () => undefined,
) {
  const host = {
    guard: new Guard(() => undefined),
    log: () => undefined,
    clock,
    names: { stream: 's', consumer: () => 'c', durable: () => 'd' },
    js: { consumers: { getConsumerFromInfo: () => consumer } },
    watchConsumerLeader,
  };
  const inbox = testInbox({
    host,
    record: { outcome: () => undefined, superseded: false, save: async () => undefined },
  });
  const got: unknown[] = [];
  const counts = { restarts: 0 };
  const read = (again = false): Promise<void> =>
    inbox.consume(
      't',
      'i',
      30_000,
      64,
      (m) => got.push(m),
      Promise.resolve({} as never),
      5000,
      async () => {
        counts.restarts++;
        if (again) await read(again);
      },
    );
  return { inbox, got, counts, read };
}

test("after the consumer's leader changes, a pull that waits there but brings nothing while messages wait is taken for another reader's, and this one pulls again; an election right after a pull started is checked later", async () => {
  const run = async (
    delivered: 'nothing' | 'a message' | 'an old message',
    waiting: number,
    leaderAfterMs = 1500,
  ) => {
    const clock = new ManualClock();
    const { consumer, state, push } = fakeConsumer();
    let leaderChanged: () => void = () => undefined;
    const { got, counts, read } = readingInbox(consumer, clock, (_name, cb) => {
      leaderChanged = cb;
      return () => undefined;
    });
    await read();
    clock.advance(leaderAfterMs); // 1500: past the settling time after the pull started
    // The new leader holds `waiting` pulls, and messages wait to be delivered.
    state.info = { num_waiting: waiting, num_pending: 3, num_ack_pending: 0 };
    leaderChanged();
    // One the old leader had sent, arriving after its successor was elected.
    if (delivered === 'an old message') push({ subject: 'd', ack: () => undefined });
    await settle();
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      await settle();
      // A message from the new leader, after the first look found a pull waiting there.
      if (i === 0 && delivered === 'a message') push({ subject: 'd', ack: () => undefined });
      await settle();
    }
    return { restarts: counts.restarts, infoAsked: state.infoAsked, got: got.length };
  };
  // No pull waits at the new leader: this one's was lost; pulled again at once.
  assert.deepEqual(await run('nothing', 0), { restarts: 1, infoAsked: 1, got: 0 });
  // One waits, but nothing comes while messages wait: another reader's (a cut-off node's activation).
  assert.deepEqual(await run('nothing', 1), { restarts: 1, infoAsked: 2, got: 0 });
  // One waits and a message came: it is this activation's own; no second pull.
  const own = await run('a message', 1);
  assert.deepEqual([own.restarts, own.got], [0, 1]);
  // A message the old leader sent says nothing of the new one: no pull waits there, so pull again.
  const old = await run('an old message', 0);
  assert.deepEqual([old.restarts, old.got], [1, 1]);
  // A leader elected 200 ms after the pull started is checked once the pull has settled, not ignored.
  assert.deepEqual(await run('nothing', 0, 200), { restarts: 1, infoAsked: 1, got: 0 });
});

test('a re-pull put off while a move held the pulls closes the old pull and its keep-alive when the move fails', async () => {
  const clock = new ManualClock();
  const { consumer, state } = fakeConsumer();
  let leaderChanged: () => void = () => undefined;
  const { inbox, counts, read } = readingInbox(consumer, clock, (_name, cb) => {
    leaderChanged = cb;
    return () => undefined;
  });
  await read(true);
  const timers = clock.pending;
  assert.deepEqual(inbox.holdPulls('_INBOX', 5000)?.length, 1, 'the pull is handed over');
  // The consumer's leader changed and no pull waits there: pulling again waits for the move.
  clock.advance(1500);
  leaderChanged();
  clock.advance(1000);
  await settle();
  assert.deepEqual([counts.restarts, state.closes], [0, 0]);
  // The move failed: the source pulls again, and the pull and keep-alive before it stop.
  inbox.releasePulls();
  await settle();
  assert.deepEqual([counts.restarts, state.closes], [1, 1]);
  assert.equal(clock.pending, timers, 'one keep-alive, not two');
  await inbox.close();
});

test('an inbox closed while its consumer is made neither replaces nor reads it (a move away before it was ready)', async () => {
  const { consumer } = fakeConsumer();
  let reads = 0;
  const calls: string[] = [];
  let answerInfo: (i: unknown) => void = () => undefined;
  const host = {
    guard: new Guard(() => undefined),
    log: () => undefined,
    clock: systemClock,
    names: { stream: 's', consumer: () => 'c', durable: () => 'd' },
    jsm: {
      consumers: {
        info: () => new Promise((resolve) => (answerInfo = resolve)),
        delete: async () => void calls.push('delete'),
        add: async () => {
          calls.push('add');
          return {};
        },
      },
    },
    js: {
      consumers: {
        getConsumerFromInfo: () => ({
          ...consumer,
          consume: async (opts: { callback: (m: unknown) => void }) => {
            reads++;
            return consumer.consume(opts);
          },
        }),
      },
    },
    watchConsumerLeader: () => () => undefined,
  };
  const record = { outcome: () => undefined, superseded: false, save: async () => undefined };
  const inbox = testInbox({ host, record });
  const created = inbox.create('t', 'i', 5000, 64, 'fresh');
  const reading = inbox.consume(
    't',
    'i',
    5000,
    64,
    () => undefined,
    created,
    5000,
    async () => undefined,
  );
  await inbox.close();
  answerInfo({ ack_floor: { stream_seq: 7 }, num_ack_pending: 2 });
  await reading;
  assert.deepEqual(calls, [], 'the next owner makes the consumer afresh, not this one');
  assert.equal(reads, 0, 'nothing pulled from the next owner’s consumer');
  // Opened again (a move that failed: the source resumes), it makes and reads its consumer.
  const again = inbox.create('t', 'i', 5000, 64, 'fresh');
  answerInfo({ ack_floor: { stream_seq: 9 }, num_ack_pending: 0 });
  await inbox.consume(
    't',
    'i',
    5000,
    64,
    () => undefined,
    again,
    5000,
    async () => undefined,
  );
  assert.deepEqual(calls, ['delete', 'add']);
  assert.equal(reads, 1);
  assert.ok(inbox.committed(9) && !inbox.committed(10), 'at or below the floor it read');
  await inbox.close();
});

test('unconfirmed commits are confirmed up to the lower of the last two ack floors read, one read per 100 ms at most', async () => {
  const clock = new ManualClock();
  const floors = [40, 20, 60, 50];
  let reads = 0;
  const host = {
    ...quietHost(),
    clock,
    names: { stream: 's', consumer: () => 'c', durable: () => 'd' },
    jsm: {
      consumers: {
        // The first answer is create's own read; the rest are floor reads after commits.
        info: async () => {
          const floor = reads === 0 ? 0 : floors[reads - 1];
          reads++;
          return { num_ack_pending: 0, ack_floor: { stream_seq: floor } };
        },
      },
    },
  };
  const unconfirmed = new UnconfirmedCommits(clock, 60_000);
  unconfirmed.add([[1, 100]]);
  const record = { outcome: () => undefined, save: async () => undefined, superseded: false, unconfirmed };
  const inbox = testInbox({ host, record });
  await inbox.create('t', 'i', 5000, 64, 'reuse');
  const flush = () => new Promise((r) => setImmediate(r));
  const commit = async (seq: number) => {
    inbox.applied({
      m: { seq, ack: () => undefined } as never,
      reply: undefined,
      out: { ok: true, data: encode(1) },
      key: undefined,
    });
    await inbox.settled();
    await flush();
  };
  const held = () => unconfirmed.runs()[0]?.[0];
  await commit(101);
  assert.equal(inbox.floorReads, 1);
  assert.equal(held(), 1, 'a first floor read confirms nothing yet');
  await commit(102);
  assert.equal(inbox.floorReads, 1, 'not again within 100 ms');
  clock.advance(100);
  await commit(103);
  assert.equal(held(), 21, 'the lower of 40 and 20');
  clock.advance(100);
  await commit(104);
  assert.equal(held(), 21, '20 then 60: 20 again');
  clock.advance(100);
  await commit(105);
  assert.equal(held(), 51, '60 then 50');
  assert.equal(inbox.floorReads, 4);
});

test('a consumer nats.js stopped on its own is read again; one this inbox closed is not; what a client published to the pull inbox is not delivered', async () => {
  const clock = new ManualClock();
  const { consumer, push, stop } = fakeConsumer();
  const { inbox, got, counts, read } = readingInbox(consumer, clock);
  await read(true);
  push({ subject: 'stitch.c.pull.x.1', ack: () => undefined });
  push({ subject: 'd', ack: () => undefined });
  assert.equal(got.length, 1, "only what the server delivered under the actor's durable subject");
  stop();
  await settle();
  clock.advance(20);
  await settle();
  assert.equal(counts.restarts, 1, 'read again after a short wait');
  push({ subject: 'd', ack: () => undefined });
  assert.equal(got.length, 2);
  await inbox.close();
  await settle();
  clock.advance(2000);
  await settle();
  assert.equal(counts.restarts, 1, 'closed here: not read again');
});

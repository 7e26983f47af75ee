// A migration's target reads the pull inboxes its source hands over: watched from `begin` (what comes
// then is the source's, the last grace period of it kept for the commit), taken at the commit, read for
// their time after the release.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TakenPulls } from '../src/actor/taken-pulls.js';
import { Guard } from '../src/guard.js';
import { ManualClock } from './fixtures/manual-clock.js';

test('pull inboxes watched at begin bring nothing until the commit takes them; the commit says since when all it hands over were read', async () => {
  const clock = new ManualClock();
  const subs = new Map<string, (err: unknown, m: unknown) => void>();
  const nc = {
    subscribe: (subject: string, opts: { callback: (err: unknown, m: unknown) => void }) => {
      subs.set(subject, opts.callback);
      return { unsubscribe: () => void subs.delete(subject) };
    },
    flush: async () => undefined,
    publish: () => undefined,
  };
  const host = {
    guard: new Guard(() => undefined),
    clock,
    nc,
    names: { stream: 's', consumer: () => 'c', durable: () => 'd' },
  };
  const committed = new Set<number>();
  let counted = 0;
  const pulls = new TakenPulls(
    host as never,
    'a',
    (seq) => committed.has(seq),
    () => void counted++,
  );
  const delivered: number[] = [];
  const send = (on: string, seq: number) =>
    subs.get(on)?.(null, {
      subject: 'd',
      reply: `$JS.ACK.s.c.1.${seq}.${seq}.1700000000000000000.0`,
      data: new Uint8Array(0),
    });

  await pulls.watch(
    't',
    'i',
    [
      { inbox: 'p.a', keepMs: 6000 },
      { inbox: 'p.b', keepMs: 6000 },
    ],
    30,
  );
  assert.deepEqual([...subs.keys()], ['p.a', 'p.b']);
  send('p.a', 1);
  clock.advance(40);
  send('p.b', 2);
  send('p.a', 3);
  assert.equal(delivered.length, 0, 'the source reads what comes before the commit');

  clock.advance(20);
  const takenAt = clock.now();
  const since = await pulls.take(
    't',
    'i',
    [
      { inbox: 'p.a', keepMs: 5000 },
      { inbox: 'p.c', keepMs: 6000 },
    ],
    (m) => {
      delivered.push(m.seq);
    },
  );
  assert.deepEqual([...subs.keys()].sort(), ['p.a', 'p.c'], 'one the commit does not hand over is let go');
  assert.equal(since, takenAt, 'read from the youngest subscription on');
  assert.equal(delivered.length, 0, 'what the watch kept waits for the committed runs');
  send('p.a', 4);
  committed.add(2);
  pulls.readKept();
  assert.deepEqual(
    delivered,
    [4, 3],
    'of what came in the last 30 ms, what the source did not commit (its copy may be late)',
  );
  send('p.c', 5);
  assert.deepEqual(delivered, [4, 3, 5]);
  assert.equal(counted, 3);

  // Read for their keepMs from the release: the one watched since begin for the commit's.
  pulls.keep();
  clock.advance(5001);
  assert.deepEqual([...subs.keys()], ['p.c']);
  clock.advance(1000);
  assert.deepEqual([...subs.keys()], []);

  // A move that ends without a commit lets what it watched go.
  await pulls.watch('t', 'i', [{ inbox: 'p.d', keepMs: 6000 }], 30);
  pulls.unwatch();
  assert.deepEqual([...subs.keys()], []);
  await pulls.watch('t', 'i', [{ inbox: 'p.e', keepMs: 6000 }], 30);
  pulls.drop();
  assert.deepEqual([...subs.keys()], []);
});

test('a watched inbox keeps only what the stream delivered, within 16 MiB', async () => {
  const subs = new Map<string, (err: unknown, m: unknown) => void>();
  const host = {
    guard: new Guard(() => undefined),
    clock: new ManualClock(),
    nc: {
      subscribe: (subject: string, opts: { callback: (err: unknown, m: unknown) => void }) => {
        subs.set(subject, opts.callback);
        return { unsubscribe: () => void subs.delete(subject) };
      },
      flush: async () => undefined,
      publish: () => undefined,
    },
    names: { stream: 's', consumer: () => 'c', durable: () => 'd' },
  };
  const pulls = new TakenPulls(
    host as never,
    'a',
    () => false,
    () => undefined,
  );
  const send = (subject: string, seq: number, bytes: number) =>
    subs.get('p.a')?.(null, {
      subject,
      reply: `$JS.ACK.s.c.1.${seq}.${seq}.1700000000000000000.0`,
      data: new Uint8Array(bytes),
    });
  await pulls.watch('t', 'i', [{ inbox: 'p.a', keepMs: 6000 }], 30);
  // A client's message to the inbox comes under the inbox's subject, not the actor's durable one.
  send('p.a', 1, 10);
  for (let seq = 2; seq <= 4; seq++) send('d', seq, 7 * 1024 * 1024);
  const delivered: number[] = [];
  await pulls.take('t', 'i', [{ inbox: 'p.a', keepMs: 6000 }], (m) => void delivered.push(m.seq));
  pulls.readKept();
  assert.deepEqual(delivered, [3, 4], 'the oldest goes once the kept bytes pass 16 MiB');
  pulls.drop();
});

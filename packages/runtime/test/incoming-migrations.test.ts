// The target's side of a live migration without a bus: image parts assemble, changes (delta hooks)
// apply in order to the state built from the image, a `state` part after them starts the image
// afresh, and malformed parts are refused without touching the state.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { InvalidOptions, Overloaded, PayloadTooLarge } from '../src/errors.js';
import type { RecordImage } from '../src/migration/image.js';
import { type Adopted, IncomingMigrations, type Prepared } from '../src/migration/incoming.js';
import {
  type HandoffRequest,
  MAX_COMMITTED_RUNS,
  MAX_COMMITTED_SEQS,
  MAX_SENDER_COUNTS,
  parseHandoff,
  shippedRecord,
} from '../src/migration/protocol.js';
import { ManualClock } from './fixtures/manual-clock.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const from = { epoch: 1, revision: 3, recordRevision: 0 };

const noAdopted: Adopted = {
  forwarded: () => undefined,
  releaseDurable: () => undefined,
  release: () => undefined,
};

/** A Prepared that does nothing but what `parts` says (its commit answers epoch 2). */
const preparedWith = (parts: Partial<Prepared> = {}): Prepared => ({
  stage: async () => undefined,
  apply: () => undefined,
  recordImage: () => undefined,
  syncRecord: async () => undefined,
  discard: () => undefined,
  commit: async () => ({ epoch: 2, adopted: noAdopted }),
  sourceGone: async () => undefined,
  ...parts,
});

/**
 * Migrations into a node with room for two, 1 KiB states, taking pulls under `pullPrefix`; a quiet
 * source is not asked after unless `options` say so.
 */
const incomingWith = (
  prepare: ConstructorParameters<typeof IncomingMigrations>[2],
  clock = new ManualClock(),
  pullPrefix = '_INBOX',
  options: Partial<ConstructorParameters<typeof IncomingMigrations>[0]> = {},
) =>
  new IncomingMigrations(
    {
      slots: { max: 2, maxWaiting: 2, waitMs: 5000 },
      maxStateBytes: 1024,
      idleMs: 10_000,
      sourceCheckMs: 10_000,
      onSourceGone: () => undefined,
      releaseMs: 1000,
      pullPrefix: () => pullPrefix,
      ...options,
    },
    clock,
    prepare,
  );

/** A record's snapshot in chunks, as an activation holds it after reading or writing it. */
function recordOf(chunks: Record<string, string>): RecordImage {
  const names = Object.keys(chunks);
  const parts = names.map((n) => bytes(chunks[n]!));
  const whole = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    whole.set(p, at);
    at += p.length;
  }
  return {
    names,
    chunks: parts,
    chunkBytes: parts[0]?.length ?? 0,
    length: whole.length,
    subarray: (a, b) => whole.subarray(a, b),
  };
}

/**
 * A target whose state is a list of strings: the image's text, then one entry per change. `records`:
 * the actor's record by revision, stored in chunks (the first is the one read at `begin`).
 */
function target(records: Map<number, RecordImage> = new Map()) {
  const log: string[] = [];
  let state: string[] = [];
  let committed: Parameters<Prepared['commit']>[1] | undefined;
  let record = [...records.values()][0];
  const prepared = preparedWith({
    recordImage: () => record,
    syncRecord: async (revision) => {
      log.push(`sync ${revision}`);
      record = records.get(revision);
    },
    stage: async (image) => {
      log.push('stage');
      state = [new TextDecoder().decode(image)];
    },
    apply: (change) => {
      state.push(new TextDecoder().decode(change));
    },
    commit: async (_from, s) => {
      committed = s;
      return { epoch: 2, adopted: noAdopted };
    },
  });
  const incoming = incomingWith(async () => prepared);
  return { incoming, log, state: () => state, committed: () => committed };
}

test('changes apply in order to the state built from the image, parts in any order', async () => {
  const t = target();
  const migration = 'm1';
  await t.incoming.handle({ op: 'begin', migration, type: 't', id: 'a' });
  await t.incoming.handle({ op: 'state', migration, total: 5, offset: 3, data: bytes('lo') });
  await t.incoming.handle({ op: 'state', migration, total: 5, offset: 0, data: bytes('hel') });
  // One change in two parts, the second first: applied once whole.
  await t.incoming.handle({ op: 'change', migration, total: 7, offset: 3, data: bytes('nge1') });
  assert.deepEqual(t.state(), []);
  await t.incoming.handle({ op: 'change', migration, total: 7, offset: 0, data: bytes('cha') });
  assert.deepEqual(t.state(), ['hello', 'change1']);
  await t.incoming.handle({ op: 'commit', migration, total: 5, ...from, change: bytes('last') });
  assert.deepEqual(t.state(), ['hello', 'change1', 'last']);
  assert.deepEqual(t.committed(), { staged: true });
  assert.deepEqual(t.log, ['stage']);
});

test('a change riding on the commit stages the image first', async () => {
  const t = target();
  await t.incoming.handle({ op: 'begin', migration: 'm2', type: 't', id: 'a' });
  await t.incoming.handle({ op: 'state', migration: 'm2', total: 3, offset: 0, data: bytes('abc') });
  await t.incoming.handle({ op: 'commit', migration: 'm2', total: 3, ...from, change: bytes('d') });
  assert.deepEqual(t.state(), ['abc', 'd']);
  assert.deepEqual(t.committed(), { staged: true });
});

test('a state part after changes starts the image afresh: the commit builds from the new image', async () => {
  const t = target();
  await t.incoming.handle({ op: 'begin', migration: 'm3', type: 't', id: 'a' });
  await t.incoming.handle({ op: 'state', migration: 'm3', total: 3, offset: 0, data: bytes('old') });
  await t.incoming.handle({ op: 'change', migration: 'm3', total: 1, offset: 0, data: bytes('x') });
  await t.incoming.handle({ op: 'state', migration: 'm3', total: 3, offset: 0, data: bytes('new') });
  await t.incoming.handle({ op: 'commit', migration: 'm3', total: 3, ...from });
  const c = t.committed();
  assert.equal(c?.staged, false);
  assert.equal(new TextDecoder().decode((c as { image: Uint8Array }).image), 'new');
});

test('malformed change parts are refused; a change above the limit is too large', async () => {
  const t = target();
  await t.incoming.handle({ op: 'begin', migration: 'm4', type: 't', id: 'a' });
  await assert.rejects(
    t.incoming.handle({ op: 'change', migration: 'm4', total: 2048, offset: 0, data: bytes('x') }),
    PayloadTooLarge,
  );
  await t.incoming.handle({ op: 'change', migration: 'm4', total: 4, offset: 0, data: bytes('ab') });
  // Past its end, or claiming another total while one is assembling.
  await assert.rejects(
    t.incoming.handle({ op: 'change', migration: 'm4', total: 4, offset: 3, data: bytes('cd') }),
    InvalidOptions,
  );
  await assert.rejects(
    t.incoming.handle({ op: 'change', migration: 'm4', total: 8, offset: 2, data: bytes('cd') }),
    InvalidOptions,
  );
  assert.deepEqual(t.state(), []);
  await t.incoming.handle({ op: 'change', migration: 'm4', total: 4, offset: 2, data: bytes('cd') });
  assert.deepEqual(t.state(), ['', 'abcd']);
});

test('the target says at begin that it reads parts on the commit; every part is written before the state is built', async () => {
  const t = target();
  // …and under which prefix it takes over the source's durable pulls.
  assert.deepEqual(await t.incoming.handle({ op: 'begin', migration: 'p1', type: 't', id: 'a' }), {
    parts: true,
    pulls: '_INBOX',
  });
  await t.incoming.handle({ op: 'state', migration: 'p1', total: 9, offset: 0, data: bytes('abcdefghi') });
  // Three places changed during the pause: all three ride on the commit (the first as `part`, as an
  // older source would send it).
  await t.incoming.handle(
    parseHandoff({
      op: 'commit',
      migration: 'p1',
      total: 9,
      ...from,
      part: { offset: 0, data: bytes('A') },
      parts: [
        { offset: 4, data: bytes('E') },
        { offset: 7, data: bytes('HI') },
      ],
    }),
  );
  const c = t.committed();
  assert.equal(c?.staged, false);
  assert.equal(new TextDecoder().decode((c as { image: Uint8Array }).image), 'AbcdEfgHI');
});

test('malformed parts on a commit are refused, and a part past the image fails the commit', async () => {
  const commit = { op: 'commit', migration: 'p2', total: 4, ...from };
  for (const parts of [
    'ab',
    [{ offset: 0 }],
    [{ offset: -1, data: bytes('a') }],
    new Array(5000).fill({ offset: 0, data: bytes('a') }),
  ])
    assert.throws(
      () => parseHandoff({ ...commit, parts }),
      InvalidOptions,
      JSON.stringify(parts).slice(0, 40),
    );
  const t = target();
  await t.incoming.handle({ op: 'begin', migration: 'p2', type: 't', id: 'a' });
  await t.incoming.handle({ op: 'state', migration: 'p2', total: 4, offset: 0, data: bytes('abcd') });
  // A part past the image's end fails the commit: the source still owns the actor and aborts.
  await assert.rejects(
    t.incoming.handle({ ...commit, op: 'commit', parts: [{ offset: 3, data: bytes('xy') }] }),
    InvalidOptions,
  );
  assert.equal(t.committed(), undefined);
});

test('a commit says whether the actor had durable messages; an older source that does not, had', () => {
  const commit = { op: 'commit', migration: 'm9', total: 0, ...from };
  assert.equal((parseHandoff(commit) as { durable?: boolean }).durable, true);
  assert.equal((parseHandoff({ ...commit, durable: false }) as { durable?: boolean }).durable, false);
});

test('a commit may hand over pull inboxes, each with how long to read it; anything else is refused', () => {
  const commit = { op: 'commit', migration: 'm11', total: 0, ...from };
  const pulls = [
    { inbox: '_INBOX.abc.1', keepMs: 6000 },
    { inbox: '_INBOX.def.2', keepMs: 0 },
  ];
  assert.deepEqual((parseHandoff({ ...commit, pulls }) as { pulls?: unknown }).pulls, pulls);
  assert.equal((parseHandoff(commit) as { pulls?: unknown }).pulls, undefined);
  for (const bad of [
    '_INBOX.abc',
    [{ inbox: '_INBOX.*', keepMs: 1 }],
    [{ inbox: '_INBOX.>', keepMs: 1 }],
    [{ inbox: '_INBOX. a', keepMs: 1 }],
    [{ inbox: '_INBOX..a', keepMs: 1 }],
    [{ inbox: '_INBOX.a', keepMs: -1 }],
    [{ inbox: '_INBOX.a', keepMs: 11 * 60_000 }],
    [{ inbox: '_INBOX.a' }],
    new Array(65).fill({ inbox: '_INBOX.a', keepMs: 1 }),
  ])
    assert.throws(
      () => parseHandoff({ ...commit, pulls: bad }),
      InvalidOptions,
      JSON.stringify(bad).slice(0, 40),
    );
});

test('a forwarded durable message carries a JetStream acknowledgement subject, or is refused', () => {
  const item = { b: bytes('x'), s: 'sender', t: '', d: 1 };
  const j = '$JS.ACK.stitch_c_mailbox.stitch_c_t_a.1.42.7.1700000000000000000.0';
  const done = (items: unknown[]) =>
    parseHandoff({ op: 'done', migration: 'm12', items }) as { items: { j?: string }[] };
  assert.equal(done([{ ...item, j }]).items[0]!.j, j);
  assert.equal(done([item]).items[0]!.j, undefined);
  for (const bad of ['_INBOX.x', '$JS.ACK.s.c.1.x.1.1.0', 42, '$JS.ACK.s.c.1.0.1.1.0'])
    assert.throws(() => done([{ ...item, j: bad }]), InvalidOptions, String(bad));
});

test("a commit may carry the source's record as bytes, and nothing else there", () => {
  const commit = { op: 'commit', migration: 'm10', total: 0, ...from };
  const record = new Uint8Array([1, 2, 3]);
  assert.deepEqual((parseHandoff({ ...commit, record }) as { record?: Uint8Array }).record, record);
  assert.equal((parseHandoff(commit) as { record?: Uint8Array }).record, undefined);
  assert.throws(() => parseHandoff({ ...commit, record: 'abc' }), InvalidOptions);
  // With it, the chunks and outcome blocks written since the target read it.
  const recordChunks = [['c.7.w.0', new Uint8Array([4])]];
  const recordBlocks = [new Uint8Array([5])];
  const parsed = parseHandoff({ ...commit, record, recordChunks, recordBlocks });
  assert.deepEqual(shippedRecord(parsed as Extract<HandoffRequest, { op: 'commit' }>), {
    record,
    chunks: recordChunks,
    blocks: recordBlocks,
  });
  assert.equal(
    shippedRecord(parseHandoff({ ...commit, recordChunks }) as Extract<HandoffRequest, { op: 'commit' }>),
    undefined,
  );
  assert.throws(() => parseHandoff({ ...commit, record, recordChunks: [['c.7.w.0', 'x']] }), InvalidOptions);
  assert.throws(
    () => parseHandoff({ ...commit, record, recordChunks: [[7, new Uint8Array(1)]] }),
    InvalidOptions,
  );
  assert.throws(() => parseHandoff({ ...commit, record, recordBlocks: [1] }), InvalidOptions);
  assert.throws(
    () =>
      parseHandoff({ ...commit, record, recordBlocks: Array.from({ length: 5000 }, () => recordBlocks[0]) }),
    InvalidOptions,
  );
});

test('early messages wait for the commit and go first; after it they are queued as they come', async () => {
  const forwarded: string[][] = [];
  const steps: string[] = [];
  const prepared = preparedWith({
    commit: async () => ({
      epoch: 2,
      adopted: {
        forwarded: (items) => void forwarded.push(items.map((f) => new TextDecoder().decode(f.b))),
        releaseDurable: () => void steps.push('durable released'),
        release: () => void steps.push('released'),
      },
    }),
  });
  const incoming = incomingWith(async () => prepared);
  const item = (text: string) => ({ b: bytes(text), s: 'caller', t: '', d: Number.POSITIVE_INFINITY });
  await incoming.handle({ op: 'begin', migration: 'e1', type: 't', id: 'a' });
  await incoming.handle({ op: 'early', migration: 'e1', items: [item('m1'), item('m2')] });
  await incoming.handle({ op: 'early', migration: 'e1', items: [item('m3')] });
  assert.deepEqual(forwarded, [], 'nothing is queued before the commit');
  await incoming.handle({ op: 'commit', migration: 'e1', total: 0, ...from });
  await incoming.handle({ op: 'early', migration: 'e1', items: [item('m4')] });
  assert.deepEqual(forwarded, [['m1', 'm2', 'm3'], ['m4']]);
  // The durable messages the source held come first, the last batch saying so: they run from there.
  await incoming.handle(parseHandoff({ op: 'forward', migration: 'e1', items: [item('d1')] }));
  assert.deepEqual(steps, []);
  await incoming.handle(parseHandoff({ op: 'forward', migration: 'e1', items: [item('d2')], durable: true }));
  assert.deepEqual(steps, ['durable released']);
  await incoming.handle({ op: 'done', migration: 'e1', items: [] });
  assert.deepEqual(steps, ['durable released', 'released']);
  forwarded.splice(2);

  // An abort drops what came early: the source still has it.
  await incoming.handle({ op: 'begin', migration: 'e2', type: 't', id: 'b' });
  await incoming.handle({ op: 'early', migration: 'e2', items: [item('x')] });
  await incoming.handle({ op: 'abort', migration: 'e2' });
  assert.deepEqual(forwarded, [['m1', 'm2', 'm3'], ['m4']]);
  await assert.rejects(incoming.handle({ op: 'early', migration: 'e2', items: [item('y')] }), InvalidOptions);
});

test('early messages are bounded in bytes as a state is (maxStateBytes), not only in count', async () => {
  const forwarded: number[] = [];
  const prepared = preparedWith({
    commit: async () => ({
      epoch: 2,
      adopted: { ...noAdopted, forwarded: (items) => void forwarded.push(...items.map((f) => f.b.length)) },
    }),
  });
  const incoming = incomingWith(async () => prepared);
  const item = (n: number) => ({ b: new Uint8Array(n), s: 'caller', t: '', d: Number.POSITIVE_INFINITY });
  await incoming.handle({ op: 'begin', migration: 'big', type: 't', id: 'a' });
  await incoming.handle({ op: 'early', migration: 'big', items: [item(600)] });
  // Two messages of 600 bytes are more than the 1 KiB a state may have here: the second is refused.
  await assert.rejects(
    incoming.handle({ op: 'early', migration: 'big', items: [item(600)] }),
    (e: unknown) => e instanceof Overloaded && /1024 bytes of messages/.test(e.message),
  );
  await incoming.handle({ op: 'early', migration: 'big', items: [item(400)] });
  await incoming.handle({ op: 'commit', migration: 'big', total: 0, ...from });
  // After the commit they are queued as they come, each bounded by the actor's own mailbox.
  await incoming.handle({ op: 'early', migration: 'big', items: [item(1000)] });
  assert.deepEqual(forwarded, [600, 400, 1000]);
});

/** A commit's answer without its `workMs`, which is checked to be a duration. */
const answerOf = (answer: unknown) => {
  const { workMs, ...rest } = answer as { workMs?: unknown };
  assert.ok(typeof workMs === 'number' && workMs >= 0, `the target's work on the commit: ${workMs}`);
  return rest;
};

test('a target that took over the pulls says in its commit answer how long it has read them', async () => {
  const prepared = preparedWith({
    commit: async (c) => ({ epoch: 3, adopted: noAdopted, ...(c.pulls ? { pullsHeldMs: 12.5 } : {}) }),
  });
  const incoming = incomingWith(async () => prepared);
  await incoming.handle({ op: 'begin', migration: 'h1', type: 't', id: 'a' });
  const pulls = [{ inbox: '_INBOX.x.1', keepMs: 6000 }];
  assert.deepEqual(
    answerOf(await incoming.handle({ op: 'commit', migration: 'h1', total: 0, ...from, pulls })),
    {
      epoch: 3,
      pullsHeldMs: 12.5,
    },
  );
  await incoming.handle({ op: 'begin', migration: 'h2', type: 't', id: 'b' });
  assert.deepEqual(answerOf(await incoming.handle({ op: 'commit', migration: 'h2', total: 0, ...from })), {
    epoch: 3,
  });
});

test('a commit handing over pulls outside the prefix the target offered is refused before anything is taken', async () => {
  for (const [prefix, inbox] of [
    ['_INBOX', 'stitch.c.actor.t.a'],
    ['stitch.c.pull', '_INBOX.x.1'],
    ['', '_INBOX.x.1'],
  ] as const) {
    let commits = 0;
    const incoming = incomingWith(
      async () =>
        preparedWith({
          commit: async () => {
            commits++;
            return { epoch: 3, adopted: noAdopted };
          },
        }),
      new ManualClock(),
      prefix,
    );
    await incoming.handle({ op: 'begin', migration: 'p', type: 't', id: 'a' });
    const pulls = [{ inbox, keepMs: 6000 }];
    await assert.rejects(
      incoming.handle({ op: 'commit', migration: 'p', total: 0, ...from, pulls }),
      InvalidOptions,
      `${prefix} / ${inbox}`,
    );
    assert.equal(commits, 0);
  }
});

test('a forwarded message whose reply subject no subscription can have runs without a reply', () => {
  const item = { b: bytes('x'), s: 'sender', t: '', d: 1 };
  const done = (items: unknown[]) =>
    parseHandoff({ op: 'done', migration: 'm13', items }) as { items: { r?: string }[] };
  assert.equal(done([{ ...item, r: '_INBOX.a.1' }]).items[0]!.r, '_INBOX.a.1');
  for (const bad of ['_INBOX.*', 'a.>', 'has space', 'a..b', 42, '', 'x'.repeat(600)])
    assert.equal(done([{ ...item, r: bad }]).items[0]!.r, undefined, String(bad));
});

test("the commit's answer says how long the target worked on it and moved the directory entry", async () => {
  const prepared = preparedWith({
    commit: async () => {
      await delay(5);
      return { epoch: 3, adopted: noAdopted, directoryMs: 1.5 };
    },
  });
  const incoming = incomingWith(async () => prepared);
  await incoming.handle({ op: 'begin', migration: 'w1', type: 't', id: 'a' });
  const answer = (await incoming.handle({ op: 'commit', migration: 'w1', total: 0, ...from })) as {
    workMs: number;
    directoryMs: number;
  };
  assert.equal(answer.directoryMs, 1.5);
  // It spans the prepared commit (5 ms of timers at least, less the timer's rounding).
  assert.ok(answer.workMs >= 4, `work ${answer.workMs} ms`);
});

test('on a cluster the target subscribes at begin to the pulls it may read, and stops when no commit takes them', async () => {
  const watched: (string[] | undefined)[] = [];
  let discarded = 0;
  const prepared = preparedWith({ discard: () => void discarded++ });
  const clock = new ManualClock();
  const incoming = incomingWith(
    async (_type, _id, pulls) => {
      watched.push(pulls?.map((p) => p.inbox));
      return prepared;
    },
    clock,
    'stitch.c.pull',
  );
  const begin = (migration: string, inboxes: string[]) =>
    incoming.handle(
      parseHandoff({
        op: 'begin',
        migration,
        type: 't',
        id: migration,
        pulls: inboxes.map((inbox) => ({ inbox, keepMs: 6000 })),
      }),
    );
  await begin('w1', ['stitch.c.pull.a', 'stitch.c.pull.b']);
  // One it may not read (another principal's inbox): it watches none, and the commit falls back.
  await begin('w2', ['stitch.c.pull.a', '_INBOX.other.1']);
  assert.deepEqual(watched, [['stitch.c.pull.a', 'stitch.c.pull.b'], undefined]);
  await incoming.handle({ op: 'abort', migration: 'w1' });
  assert.equal(discarded, 1, 'an abort stops the watch');
  clock.advance(10_001);
  assert.equal(discarded, 2, 'so does a source gone quiet');
  await begin('w3', ['stitch.c.pull.a']);
  await incoming.handle({ op: 'commit', migration: 'w3', total: 0, ...from });
  clock.advance(1001);
  assert.equal(discarded, 2, 'a committed move took them, or let them go itself');
  assert.throws(
    () => parseHandoff({ op: 'begin', migration: 'w4', type: 't', id: 'a', pulls: [{ inbox: 'a b' }] }),
    InvalidOptions,
  );
  assert.throws(
    () =>
      parseHandoff({
        op: 'begin',
        migration: 'w4',
        type: 't',
        id: 'a',
        pulls: Array.from({ length: 65 }, (_, i) => ({ inbox: `stitch.c.pull.${i}`, keepMs: 1 })),
      }),
    InvalidOptions,
  );
});

test('a step while begin still prepares is refused (a hostile or repeated request), an abort then ends the migration', async () => {
  let discarded = 0;
  let ready: (p: Prepared) => void = () => undefined;
  const prepared = preparedWith({
    commit: async () => assert.fail('no commit before begin is answered'),
    discard: () => void discarded++,
  });
  const incoming = incomingWith(() => new Promise<Prepared>((resolve) => (ready = resolve)));
  const begun = incoming.handle({ op: 'begin', migration: 'p1', type: 't', id: 'a' });
  for (const req of [
    { op: 'commit', migration: 'p1', total: 0, ...from },
    { op: 'change', migration: 'p1', total: 1, offset: 0, data: bytes('x') },
    { op: 'state', migration: 'p1', total: 1, offset: 0, data: bytes('x') },
    { op: 'done', migration: 'p1', items: [] },
  ] satisfies HandoffRequest[])
    await assert.rejects(
      incoming.handle(req),
      (err: Error) => err instanceof InvalidOptions && /still beginning/.test(err.message),
    );
  await incoming.handle({ op: 'abort', migration: 'p1' });
  assert.equal(incoming.size, 0);
  ready(prepared);
  await assert.rejects(begun, InvalidOptions);
  assert.equal(discarded, 1, 'what begin prepared is let go');
});

test('a migrated state over maxMigrationBytes is refused with that option named', async () => {
  const t = target();
  await t.incoming.handle({ op: 'begin', migration: 'big', type: 't', id: 'a' });
  await assert.rejects(
    t.incoming.handle({ op: 'state', migration: 'big', total: 4096, offset: 0, data: bytes('x') }),
    (err: Error) =>
      err instanceof PayloadTooLarge &&
      /4096-byte migrated state exceeds this node's maxMigrationBytes of 1024 bytes/.test(err.message),
  );
});

test("a target that read a record in chunks builds the image from it; the commit brings it to the source's record, then applies the parts", async () => {
  const records = new Map([
    [5, recordOf({ c0: 'abcd', c1: 'ef' })],
    // What the source wrote since: the second chunk changed, and grew.
    [7, recordOf({ c0: 'abcd', c2: 'ghi' })],
  ]);
  const t = target(records);
  // Not asked (the source has delta hooks, or no record in chunks): no image is built from the record.
  assert.deepEqual(await t.incoming.handle({ op: 'begin', migration: 'r0', type: 't', id: 'a' }), {
    parts: true,
    pulls: '_INBOX',
  });
  await t.incoming.handle({ op: 'abort', migration: 'r0' });
  assert.deepEqual(
    await t.incoming.handle(
      parseHandoff({ op: 'begin', migration: 'r1', type: 't', id: 'a', fromRecord: true }),
    ),
    { parts: true, record: true, pulls: '_INBOX' },
  );
  // Sent in the pause against the record at 7: held until the image is that record's snapshot.
  await t.incoming.handle(
    parseHandoff({ op: 'state', migration: 'r1', total: 7, offset: 4, data: bytes('X'), fromRecord: true }),
  );
  await t.incoming.handle(
    parseHandoff({
      op: 'commit',
      migration: 'r1',
      total: 7,
      ...from,
      recordRevision: 7,
      fromRecord: ['c0', 'c2'],
      parts: [{ offset: 0, data: bytes('Z') }],
    }),
  );
  assert.deepEqual(t.log, ['sync 7']);
  const c = t.committed();
  assert.equal(c?.staged, false);
  assert.equal(new TextDecoder().decode((c as { image: Uint8Array }).image), 'ZbcdXhi');
});

test('a commit against a record other than the one the target reads fails; parts against a record need one', async () => {
  const records = new Map([[5, recordOf({ c0: 'abcd' })]]);
  const t = target(records);
  await t.incoming.handle({ op: 'begin', migration: 'r2', type: 't', id: 'a', fromRecord: true });
  await assert.rejects(
    t.incoming.handle({
      op: 'commit',
      migration: 'r2',
      total: 4,
      ...from,
      recordRevision: 5,
      fromRecord: ['c9'],
    }),
    /not the one the source compared its state with/,
  );
  assert.equal(t.committed(), undefined);
  // Held parts are bounded like an image: within their total, and at most maxStateBytes in all.
  const held = (total: number, offset: number, data: Uint8Array) =>
    t.incoming.handle({ op: 'state', migration: 'r2', total, offset, data, fromRecord: true });
  await assert.rejects(held(4, 3, bytes('QQ')), InvalidOptions);
  await assert.rejects(held(2048, 0, new Uint8Array(1500)), PayloadTooLarge);
  await t.incoming.handle({
    op: 'state',
    migration: 'r2',
    total: 4,
    offset: 0,
    data: bytes('Q'),
    fromRecord: true,
  });
  await assert.rejects(
    t.incoming.handle({ op: 'commit', migration: 'r2', total: 4, ...from }),
    /the commit names no record/,
  );
  // A target that read no record in chunks says nothing of one, and refuses a commit against one.
  const plain = target();
  assert.deepEqual(
    await plain.incoming.handle({ op: 'begin', migration: 'r3', type: 't', id: 'a', fromRecord: true }),
    { parts: true, pulls: '_INBOX' },
  );
  await assert.rejects(
    plain.incoming.handle({ op: 'commit', migration: 'r3', total: 0, ...from, fromRecord: [] }),
    /did not read/,
  );
  for (const fromRecord of ['c0', [1], new Array(70_000).fill('c')])
    assert.throws(
      () => parseHandoff({ op: 'commit', migration: 'r4', total: 0, ...from, fromRecord }),
      InvalidOptions,
    );
});

test('a commit may list the durable messages the source committed, as runs; malformed or oversized lists are refused', () => {
  const commit = { op: 'commit', migration: 'm12', total: 0, ...from };
  const committed = [
    [40, 3],
    [45, 1],
  ];
  assert.deepEqual((parseHandoff({ ...commit, committed }) as { committed?: unknown }).committed, committed);
  assert.equal((parseHandoff(commit) as { committed?: unknown }).committed, undefined);
  for (const bad of [
    'x',
    [[40]],
    [[0, 1]],
    [[40, 0]],
    [[40, -1]],
    [[1.5, 1]],
    [[40, MAX_COMMITTED_SEQS + 1]],
    new Array(MAX_COMMITTED_RUNS + 1).fill([1, 1]),
  ])
    assert.throws(
      () => parseHandoff({ ...commit, committed: bad }),
      InvalidOptions,
      JSON.stringify(bad).slice(0, 40),
    );
});

test('a commit may name, per sender, the last message the source ran; malformed lists are refused', () => {
  const commit = { op: 'commit', migration: 'm11', total: 0, ...from };
  const ran = [
    ['client-a', 12],
    ['client-b', 3],
  ];
  assert.deepEqual((parseHandoff({ ...commit, ran }) as { ran?: unknown }).ran, ran);
  assert.equal((parseHandoff(commit) as { ran?: unknown }).ran, undefined);
  for (const bad of [
    'x',
    [['client-a']],
    [['client-a', -1]],
    [['', 1]],
    [[7, 1]],
    new Array(MAX_SENDER_COUNTS + 1).fill(['s', 1]),
  ])
    assert.throws(
      () => parseHandoff({ ...commit, ran: bad }),
      InvalidOptions,
      JSON.stringify(bad).slice(0, 40),
    );
  // A forwarded message's previous count goes with it only when below its own.
  const forward = (p: number) =>
    (
      parseHandoff({ op: 'forward', migration: 'm11', items: [{ b: bytes('x'), s: 'a', q: 5, p }] }) as {
        items: { p?: number }[];
      }
    ).items[0]!.p;
  assert.equal(forward(4), 4);
  assert.equal(forward(5), undefined);
});

test('begins past the places wait their turn, first come first served; a place passes on as a migration ends', async () => {
  const prepared: string[] = [];
  const incoming = incomingWith(async (_type, id) => {
    prepared.push(id);
    return preparedWith();
  });
  const begin = (m: string) => incoming.handle({ op: 'begin', migration: m, type: 't', id: m });
  await begin('m1');
  await begin('m2');
  const third = begin('m3');
  const fourth = begin('m4');
  await delay(5);
  assert.deepEqual(prepared, ['m1', 'm2'], 'two places: the others wait');
  await incoming.handle({ op: 'abort', migration: 'm2' });
  await third;
  assert.deepEqual(prepared, ['m1', 'm2', 'm3']);
  const fifth = begin('m5');
  await delay(5);
  // The place m1 leaves goes to m4, which waited first, not to m5.
  await incoming.handle({ op: 'abort', migration: 'm1' });
  await fourth;
  await delay(5);
  assert.deepEqual(prepared, ['m1', 'm2', 'm3', 'm4']);
  await incoming.handle({ op: 'commit', migration: 'm3', total: 0, ...from });
  await incoming.handle({ op: 'done', migration: 'm3', items: [] });
  await fifth;
  assert.deepEqual(prepared, ['m1', 'm2', 'm3', 'm4', 'm5']);
  assert.equal(incoming.size, 2);
});

test('the wait for a place is bounded in length and time; an abort or the node closing takes a begin out of it', async () => {
  const clock = new ManualClock();
  const incoming = incomingWith(async () => preparedWith(), clock);
  const begin = (m: string) => incoming.handle({ op: 'begin', migration: m, type: 't', id: m });
  await begin('m1');
  await begin('m2');
  const late = begin('w1');
  const aborted = begin('w2');
  await assert.rejects(
    begin('w3'),
    (err: Error) => err instanceof Overloaded && /2 waiting/.test(err.message),
  );
  await assert.rejects(
    begin('w1'),
    (err: Error) => err instanceof InvalidOptions && /begun already/.test(err.message),
  );
  await incoming.handle({ op: 'abort', migration: 'w2' });
  await assert.rejects(
    aborted,
    (err: Error) => err instanceof InvalidOptions && /aborted while it waited/.test(err.message),
  );
  clock.advance(5000);
  await assert.rejects(
    late,
    (err: Error) => err instanceof Overloaded && /none ended within 5000 ms/.test(err.message),
  );
  // Neither took a place: the next one that ends lets a new begin in at once.
  await incoming.handle({ op: 'abort', migration: 'm1' });
  await begin('m3');
  assert.equal(incoming.size, 2);
  const closing = begin('w4');
  incoming.close();
  await assert.rejects(closing, (err: Error) => err instanceof InvalidOptions && /closing/.test(err.message));
  assert.equal(incoming.size, 0);
});

test('a begin that waited for a place and is then refused (the actor is migrating here already) gives the place on', async () => {
  const incoming = incomingWith(async () => preparedWith());
  await incoming.handle({ op: 'begin', migration: 'm1', type: 't', id: 'a' });
  await incoming.handle({ op: 'begin', migration: 'm2', type: 't', id: 'b' });
  const again = incoming.handle({ op: 'begin', migration: 'm3', type: 't', id: 'b' });
  const other = incoming.handle({ op: 'begin', migration: 'm4', type: 't', id: 'c' });
  await incoming.handle({ op: 'abort', migration: 'm1' });
  await assert.rejects(
    again,
    (err: Error) => err instanceof InvalidOptions && /already migrating here/.test(err.message),
  );
  await other;
  assert.equal(incoming.size, 2);
});

test('a quiet source is asked after before its commit: one that is gone frees its place at once, a live one keeps it', async () => {
  const clock = new ManualClock();
  const gone: string[] = [];
  const asked: string[] = [];
  let discarded = 0;
  /** What each migration's source check answers next (undefined: the source still runs it). */
  const answers = new Map<string, string | undefined>();
  const incoming = incomingWith(
    async (_type, id) =>
      preparedWith({
        sourceGone: async () => {
          asked.push(id);
          return answers.get(id);
        },
        discard: () => void discarded++,
      }),
    clock,
    '_INBOX',
    { sourceCheckMs: 2000, onSourceGone: (type, id, why) => gone.push(`${type}/${id}: ${why}`) },
  );
  const begin = (m: string) => incoming.handle({ op: 'begin', migration: m, type: 't', id: m });
  const settle = () => delay(1);
  await begin('live');
  await begin('dead');
  // Heard from within the check's period: nobody is asked.
  clock.advance(1500);
  await incoming.handle({ op: 'state', migration: 'live', total: 1, offset: 0, data: bytes('x') });
  clock.advance(600);
  await settle();
  assert.deepEqual(asked, ['dead']);
  assert.equal(incoming.size, 2, 'a source that still runs the actor keeps its place');
  answers.set('dead', 'node n1 no longer runs t.dead');
  clock.advance(2000);
  await settle();
  assert.deepEqual(asked, ['dead', 'live', 'dead']);
  assert.deepEqual(gone, ['t/dead: node n1 no longer runs t.dead']);
  assert.equal(discarded, 1);
  assert.equal(incoming.size, 1, 'its place is free');
  await begin('next');
  // An answer that comes after the source spoke again is not acted on.
  answers.set('live', 'stale');
  clock.advance(2000);
  await incoming.handle({ op: 'state', migration: 'live', total: 1, offset: 0, data: bytes('y') });
  await settle();
  assert.equal(incoming.size, 2);
  assert.equal(gone.length, 1);
});

test('a commit under way is finished whatever a check of its source says; a source never heard again ends at the idle bound', async () => {
  const clock = new ManualClock();
  const gone: string[] = [];
  let release: () => void = () => undefined;
  const incoming = incomingWith(
    async (_type, id) =>
      preparedWith({
        sourceGone: async () => 'gone',
        commit: async () => {
          if (id === 'slow') await new Promise<void>((resolve) => (release = resolve));
          return { epoch: 2, adopted: noAdopted };
        },
      }),
    clock,
    '_INBOX',
    { sourceCheckMs: 2000, onSourceGone: (_type, id) => gone.push(id) },
  );
  await incoming.handle({ op: 'begin', migration: 'slow', type: 't', id: 'slow' });
  const committing = incoming.handle({ op: 'commit', migration: 'slow', total: 0, ...from });
  clock.advance(4000);
  await delay(1);
  assert.deepEqual(gone, [], 'not dropped while its commit runs');
  release();
  assert.equal(((await committing) as { epoch: number }).epoch, 2);
  // A source that answers nothing at all (a check that fails) is dropped at idleMs, as before.
  const silent = incomingWith(
    async () => preparedWith({ sourceGone: () => Promise.reject(new Error('no answer')) }),
    clock,
    '_INBOX',
    { sourceCheckMs: 2000 },
  );
  await silent.handle({ op: 'begin', migration: 's', type: 't', id: 's' });
  for (let waited = 0; waited < 10_000; waited += 2000) {
    assert.equal(silent.size, 1);
    clock.advance(2000);
    await delay(1);
  }
  assert.equal(silent.size, 0);
  // Nor does a question never answered hold the place past the bound.
  const hung = incomingWith(
    async () => preparedWith({ sourceGone: () => new Promise<string | undefined>(() => undefined) }),
    clock,
    '_INBOX',
    { sourceCheckMs: 2000 },
  );
  await hung.handle({ op: 'begin', migration: 'h', type: 't', id: 'h' });
  clock.advance(9_999);
  await delay(1);
  assert.equal(hung.size, 1);
  clock.advance(1);
  assert.equal(hung.size, 0);
});

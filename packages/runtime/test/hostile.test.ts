// Limits on what arrives from outside: chunk reassembly, reply subjects, the guard, the codec.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Packr } from 'msgpackr';
import { systemClock } from '../src/clock.js';
import { resolveConnectOptions } from '../src/cluster/options.js';
import { Guard } from '../src/guard.js';
import { BadMessage, InvalidOptions, Overloaded, PayloadTooLarge } from '../src/index.js';
import { Assembler, decode, encode } from '../src/internal.js';
import { isCapabilityRecord } from '../src/node/capabilities.js';
import { DEFAULT_MAX_ACTORS, resolveNodeOptions } from '../src/node/options.js';
import { validReplySubject } from '../src/wire/envelope.js';
import { ManualClock } from './fixtures/manual-clock.js';
import { quietHost, testInbox } from './fixtures/test-inbox.js';

const part = (n: number) => new Uint8Array(n).fill(7);

test('a chunk header claiming more parts than the largest message allows is refused before allocating', () => {
  const asm = new Assembler({ maxMessageBytes: 1000, partBytes: 100 });
  assert.throws(() => asm.add('k', 'a:0:10000000000', part(1)), PayloadTooLarge);
  assert.throws(() => asm.add('k', 'b:0:11', part(1)), PayloadTooLarge);
  assert.equal(asm.pending, 0);
  // 10 parts of 100 bytes is the most it takes.
  let whole: Uint8Array | undefined;
  for (let i = 0; i < 10; i++) whole = asm.add('k', `c:${i}:10`, part(100));
  assert.equal(whole?.length, 1000);
});

test('a partial message cannot grow past maxMessageBytes', () => {
  const asm = new Assembler({ maxMessageBytes: 1000, partBytes: 10 });
  assert.equal(asm.add('k', 'a:0:50', part(600)), undefined);
  assert.throws(() => asm.add('k', 'a:1:50', part(600)), PayloadTooLarge);
  assert.equal(asm.pending, 0);
  assert.equal(asm.pendingBytes, 0);
});

test('incomplete messages are capped per key, in total and in bytes', () => {
  const asm = new Assembler({ maxPartialsPerKey: 2, maxPartials: 3, maxPendingBytes: 250 });
  asm.add('a', 'm1:0:2', part(10));
  asm.add('a', 'm2:0:2', part(10));
  assert.throws(() => asm.add('a', 'm3:0:2', part(10)), Overloaded);
  asm.add('b', 'm1:0:2', part(10));
  assert.throws(() => asm.add('c', 'm1:0:2', part(10)), Overloaded);
  assert.equal(asm.pending, 3);
  // Finishing one frees its slot and its bytes.
  assert.equal(asm.add('a', 'm1:1:2', part(10))?.length, 20);
  assert.equal(asm.pending, 2);
  asm.add('c', 'm1:0:2', part(10));
  assert.throws(() => asm.add('c', 'm1:1:2', part(300)), Overloaded);
  // The refused message is dropped whole (its first 10 bytes too).
  assert.equal(asm.pendingBytes, 20);
});

test('a partial message expires ttlMs after its first part; later parts do not extend it', () => {
  let now = 0;
  const asm = new Assembler({ ttlMs: 1000, now: () => now });
  assert.equal(asm.add('k', 'a:0:3', part(1)), undefined);
  now = 900;
  assert.equal(asm.add('k', 'a:1:3', part(1)), undefined);
  now = 1100;
  // The first two parts are gone: the last one starts a new partial instead of completing the message.
  assert.equal(asm.add('k', 'a:2:3', part(1)), undefined);
  assert.equal(asm.pendingBytes, 1);
});

test('reply subjects from headers must be publishable subjects', () => {
  for (const ok of ['_INBOX.abc.1', 'a', 'a.b-c_d.9']) assert.equal(validReplySubject(ok), ok);
  for (const bad of [
    undefined,
    '',
    'bad subject',
    'a..b',
    '.a',
    'a.',
    'x\ty',
    'a\r\nPUB x 1',
    'a.*',
    'a.>',
    'y'.repeat(513),
  ])
    assert.equal(validReplySubject(bad), undefined, JSON.stringify(bad));
});

test('the guard catches throws and rejections, counts them, and logs at most once a second per boundary', async () => {
  let now = 0;
  const lines: Record<string, unknown>[] = [];
  const guard = new Guard(
    (_level, _msg, fields) => {
      lines.push(fields ?? {});
    },
    () => now,
  );
  const cb = guard.callback('sub', (m: number) => {
    if (m > 0) throw new Error(`bad ${m}`);
  });
  for (let i = 1; i <= 5; i++) cb(null, i);
  cb(null, 0);
  guard.run('async', () => Promise.reject(new Error('later')));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(guard.counts(), { sub: 5, async: 1 });
  assert.equal(lines.length, 2);
  now = 1500;
  cb(null, 6);
  assert.equal(lines.length, 3);
  assert.equal(lines[2]!.sinceLastLog, 5);
  // A throwing log function does not undo the guard.
  const broken = new Guard(() => {
    throw new Error('log down');
  });
  broken.run('x', () => {
    throw new Error('boom');
  });
  assert.deepEqual(broken.counts(), { x: 1 });
});

test('a structured-clone (cyclic) payload is a BadMessage, typed arrays still decode', () => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const bytes = new Packr({ structuredClone: true }).pack({ type: 'x', data: cyclic });
  assert.throws(() => decode(bytes), BadMessage);
  const back = decode(encode({ f: new Float32Array([1, 2]) })) as { f: Float32Array };
  assert.ok(back.f instanceof Float32Array);
});

test('only well-formed capability records count as nodes', () => {
  const rec = {
    nodeId: 'n1',
    healthy: true,
    actorTypes: ['a'],
    devices: [],
    labels: {},
    load: { actors: 0, queued: 0, running: 0, loadAvg1: 0 },
  };
  // Built before the asserts below narrow `rec`.
  const bad: unknown[] = [
    null,
    1,
    [],
    {},
    { ...rec, actorTypes: 'a' },
    { ...rec, load: null },
    // Placement reads each device's kind and a modelled one's catalog id, and divides by the peaks.
    { ...rec, devices: [null] },
    { ...rec, devices: [{ kind: 7 }] },
    { ...rec, devices: [{ kind: 'virtual:h100' }] },
    { ...rec, calibrated: {} },
    { ...rec, calibrated: { matmulGflops: 0, matvecGbps: 10 } },
    { ...rec, calibrated: { matmulGflops: 100, matvecGbps: null } },
  ];
  assert.ok(isCapabilityRecord(rec, 'n1'));
  assert.ok(
    isCapabilityRecord(
      {
        ...rec,
        devices: [{ kind: 'cpu' }, { kind: 'virtual:h100', catalogId: 'h100', modelled: true, slots: 1 }],
        calibrated: { target: 'x86-64-v3', matmulGflops: 90, matvecGbps: 12, measuredAt: 1 },
      },
      'n1',
    ),
  );
  assert.ok(!isCapabilityRecord(rec, 'n2'));
  for (const v of bad) assert.ok(!isCapabilityRecord(v, 'n1'), JSON.stringify(v));
});

test('maxActors and the durable stream limits have defaults and refuse nonsense', () => {
  assert.equal(resolveNodeOptions({}, 3000).maxActors, DEFAULT_MAX_ACTORS);
  assert.equal(resolveNodeOptions({ maxActors: 3 }, 3000).maxActors, 3);
  assert.throws(() => resolveNodeOptions({ maxActors: 0 }, 3000), InvalidOptions);
  // Left to the server (a cluster gets a grace period), unless given.
  assert.equal(resolveNodeOptions({}, 3000).migrationGraceMs, undefined);
  assert.equal(resolveNodeOptions({ migrationGraceMs: 0 }, 3000).migrationGraceMs, 0);
  for (const migrationGraceMs of [-1, Number.NaN, 60_000])
    assert.throws(() => resolveNodeOptions({ migrationGraceMs }, 3000), InvalidOptions);
  const o = resolveConnectOptions({ name: 'c' });
  assert.deepEqual(o.durableStream, { maxBytes: 1024 ** 3, maxAgeMs: 7 * 24 * 3600 * 1000 });
  assert.equal(o.maxMessageBytes, 64 * 1024 * 1024);
  assert.throws(() => resolveConnectOptions({ name: 'c', durableStream: { maxBytes: -1 } }), InvalidOptions);
  assert.equal(o.closeOfflineMs, 5000);
  for (const closeOfflineMs of [-1, Number.NaN])
    assert.throws(() => resolveConnectOptions({ name: 'c', closeOfflineMs }), InvalidOptions);
});

test('$outcome waiters are capped per key and in keys', async () => {
  const sent: string[] = [];
  const host = quietHost();
  const record = { outcome: () => undefined, save: async () => undefined, superseded: false };
  const replies = { send: (subject: string) => sent.push(subject) };
  const inbox = testInbox({ host, record, replies });
  for (let i = 0; i < 100; i++) inbox.outcome('k', `r.${i}`, undefined, Infinity);
  for (let i = 0; i < 2000; i++) inbox.outcome(`key${i}`, `w.${i}`, undefined, Infinity);
  const msg = () => ({ ack: () => undefined, nak: () => undefined });
  const out = { ok: true as const, data: encode(1) };
  inbox.applied({ m: msg() as never, reply: undefined, out, key: 'k' });
  await inbox.settled();
  assert.equal(sent.length, 64, 'waiters per key');
  inbox.applied({ m: msg() as never, reply: undefined, out, key: 'key1500' });
  await inbox.settled();
  assert.equal(sent.length, 64, 'keys past the cap are not remembered');
  inbox.applied({ m: msg() as never, reply: undefined, out, key: 'key5' });
  await inbox.settled();
  assert.equal(sent.length, 65);
});

test('$outcome waiters leave at their deadline: keys that never commit do not hold the cap for good', async () => {
  const sent: string[] = [];
  const clock = new ManualClock(0);
  const host = { ...quietHost(), clock };
  const record = { outcome: () => undefined, save: async () => undefined, superseded: false };
  const inbox = testInbox({ host, record, replies: { send: (subject: string) => sent.push(subject) } });
  // A key too long for any header is not waited for.
  const long = 'x'.repeat(5000);
  inbox.outcome(long, 'long', undefined, Infinity);
  // 1023 keys nobody will ever commit (a client's random keys), deadlines 1 s away, and one without
  // a deadline (a foreign client), waited for the stream's duplicate window at most.
  for (let i = 0; i < 1023; i++) inbox.outcome(`stray${i}`, `s.${i}`, undefined, 1000);
  inbox.outcome('foreign', 'f', undefined, Infinity);
  const msg = () => ({ ack: () => undefined, nak: () => undefined });
  const out = { ok: true as const, data: encode(1) };
  inbox.outcome('real', 'early', undefined, 5000);
  inbox.applied({ m: msg() as never, reply: undefined, out, key: 'real' });
  await inbox.settled();
  assert.deepEqual(sent, [], 'the cap is full: a key asked for now is not waited for');
  // Past their deadlines the strays make room.
  clock.advance(1001);
  inbox.outcome('real2', 'late', undefined, clock.now() + 5000);
  inbox.applied({ m: msg() as never, reply: undefined, out, key: 'real2' });
  await inbox.settled();
  assert.deepEqual(sent, ['late']);
  clock.advance(120_000);
  // The cap is full again, and the next key sweeps: the key without a deadline has left.
  for (let i = 0; i < 1024; i++) inbox.outcome(`more${i}`, `m.${i}`, undefined, Infinity);
  inbox.applied({ m: msg() as never, reply: undefined, out, key: 'foreign' });
  await inbox.settled();
  assert.deepEqual(sent, ['late'], 'the key without a deadline left after the window');
  inbox.applied({ m: msg() as never, reply: undefined, out, key: long });
  await inbox.settled();
  assert.deepEqual(sent, ['late']);
});

test('a reply or ack that throws does not break the durable commit chain', async () => {
  const sent: string[] = [];
  const guard = new Guard(() => undefined);
  const host = { guard, log: () => undefined, clock: systemClock };
  const record = { outcome: () => undefined, save: async () => undefined, superseded: false };
  const replies = {
    send: (subject: string) => {
      if (subject === 'boom') throw new Error('cannot publish');
      sent.push(subject);
    },
  };
  const inbox = testInbox({ host, record, replies });
  const out = { ok: true as const, data: encode(1) };
  const throwingAck = {
    ack: () => {
      throw new Error('closed');
    },
    nak: () => undefined,
  };
  inbox.applied({ m: throwingAck as never, reply: 'boom', out, key: undefined });
  await inbox.settled();
  inbox.applied({ m: throwingAck as never, reply: 'ok.1', out, key: undefined });
  await inbox.settled();
  inbox.applied({ m: { ack: () => undefined } as never, reply: 'ok.2', out, key: undefined });
  await inbox.settled();
  assert.deepEqual(sent, ['ok.1', 'ok.2']);
  assert.equal(guard.counts()['durable commit'], 3);
});

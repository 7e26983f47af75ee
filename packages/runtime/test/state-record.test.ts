// The persisted state record against a real nats-server: a commit writes the snapshot and the latest
// outcomes only, older outcomes live in sealed blocks, a fresh activation loads every kept key, a
// stale one cannot commit, and records written before blocks existed still load.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { BLOCK } from '../src/actor/kept-outcomes.js';
import { type DirectWrites, StateRecord } from '../src/actor/state.js';
import { systemClock } from '../src/clock.js';
import { type EmbeddedNats, startEmbeddedNats } from '../src/cluster/embedded-nats.js';
import { Timeout } from '../src/errors.js';
import { Guard } from '../src/guard.js';
import { decode, encode } from '../src/wire/codec.js';
import { jetStreamPublisher } from '../src/wire/js-publish.js';
import type { Outcome } from '../src/wire/outcome.js';
import { countingGets } from './fixtures/counting-kv.js';
import { ManualClock } from './fixtures/manual-clock.js';

const WINDOW = 200;

/** Three kinds of outcome, by key number: a small reply, a reply too large to keep, an error. */
function outcomeOf(i: number): Outcome {
  if (i % 3 === 0) return { ok: true, data: encode({ i }) };
  if (i % 3 === 1) return { ok: true, data: encode('x'.repeat(300)) };
  return { ok: false, code: 'E_TEST', name: 'TestError', message: `failed ${i}` };
}

function assertKept(record: StateRecord, i: number): void {
  const out = record.outcome(`k${i}`);
  assert.ok(out, `key ${i} is kept`);
  if (i % 3 === 0) assert.deepEqual(out, outcomeOf(i));
  else if (i % 3 === 1) assert.equal(out.ok === false && out.code, 'ACTOR_DUPLICATE');
  else assert.deepEqual(out, outcomeOf(i));
}

describe('state record', () => {
  let nats: EmbeddedNats;
  let nc: NatsConnection;
  let kv: KV;

  before(async () => {
    nats = await startEmbeddedNats();
    nc = await connect({ servers: nats.url });
    kv = await new Kvm(nc).create('state_test', { history: 1 });
  });

  after(async () => {
    await nc?.close();
    await nats?.stop();
  });

  const direct = (key: string): DirectWrites => ({
    publisher: jetStreamPublisher(nc, '_INBOX', systemClock, new Guard(() => undefined)),
    subject: `$KV.state_test.${key}`,
  });

  for (const how of ['kv.update', 'direct'] as const) {
    test(`${how}: each commit writes the latest outcomes only; a fresh load finds every kept key`, async () => {
      const key = `t.${how === 'direct' ? 'd' : 'u'}`;
      const make = () =>
        new StateRecord(kv, key, WINDOW, undefined, how === 'direct' ? direct(key) : undefined);
      const record = make();
      await record.load();
      const n = 500;
      let largestTail = 0;
      for (let i = 0; i < n; i++) {
        record.snapshot = encode({ upTo: i });
        record.remember(`k${i}`, outcomeOf(i));
        await record.save();
        const stored = decode((await kv.get(key))!.value) as { t: unknown[] };
        largestTail = Math.max(largestTail, stored.t.length);
      }
      // Sealing runs after a commit; a tail awaiting its seal holds at most a few blocks.
      assert.ok(largestTail <= 3 * BLOCK, `the largest tail written held ${largestTail} outcomes`);
      // No wait for the last seal: until a block is sealed, the tail holds its outcomes.
      const fresh = make();
      await fresh.load();
      assert.deepEqual(decode(fresh.snapshot as Uint8Array), { upTo: n - 1 });
      for (let i = n - WINDOW; i < n; i++) assertKept(fresh, i);
      // Forgotten: everything before the window, rounded down to a block.
      for (let i = 0; i < Math.floor((n - WINDOW) / BLOCK) * BLOCK; i++)
        assert.equal(fresh.outcome(`k${i}`), undefined, `key ${i} is forgotten`);
      assert.ok(fresh.kept.size <= WINDOW + 2 * BLOCK, `${fresh.kept.size} kept in memory`);
    });
  }

  test('a load again (a migration commit) reads only the blocks sealed since, and finds every kept key', async () => {
    const key = 't.reload';
    const writer = new StateRecord(kv, key, WINDOW);
    await writer.load();
    const commit = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        writer.remember(`k${i}`, outcomeOf(i));
        await writer.save();
      }
    };
    await commit(0, 300);
    // Counts the reader's reads of blocks (keys `<key>.b<slot>`), on the real bucket.
    let blockReads = 0;
    const counted = new Proxy(kv, {
      get(target, prop, receiver) {
        if (prop !== 'get') return Reflect.get(target, prop, receiver);
        return (k: string) => {
          if (k.startsWith(`${key}.b`)) blockReads++;
          return target.get(k);
        };
      },
    });
    const reader = new StateRecord(counted, key, WINDOW);
    await reader.load();
    const first = blockReads;
    assert.ok(first >= WINDOW / BLOCK - 1, `the first load read ${first} blocks`);
    await commit(300, 300 + 3 * BLOCK);
    blockReads = 0;
    await reader.load();
    assert.ok(blockReads <= 4, `the second load read ${blockReads} blocks (the first ${first})`);
    const n = 300 + 3 * BLOCK;
    for (let i = n - WINDOW; i < n; i++) assertKept(reader, i);
  });

  test('a record its writer sends (a migration commit) loads as the stored one, with the blocks sealed since, reading neither', async () => {
    const key = 't.shipped';
    const writer = new StateRecord(kv, key, WINDOW);
    await writer.load();
    const commit = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        writer.remember(`k${i}`, outcomeOf(i));
        writer.snapshot = encode({ last: i });
        await writer.save();
      }
    };
    await commit(0, 100);
    // As a migration: the source marks its record before `begin`, the target reads it then.
    const since = writer.mark();
    const counted = countingGets(kv, (k) => k.startsWith(key));
    const shipped = new StateRecord(counted.kv, key, WINDOW);
    await shipped.load();
    await commit(100, 100 + 3 * BLOCK);
    const revision = writer.revision;
    const shipment = writer.shipment(since, 1 << 20);
    assert.ok(shipment, 'the last write is kept');
    assert.ok((shipment.blocks?.length ?? 0) >= 2, `${shipment.blocks?.length} blocks sealed since`);
    assert.equal(writer.shipment(since, shipment.record.length - 1), undefined, 'only when the record fits');
    const reader = new StateRecord(kv, key, WINDOW);
    await reader.load();
    assert.equal(reader.shipment(reader.mark(), 1 << 20), undefined, 'only by the writer of the revision');
    counted.reset();
    await shipped.load(revision, shipment);
    assert.equal(counted.reads, 0, 'the record and the blocks sealed since come with it');
    const read = new StateRecord(kv, key, WINDOW);
    await read.load(revision);
    assert.equal(shipped.revision, read.revision);
    // Small snapshots are stored whole: plain bytes either way.
    assert.deepEqual(decode(shipped.snapshot as Uint8Array), decode(read.snapshot as Uint8Array));
    const n = 100 + 3 * BLOCK;
    assert.deepEqual(decode(shipped.snapshot as Uint8Array), { last: n - 1 });
    for (let i = Math.max(0, n - WINDOW); i < n; i++) {
      assertKept(shipped, i);
      assert.deepEqual(shipped.outcome(`k${i}`), read.outcome(`k${i}`));
    }
    // The next write from the loaded record succeeds: the shipped revision was the stored one.
    shipped.remember(`k${n}`, outcomeOf(n));
    await shipped.save();
    assert.ok(shipped.revision > revision);
  });

  test('a stale activation cannot commit once a newer one has, and stops as superseded', async () => {
    const key = 't.stale';
    const first = new StateRecord(kv, key, WINDOW, undefined, direct(key));
    await first.load();
    first.remember('a', outcomeOf(0));
    await first.save();
    const stale = new StateRecord(kv, key, WINDOW, undefined, direct(key));
    const newer = new StateRecord(kv, key, WINDOW);
    await stale.load();
    await newer.load();
    newer.remember('b', outcomeOf(3));
    await newer.save();
    stale.remember('c', outcomeOf(6));
    await assert.rejects(stale.save(), /wrong last sequence/);
    assert.equal(stale.superseded, true);
    assert.equal(newer.superseded, false);
    const fresh = new StateRecord(kv, key, WINDOW);
    await fresh.load();
    assert.ok(fresh.outcome('a') && fresh.outcome('b'));
    assert.equal(fresh.outcome('c'), undefined, 'the stale commit left no trace');
  });

  test('a new activation fences the record it read: a stale one that comes back cannot commit, and nothing changed', async () => {
    const key = 't.fenced';
    const first = new StateRecord(kv, key, WINDOW, undefined, direct(key));
    await first.load();
    first.snapshot = encode({ total: 1 });
    first.remember('a', outcomeOf(0));
    await first.save();
    // The stale activation read the record, then its node was cut off; the new one took over.
    const stale = new StateRecord(kv, key, WINDOW, undefined, direct(key));
    await stale.load();
    const newer = new StateRecord(kv, key, WINDOW, undefined, direct(key));
    await newer.load();
    const read = newer.revision;
    await newer.fence();
    assert.ok(newer.revision > read, 'the fence wrote a revision');
    stale.remember('b', outcomeOf(3));
    await assert.rejects(stale.save(), /wrong last sequence/);
    assert.equal(stale.superseded, true, 'the stale activation stops');
    const fresh = new StateRecord(kv, key, WINDOW);
    await fresh.load();
    assert.deepEqual(decode(fresh.snapshot as Uint8Array), { total: 1 }, 'the fence stored the same record');
    assert.ok(fresh.outcome('a'));
    assert.equal(fresh.outcome('b'), undefined);
    newer.remember('c', outcomeOf(6));
    await newer.save();
    assert.equal(newer.superseded, false);

    // A stale commit that lands between the read and the fence is kept: the fence reads again.
    const racer = new StateRecord(kv, key, WINDOW, undefined, direct(key));
    await racer.load();
    const late = new StateRecord(kv, key, WINDOW, undefined, direct(key));
    await late.load();
    racer.remember('d', outcomeOf(9));
    await racer.save();
    await late.fence();
    assert.ok(late.outcome('d'), "the racer's commit is in what the fence read again");
    racer.remember('e', outcomeOf(12));
    await assert.rejects(racer.save(), /wrong last sequence/);
    // Nothing stored: nothing to fence.
    const none = new StateRecord(kv, 't.never', WINDOW, undefined, direct('t.never'));
    await none.load();
    await none.fence();
    assert.equal(none.revision, 0);
  });

  test('direct: an update whose answer is lost is found stored (not a newer owner), or written again', async () => {
    for (const stores of [true, false]) {
      const key = `t.lost.${stores ? 'stored' : 'dropped'}`;
      const real = direct(key);
      let calls = 0;
      // The first update's answer never comes: the server stored it and stopped (stores), or never got it.
      const flaky: DirectWrites = {
        subject: real.subject,
        publisher: {
          publish: async (subject, data, headers, timeoutMs) => {
            if (calls++ > 0) return real.publisher.publish(subject, data, headers, timeoutMs);
            if (stores) await real.publisher.publish(subject, data, headers, timeoutMs);
            throw new Timeout(`the stream (publish to ${subject})`, timeoutMs);
          },
        } as DirectWrites['publisher'],
      };
      const record = new StateRecord(kv, key, WINDOW, undefined, flaky);
      await record.load();
      record.remember('a', outcomeOf(0));
      await record.save(); // created: not through the publisher
      record.remember('b', outcomeOf(3));
      await record.save();
      assert.equal(record.superseded, false, `${key}: not superseded`);
      assert.equal(calls, stores ? 1 : 2, `${key}: publishes`);
      const fresh = new StateRecord(kv, key, WINDOW);
      await fresh.load();
      assert.ok(fresh.outcome('a') && fresh.outcome('b'), `${key}: both commits stored`);
      assert.equal(fresh.revision, record.revision);
    }
  });

  test('a record written before blocks loads, and the next commits move its outcomes into blocks', async () => {
    const key = 't.old';
    // What that version kept: whole outcomes, a large reply as ACTOR_DUPLICATE.
    const duplicate = { ok: false, code: 'ACTOR_DUPLICATE', name: 'DuplicateMessage', message: 'applied' };
    const k = Array.from({ length: 300 }, (_, i) => [`k${i}`, i % 3 === 1 ? duplicate : outcomeOf(i)]);
    await kv.put(key, encode({ s: encode({ old: true }), k }));
    const record = new StateRecord(kv, key, 1000);
    await record.load();
    assert.deepEqual(decode(record.snapshot as Uint8Array), { old: true });
    assert.deepEqual(record.outcome('k0'), outcomeOf(0));
    // Each commit after a seal drops the sealed block from the tail; one block is sealed at a time.
    let stored = { v: 0, t: k as unknown[] };
    let i = 300;
    for (; i < 400 && stored.t.length >= 2 * BLOCK; i++) {
      record.remember(`k${i}`, outcomeOf(i));
      await record.save();
      stored = decode((await kv.get(key))!.value) as typeof stored;
    }
    assert.equal(stored.v, 2);
    assert.ok(stored.t.length < 2 * BLOCK, `tail of ${stored.t.length} after ${i - 300} commits`);
    const fresh = new StateRecord(kv, key, 1000);
    await fresh.load();
    for (let j = 0; j < i; j++) assertKept(fresh, j);
  });

  test('a block that went missing forgets its own keys only', async () => {
    const key = 't.gap';
    const record = new StateRecord(kv, key, WINDOW);
    await record.load();
    for (let i = 0; i < 4 * BLOCK; i++) {
      record.remember(`k${i}`, outcomeOf(i));
      await record.save();
    }
    // Block 1 was sealed (its slot written) before the commits of blocks 2 and 3 were acknowledged.
    assert.ok((decode((await kv.get(key))!.value) as { h: number }).h >= 2);
    await kv.delete(`${key}.b1`); // block 1: keys BLOCK .. 2 * BLOCK - 1
    const fresh = new StateRecord(kv, key, WINDOW);
    await fresh.load();
    for (let i = 0; i < 4 * BLOCK; i++) {
      if (i >= BLOCK && i < 2 * BLOCK) assert.equal(fresh.outcome(`k${i}`), undefined);
      else assertKept(fresh, i);
    }
  });

  test('a load at a revision the read does not reach fails (a migration then rolls back)', async () => {
    const key = 't.floor';
    const record = new StateRecord(kv, key, WINDOW);
    await record.load();
    record.remember('k0', outcomeOf(0));
    await record.save();
    const written = record.revision;
    const reader = new StateRecord(kv, key, WINDOW);
    await reader.load(written);
    assert.equal(reader.revision, written);
    await assert.rejects(new StateRecord(kv, key, WINDOW).load(written + 1), /below/);
    // The waits between reads run on the record's clock (the host's): standing still, it reads once.
    const clock = new ManualClock(0);
    let settled = false;
    const stale = new StateRecord(kv, key, WINDOW, undefined, undefined, undefined, clock)
      .load(written + 1)
      .finally(() => {
        settled = true;
      });
    stale.catch(() => undefined);
    const tick = () => new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 100 && clock.pending === 0; i++) await tick();
    assert.equal(clock.pending, 1, 'one wait scheduled after the first read');
    await tick();
    assert.equal(settled, false);
    for (let i = 0; i < 200 && !settled; i++) {
      clock.advance(100);
      await tick();
    }
    await assert.rejects(stale, /below/);
  });

  test('a write keeps every key it is the first to hold; keys dropped later are listed by sequence until the ack floor confirms them', async () => {
    const key = 't.unconfirmed';
    const record = new StateRecord(kv, key, 2 * BLOCK);
    await record.load();
    const stored = async () => decode((await kv.get(key))!.value) as { t: unknown[]; u?: [number, number][] };
    // One write holds more keys than the window (turns went on through a slow commit).
    for (let i = 0; i < 5 * BLOCK; i++) record.remember(`k${i}`, outcomeOf(i), 1000 + i);
    await record.save();
    assert.equal((await stored()).t.length, 5 * BLOCK, 'all of its keys, none listed');
    assert.equal((await stored()).u, undefined);
    // The next write drops them down to the window: their stream sequences are listed instead.
    record.remember('k-next', outcomeOf(0), 2000);
    await record.save();
    const dropped = 5 * BLOCK + 1 - (await stored()).t.length;
    assert.ok(dropped > 0);
    assert.deepEqual((await stored()).u, [[1000, dropped]]);
    // A fresh activation (the node died) knows them by sequence.
    const fresh = new StateRecord(kv, key, 2 * BLOCK);
    await fresh.load();
    assert.ok(fresh.unconfirmed.has(1000) && fresh.unconfirmed.has(999 + dropped));
    assert.ok(!fresh.unconfirmed.has(1000 + dropped), 'still kept by key');
    // Confirmed acknowledged up to 1010: the next write lists what is above.
    record.unconfirmed.confirm(1010);
    record.remember('k-last', outcomeOf(0), 2001);
    await record.save();
    assert.deepEqual((await stored()).u?.[0], [1011, dropped - 11]);
    // Past 256 beyond the window, the oldest of a write's own keys are listed rather than kept.
    const piled = new StateRecord(kv, 't.piled', 2 * BLOCK);
    await piled.load();
    for (let i = 0; i < 1000; i++) piled.remember(`p${i}`, outcomeOf(i), 5000 + i);
    await piled.save();
    const rec = decode((await kv.get('t.piled'))!.value) as { t: unknown[]; u?: [number, number][] };
    assert.ok(rec.t.length <= 2 * BLOCK + 256 + BLOCK, `${rec.t.length} kept`);
    assert.deepEqual(rec.u, [[5000, 1000 - rec.t.length]]);
    assert.ok(piled.unconfirmed.has(5000), 'held once stored');
    // A write that fails (another activation wrote first) holds none of them: not committed.
    const stale = new StateRecord(kv, 't.piled2', 2 * BLOCK);
    await stale.load();
    const other = new StateRecord(kv, 't.piled2', 2 * BLOCK);
    await other.load();
    other.remember('o', outcomeOf(0));
    await other.save();
    for (let i = 0; i < 1000; i++) stale.remember(`s${i}`, outcomeOf(i), 7000 + i);
    await assert.rejects(stale.save());
    assert.ok(!stale.unconfirmed.has(7000));
  });
});

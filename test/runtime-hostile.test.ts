// Hostile input: one malicious message or bucket entry must never silence a process. Each test puts
// one kind of garbage on an inbound edge of the runtime and checks that the actors, the directory
// watch and activation placement still work afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import {
  type Cluster,
  connectCluster,
  defineActor,
  type EmbeddedNats,
  type LogFn,
  RuntimeErrorCode,
  StitchError,
  startEmbeddedNats,
} from '@stitch/runtime';
import { encode } from '@stitch/runtime/internal';
import { Packr } from 'msgpackr';

const CLUSTER = 'hostile';
const DEAD_AFTER = 3000;

const HCounter = defineActor({
  type: 'hcounter',
  init: () => ({ n: 0 }),
  handlers: {
    add(s: { n: number }, m: { by: number }) {
      s.n += m.by;
      return s.n;
    },
    get: (s: { n: number }) => s.n,
    echo: (_s: unknown, m: { data: unknown }) => m.data,
    /** A reply msgpack cannot encode: the message fails, the actor does not crash. */
    symbol: () => Symbol('not encodable'),
  },
  snapshot: (s) => ({ ...s }),
  restore: (snap) => ({ ...(snap as { n: number }) }),
  restart: { maxRestarts: 5, withinMs: 60_000, backoffMs: 10 },
});

/** Waits (bounded) until `check` returns a truthy value. */
async function until<T>(what: string, check: () => T | Promise<T>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(25);
  }
}

const quiet: LogFn = () => undefined;

describe('hostile input', () => {
  let nats: EmbeddedNats;
  let host: Cluster;
  let client: Cluster;
  let raw: NatsConnection;
  const extra: Cluster[] = [];

  before(async () => {
    nats = await startEmbeddedNats();
    const opts = { nats: nats.url, name: CLUSTER, deadAfterMs: DEAD_AFTER, log: quiet };
    host = await connectCluster(opts);
    await host.startNode({ id: 'h1', actors: [HCounter] });
    client = await connectCluster(opts);
    raw = await connect({ servers: nats.url });
  });

  after(async () => {
    for (const c of extra) await c.close();
    await client?.close();
    await host?.close();
    await raw?.close();
    await nats?.stop();
  });

  async function connectMore(more: Record<string, unknown> = {}): Promise<Cluster> {
    const c = await connectCluster({
      nats: nats.url,
      name: CLUSTER,
      deadAfterMs: DEAD_AFTER,
      log: quiet,
      ...more,
    });
    extra.push(c);
    return c;
  }

  test('garbage in the directory and nodes buckets: watches keep running, placement still works', async () => {
    const kvm = new Kvm(raw);
    const dir = await kvm.open(`stitch_${CLUSTER}_directory`);
    const nodes = await kvm.open(`stitch_${CLUSTER}_nodes`);
    await dir.put('hcounter.x', encode(null));
    await dir.put('hcounter.y', new Uint8Array([0xc1, 0xff, 0x00]));
    await dir.put('hcounter.z', encode({ node: 'has space', epoch: 1 }));
    await dir.put('hcounter.w', encode({ node: 'h1', epoch: 'one' }));
    await nodes.put('ghost-null', 'null');
    await nodes.put('ghost-empty', '{}');
    await nodes.put('ghost-bytes', new Uint8Array([0xff, 0xfe]));
    await nodes.put('ghost-types', JSON.stringify({ nodeId: 'ghost-types', actorTypes: 'hcounter' }));

    // Placement reads the nodes bucket: the garbage records are skipped, the real node is chosen.
    assert.equal(await client.get(HCounter, 'g1').ask({ type: 'add', by: 1 }), 1);
    // The existing directory watch still follows new entries.
    await host.spawn(HCounter, { id: 'g2' });
    await until('the watch to cache g2', () => client.directory.cached('hcounter.g2'));
    assert.equal(await client.locate({ type: 'hcounter', id: 'z' }), undefined);

    // A process connecting afterwards replays the garbage from the bucket's history.
    const late = await connectMore();
    const events: string[] = [];
    await late.onMembership((ev) => events.push(ev.kind));
    await host.spawn(HCounter, { id: 'g3' });
    await until('the late watch to cache g3', () => late.directory.cached('hcounter.g3'));
    assert.equal(await late.get(HCounter, 'g4').ask({ type: 'add', by: 2 }), 2);
    assert.equal(await late.get(HCounter, 'x').ask({ type: 'add', by: 3 }), 3);
    assert.equal(await late.get(HCounter, 'z').ask({ type: 'get' }), 0);
    for (const k of ['ghost-null', 'ghost-empty', 'ghost-bytes', 'ghost-types']) await nodes.delete(k);
  });

  test('forged handoff requests are refused with typed errors: a change to an actor without delta hooks, steps of no migration, a state past the limit', async () => {
    const subject = `stitch.${CLUSTER}.node.h1.handoff`;
    const ask = async (req: unknown) => {
      const m = await raw.request(subject, encode(req), { timeout: 5000 });
      const code = m.headers?.get('Stitch-Error-Code');
      return code ? { code, message: Buffer.from(m.data).toString() } : { code: 'ok', message: '' };
    };
    assert.equal(
      (await ask({ op: 'begin', migration: 'forged-1', type: 'hcounter', id: 'mig-x' })).code,
      'ok',
    );
    const change = await ask({
      op: 'change',
      migration: 'forged-1',
      total: 2,
      offset: 0,
      data: new Uint8Array(2),
    });
    assert.equal(change.code, RuntimeErrorCode.InvalidOptions);
    assert.match(change.message, /no delta hooks/);
    const big = await ask({
      op: 'state',
      migration: 'forged-1',
      total: 2 ** 40,
      offset: 0,
      data: new Uint8Array(1),
    });
    assert.equal(big.code, RuntimeErrorCode.PayloadTooLarge);
    assert.match(big.message, /maxMigrationBytes/);
    assert.equal(
      (await ask({ op: 'commit', migration: 'forged-2', total: 0, epoch: 1, revision: 1, recordRevision: 0 }))
        .code,
      RuntimeErrorCode.InvalidOptions,
    );
    assert.equal((await ask({ op: 'abort', migration: 'forged-1' })).code, 'ok');
    assert.equal(await client.get(HCounter, 'after-handoff').ask({ type: 'add', by: 4 }), 4);
  });

  test('a fence on an activation is compared, never recorded: a client cannot lock the commander out', async () => {
    const activate = async (req: unknown) => {
      const m = await raw.request(`stitch.${CLUSTER}.activate.h1`, encode(req), { timeout: 5000 });
      return m.headers?.get('Stitch-Error-Code') || 'ok';
    };
    // A client claims the largest epoch, and 20 new fence names (a node tracks 16).
    const huge = { name: 'coordinator', epoch: Number.MAX_SAFE_INTEGER };
    assert.equal(await activate({ type: 'hcounter', id: 'f1', fence: huge }), 'ok');
    for (let i = 0; i < 20; i++)
      assert.equal(
        await activate({ type: 'hcounter', id: `f-${i}`, fence: { name: `n${i}`, epoch: 1 } }),
        'ok',
      );
    // The commander's own epoch still commands the node, and moves it on.
    const commander = await connectMore();
    commander.fence('coordinator', 5);
    assert.deepEqual(await commander.announceFence(), []);
    await commander.stop({ type: 'hcounter', id: 'f1' });
    // Now an activation of an older epoch is refused, and the client sees the typed error.
    assert.equal(
      await activate({ type: 'hcounter', id: 'f2', fence: { name: 'coordinator', epoch: 4 } }),
      RuntimeErrorCode.StaleFence,
    );
    assert.equal(await activate({ type: 'hcounter', id: 'f2' }), 'ok');
  });

  test('a chunk header claiming 10^10 parts leaves the actor and its neighbours answering', async () => {
    const a = await host.spawn(HCounter, { id: 'c1' });
    const b = await host.spawn(HCounter, { id: 'c2' });
    const subject = `stitch.${CLUSTER}.actor.hcounter.c1`;
    for (const chunk of ['a:0:10000000000', 'b:0:4294967296', 'c:3:2', 'd:-1:5', ':0:2', 'e:0:1e9']) {
      const h = headers();
      h.set('Stitch-Chunk', chunk);
      raw.publish(subject, encode({ type: 'add', by: 100 }), { headers: h });
    }
    // Garbage on the node's own subjects too.
    raw.publish(`stitch.${CLUSTER}.activate.h1`, new Uint8Array([0xc1]));
    raw.publish(`stitch.${CLUSTER}.node.h1.control`, encode({ op: 'stop', type: 'a b', id: null }));
    raw.publish(`stitch.${CLUSTER}.membership`, new Uint8Array([0xff]));
    await raw.flush();
    assert.equal(await a.ask({ type: 'add', by: 1 }, { timeoutMs: 3000 }), 1);
    assert.equal(await b.ask({ type: 'add', by: 1 }, { timeoutMs: 3000 }), 1);
    const c3 = await client.spawn(HCounter, { id: 'c3', node: 'h1' });
    assert.equal(await c3.ask({ type: 'get' }, { timeoutMs: 3000 }), 0);
  });

  test('a durable message with an invalid Stitch-Reply-To does not break the commit chain', async () => {
    const ref = await host.spawn(HCounter, { id: 'd1' });
    const js = jetstream(raw);
    const subject = `stitch.${CLUSTER}.durable.hcounter.d1`;
    for (const replyTo of ['bad subject', 'a..b', 'x\ty', '.lead', `${'y'.repeat(5000)}`, 'ok.*', 'ok.>']) {
      const h = headers();
      h.set('Stitch-Reply-To', replyTo);
      h.set('Stitch-Sender', 'hostile');
      await js.publish(subject, encode({ type: 'add', by: 1 }), { headers: h });
    }
    for (let i = 0; i < 3; i++) {
      const n = await ref.ask({ type: 'add', by: 10 }, { mode: 'durable', timeoutMs: 5000 });
      assert.equal(n, 7 + 10 * (i + 1));
    }
  });

  test('system messages: an unknown one, or one sent durable, is a bad message; the actor keeps serving', async () => {
    const ref = await host.spawn(HCounter, { id: 'sys1' });
    const subject = `stitch.${CLUSTER}.actor.hcounter.sys1`;
    const asked = await raw.request(subject, encode({ type: '$nosuch' }), { timeout: 5000 });
    assert.equal(asked.headers?.get('Stitch-Error-Code'), RuntimeErrorCode.BadMessage);
    assert.match(Buffer.from(asked.data).toString(), /no such system message/);
    // Sent durable, `$inspect` reached the turn as a handler name and failed as an untyped error.
    const inbox = `reply.sys1.${Date.now()}`;
    const answer = new Promise<{ code: string | undefined; text: string }>((resolve) => {
      const sub = raw.subscribe(inbox, {
        max: 1,
        callback: (_e, m) => {
          resolve({ code: m.headers?.get('Stitch-Error-Code'), text: Buffer.from(m.data).toString() });
          sub.unsubscribe();
        },
      });
    });
    const h = headers();
    h.set('Stitch-Reply-To', inbox);
    h.set('Stitch-Sender', 'hostile');
    await jetstream(raw).publish(`stitch.${CLUSTER}.durable.hcounter.sys1`, encode({ type: '$inspect' }), {
      headers: h,
    });
    const durable = await answer;
    assert.equal(durable.code, RuntimeErrorCode.BadMessage, durable.text);
    assert.match(durable.text, /only when asked directly/);
    assert.equal(await ref.ask({ type: 'add', by: 2 }, { mode: 'durable', timeoutMs: 5000 }), 2);
    assert.equal((await ref.inspect()).restarts, 0);
  });

  test('cyclic and unencodable messages fail alone: the actor keeps serving, restarts stay 0', async () => {
    const ref = await host.spawn(HCounter, { id: 'cy1' });
    const clone = new Packr({ structuredClone: true });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const bytes = clone.pack({ type: 'echo', data: cyclic });
    const subject = `stitch.${CLUSTER}.actor.hcounter.cy1`;
    for (let i = 0; i < 10; i++) {
      const reply = await raw.request(subject, bytes, { timeout: 3000 });
      assert.ok(reply.headers?.get('Stitch-Error-Code'), 'an error reply');
      await assert.rejects(ref.ask({ type: 'symbol' }, { timeoutMs: 3000 }), (err: unknown) => {
        assert.ok(err instanceof StitchError, String(err));
        assert.equal(err.code, RuntimeErrorCode.BadMessage);
        return true;
      });
    }
    assert.equal(await ref.ask({ type: 'add', by: 1 }, { timeoutMs: 3000 }), 1);
    const seen = await ref.inspect();
    assert.equal(seen.restarts, 0);
    assert.equal(seen.status, 'running');
  });

  test('a message of a wire version this build does not read is refused with WIRE_VERSION, not applied', async () => {
    const ref = await host.spawn(HCounter, { id: 'wv1' });
    const subject = `stitch.${CLUSTER}.actor.hcounter.wv1`;
    for (const wire of ['2.0', '9.1', 'one', '1.0.0']) {
      const h = headers();
      h.set('Stitch-Wire', wire);
      const reply = await raw.request(subject, encode({ type: 'add', by: 100 }), {
        headers: h,
        timeout: 3000,
      });
      assert.equal(reply.headers?.get('Stitch-Error-Code'), RuntimeErrorCode.WireVersion, `wire ${wire}`);
    }
    // The previous major and this one's minors are read: 1.7 is a newer minor of this major.
    const h = headers();
    h.set('Stitch-Wire', '1.7');
    const ok = await raw.request(subject, encode({ type: 'add', by: 1 }), { headers: h, timeout: 3000 });
    assert.equal(ok.headers?.get('Stitch-Error-Code') ?? '', '');
    assert.equal(await ref.ask({ type: 'get' }, { timeoutMs: 3000 }), 1);
  });

  test('maxActors caps the activations of a node; the next one gets Overloaded', async () => {
    const small = await connectMore();
    await small.startNode({ id: 'small', actors: [HCounter], maxActors: 3 });
    for (let i = 0; i < 3; i++) await client.spawn(HCounter, { id: `m${i}`, node: 'small' });
    await assert.rejects(client.spawn(HCounter, { id: 'm3', node: 'small' }), (err: unknown) => {
      assert.ok(err instanceof StitchError, String(err));
      assert.equal(err.code, RuntimeErrorCode.Overloaded);
      return true;
    });
    assert.equal(small.node?.inspect().actors.length, 3);
    // Room again once one stops.
    await client.stop({ type: 'hcounter', id: 'm0' });
    await client.spawn(HCounter, { id: 'm3', node: 'small' });
  });

  test('the durable stream is bounded: max_bytes and max_age default, and can be set', async () => {
    const jsm = await jetstreamManager(raw);
    const info = await jsm.streams.info(`stitch_${CLUSTER}_mailbox`);
    assert.equal(info.config.max_bytes, 1024 ** 3);
    assert.equal(info.config.max_age, 7 * 24 * 3600 * 1e9);
    const other = await connectCluster({
      nats: nats.url,
      name: 'hostile2',
      log: quiet,
      durableStream: { maxBytes: 1024 * 1024, maxAgeMs: 30_000 },
    });
    extra.push(other);
    const set = await jsm.streams.info('stitch_hostile2_mailbox');
    assert.equal(set.config.max_bytes, 1024 * 1024);
    assert.equal(set.config.max_age, 30_000 * 1e6);
    // Connecting again to the existing stream leaves it as it is.
    extra.push(await connectCluster({ nats: nats.url, name: 'hostile2', log: quiet }));
    await jsm.streams.info('stitch_hostile2_mailbox');
    // Nothing consumes hcounter/none: durable tells pile up until the stream refuses them, typed.
    const filler = other.ref({ type: 'hcounter', id: 'none' });
    const body = 'x'.repeat(16 * 1024);
    let refused: unknown;
    for (let i = 0; i < 200 && !refused; i++)
      await filler.tell({ type: 'echo', data: body }, { mode: 'durable' }).catch((err) => {
        refused = err;
      });
    assert.ok(refused instanceof StitchError, String(refused));
    assert.equal(refused.code, RuntimeErrorCode.Overloaded);
  });
});

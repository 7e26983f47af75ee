// Ask/tell, refs, errors, overload, chunking and bad input between two processes through a real nats-server.
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, headers } from '@nats-io/transport-node';
import {
  BadMessage,
  type Cluster,
  connectCluster,
  defineActor,
  type EmbeddedNats,
  NoResponders,
  Overloaded,
  PayloadTooLarge,
  RemoteError,
  startEmbeddedNats,
  Timeout,
} from '@stitch/runtime';
import {
  headerBlock,
  natsFastPathEnabled,
  readHeaders,
  readMessageHeaders,
  subjectBytes,
} from '@stitch/runtime/internal';
import { Counter, Echo, Forwarder, Prepared } from './fixtures/runtime-actors.js';
import { type NodeProc, startNode, stopAll } from './fixtures/runtime-procs.js';

const CLUSTER = 'msg';

describe('runtime messaging across processes', () => {
  let nats: EmbeddedNats;
  let remote: NodeProc;
  let local: Cluster;
  let client: Cluster;

  before(async () => {
    nats = await startEmbeddedNats();
    remote = await startNode({ nats: nats.url, cluster: CLUSTER });
    local = await connectCluster({ nats: nats.url, name: CLUSTER });
    await local.startNode({ actors: [Counter] });
    client = await connectCluster({ nats: nats.url, name: CLUSTER });
  });

  after(async () => {
    await client?.close();
    await local?.close();
    await stopAll();
    await nats?.stop();
  });

  test('ask and tell an actor spawned on another process', async () => {
    const ref = await client.spawn(Counter, { id: 'c-ask', node: remote.nodeId });
    assert.deepEqual(await client.locate(ref), { node: remote.nodeId, epoch: 1 });
    assert.equal(await ref.ask({ type: 'add', by: 2 }), 2);
    await ref.tell({ type: 'add', by: 5 });
    assert.equal(await ref.ask({ type: 'get' }), 7);
    const seen = await ref.inspect();
    assert.equal(seen.nodeId, remote.nodeId);
    assert.equal(seen.mailbox.processed, 3);
  });

  test("a set-up handler's turns stay out of the load counters an autoscaler reads", async () => {
    const ref = await client.spawn(Prepared, { id: 'p-setup', node: remote.nodeId });
    assert.equal(await ref.ask({ type: 'prepare', ms: 300 }), true);
    assert.equal(await ref.ask({ type: 'work' }), true);
    assert.equal(await ref.ask({ type: 'work' }), true);
    const { mailbox } = await ref.inspect();
    assert.equal(mailbox.accepted, 2);
    assert.equal(mailbox.processed, 2);
    // The 300 ms set-up is not in the busy time; two synchronous turns are far below it.
    assert.ok(mailbox.busyMs < 300, `busyMs ${mailbox.busyMs}`);
  });

  test("concurrencyPerNode bounds a type's turns on each node, over all its activations there", async () => {
    const running = new Map<string, number>();
    const most = new Map<string, number>();
    let open!: () => void;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    const Limited = defineActor({
      type: 'limited',
      concurrencyPerNode: 2,
      handlers: {
        work: async (_s: undefined, _m: Record<never, never>, ctx) => {
          const n = (running.get(ctx.nodeId) ?? 0) + 1;
          running.set(ctx.nodeId, n);
          most.set(ctx.nodeId, Math.max(most.get(ctx.nodeId) ?? 0, n));
          await gate;
          running.set(ctx.nodeId, running.get(ctx.nodeId)! - 1);
          return ctx.nodeId;
        },
      },
    });
    const hosts = await Promise.all(
      ['limited-a', 'limited-b'].map(async (id) => {
        const c = await connectCluster({ nats: nats.url, name: CLUSTER });
        await c.startNode({ id, actors: [Limited] });
        return c;
      }),
    );
    try {
      // Four activations per node, each taking one turn at a time: eight could run at once, four a node.
      const refs = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          client.spawn(Limited, { id: `l${i}`, node: i % 2 ? 'limited-b' : 'limited-a' }),
        ),
      );
      const asked = Promise.all(refs.flatMap((r) => [1, 2, 3].map(() => r.ask({ type: 'work' }))));
      // Held at the gate: on each node two turns run and the other two activations' turns wait.
      const held = { slots: 2, busy: 2, queued: 2 };
      const seen = async (node: string) => (await client.inspectNode(node))?.typeSlots?.limited;
      for (const node of ['limited-a', 'limited-b']) {
        const until = Date.now() + 10_000;
        let now = await seen(node);
        while (JSON.stringify(now) !== JSON.stringify(held) && Date.now() < until) {
          await delay(10);
          now = await seen(node);
        }
        assert.deepEqual(now, held, node);
      }
      await delay(50);
      open();
      const answers = await asked;
      assert.equal(answers.length, 24);
      assert.deepEqual(await seen('limited-a'), { slots: 2, busy: 0, queued: 0 });
      // Two at once on each node, never more; and two, so the activations did run side by side.
      assert.deepEqual(Object.fromEntries(most), { 'limited-a': 2, 'limited-b': 2 });
      // The turns that waited for one of the two say so, as a wait rather than their own work.
      const waited = await Promise.all(refs.map(async (r) => (await r.inspect()).slotWaitMs ?? 0));
      assert.ok(
        waited.some((ms) => ms >= 50),
        `slot waits ${waited}`,
      );
    } finally {
      await Promise.all(hosts.map((c) => c.close()));
    }
  });

  test('a ref sent inside a message works in the receiving process', async () => {
    const counter = await local.spawn(Counter, { id: 'c-ref' });
    const forwarder = await client.spawn(Forwarder, { id: 'fwd', node: remote.nodeId });
    // The forwarder runs in the node process and asks the counter hosted in this one.
    assert.equal(await forwarder.ask({ type: 'forward', to: counter, by: 4 }), 4);
    assert.equal(await counter.ask({ type: 'get' }), 4);
    assert.equal((await counter.inspect()).nodeId, local.node!.id);
  });

  test("a handler's error is rebuilt on the caller with its code and name", async () => {
    const ref = client.ref<typeof Counter>({ type: 'counter', id: 'c-ask' });
    const err = await ref.ask({ type: 'fail' }).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteError);
    assert.equal(err.code, 'QUOTA_EXCEEDED');
    assert.equal(err.remoteName, 'QuotaExceeded');
    assert.match(err.message, /quota is used up/);
    assert.equal(await ref.ask({ type: 'get' }), 7, 'the failed message did not stop the actor');
  });

  test('a full mailbox answers Overloaded at once; per-caller caps leave room for others', async () => {
    const ref = await client.spawn(Echo, { id: 'slow', node: remote.nodeId });
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () => ref.ask({ type: 'sleep', ms: 300 })),
    );
    const overloaded = results.filter((r) => r.status === 'rejected' && r.reason instanceof Overloaded);
    const done = results.filter((r) => r.status === 'fulfilled');
    // perCaller is 3: three run/queue, three are refused.
    assert.equal(done.length, 3);
    assert.equal(overloaded.length, 3);
    const other = local.ref<typeof Echo>({ type: 'echo', id: 'slow' });
    const mine = Array.from({ length: 3 }, () => ref.ask({ type: 'sleep', ms: 300 }));
    // The other caller's messages travel on another connection: wait until all of mine are in.
    for (;;) {
      const m = (await ref.inspect()).mailbox;
      if (m.depth + m.running === 3) break;
      await delay(5);
    }
    // capacity 4 is shared: the other caller gets the one slot left.
    const theirs = await Promise.allSettled([
      other.ask({ type: 'sleep', ms: 1 }),
      other.ask({ type: 'sleep', ms: 1 }),
    ]);
    await Promise.all(mine);
    assert.equal(theirs.filter((r) => r.status === 'fulfilled').length, 1);
    const refused = theirs.find((r) => r.status === 'rejected');
    assert.ok(refused && refused.status === 'rejected' && refused.reason instanceof Overloaded);
    const metrics = (await ref.inspect()).mailbox;
    assert.ok(metrics.rejected >= 4);
    assert.ok(metrics.turnMs.max >= 200);
  });

  test('a 10 MiB typed array is chunked both ways; with chunking off it is refused clearly', async () => {
    const ref = await client.spawn(Echo, { id: 'big', node: remote.nodeId });
    const data = new Float32Array((10 * 1024 * 1024) / 4).map((_, i) => i % 1000);
    const back = (await ref.ask({ type: 'echo', data }, { timeoutMs: 20_000 })) as Float32Array;
    assert.ok(back instanceof Float32Array);
    assert.deepEqual(back, data);
    const strict = await connectCluster({ nats: nats.url, name: CLUSTER, chunking: false });
    try {
      const err = await strict
        .ref<typeof Echo>(ref)
        .ask({ type: 'echo', data })
        .catch((e: unknown) => e);
      assert.ok(err instanceof PayloadTooLarge);
      assert.match(err.message, /max_payload/);
    } finally {
      await strict.close();
    }
  });

  test('headers and subjects read from the received bytes equal what nats.js reads', async () => {
    const nc = await connect({ servers: nats.url });
    try {
      const got: Parameters<typeof readMessageHeaders>[0][] = [];
      const sub = nc.subscribe('hdr.check', {
        callback: (_err, m) => {
          got.push(m);
        },
      });
      const cases: [string, string][][] = [
        [
          ['traceparent', '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01'],
          ['Stitch-Sender', 'host-1'],
          ['Stitch-Deadline', '1700000000000'],
        ],
        [
          ['Stitch-Idempotency-Key', 'schlüssel: ü/✓'],
          ['Stitch-Idempotency-Key', 'second value'],
          ['X-Other', 'ignored'],
          ['stitch-sender', 'other case is another key'],
          ['Stitch-Chunk', 'abc:0:2'],
        ],
        [['Stitch-Batch', '  7  ']],
      ];
      for (const pairs of cases) {
        const h = headers();
        for (const [k, v] of pairs) h.append(k, v);
        nc.publish('hdr.check', new Uint8Array([1, 2, 3]), { headers: h });
      }
      nc.publish('hdr.check', new Uint8Array([4])); // no headers at all
      await nc.flush();
      for (let i = 0; got.length < 4 && i < 100; i++) await delay(10);
      sub.unsubscribe();
      assert.equal(got.length, 4);
      for (const m of got.slice(0, 3)) {
        // With STITCH_NATS_FAST_PATH=0 the fast path must stay off and the public path give the same.
        if (natsFastPathEnabled)
          assert.ok(headerBlock(m), 'this nats.js keeps the header block where stitch reads it');
        else assert.equal(headerBlock(m), undefined);
        assert.deepEqual(readMessageHeaders(m), readHeaders(m.headers));
      }
      for (const m of got) {
        const subject = subjectBytes(m);
        if (!natsFastPathEnabled) {
          assert.equal(subject, undefined);
          continue;
        }
        assert.ok(subject, 'this nats.js keeps the subject bytes where stitch reads reply tokens');
        assert.equal(Buffer.from(subject).toString('utf8'), m.subject);
      }
      assert.deepEqual(readMessageHeaders(got[1]!).idempotencyKey, 'schlüssel: ü/✓');
      assert.deepEqual(readMessageHeaders(got[3]!), {});
      assert.deepEqual(Buffer.from(got[0]!.data), Buffer.from([1, 2, 3]));
    } finally {
      await nc.close();
    }
  });

  test('a header value with a byte that is not UTF-8 reads as nats.js reads it', async () => {
    const nc = await connect({ servers: nats.url });
    const raw = createConnection({ port: Number(new URL(nats.url).port), host: '127.0.0.1' });
    try {
      const got: Parameters<typeof readMessageHeaders>[0][] = [];
      nc.subscribe('hdr.raw', {
        callback: (_err, m) => {
          got.push(m);
        },
      });
      await nc.flush();
      // A sender name with 0xff in it, which no client of nats.js could send: published on a raw socket.
      const block = Buffer.concat([
        Buffer.from('NATS/1.0\r\nStitch-Sender: host-'),
        Buffer.from([0xff]),
        Buffer.from('-1\r\nStitch-Idempotency-Key: a-key-longer-than-thirteen\r\n\r\n'),
      ]);
      const payload = Buffer.from('x');
      raw.write('CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n');
      raw.write(`HPUB hdr.raw ${block.length} ${block.length + payload.length}\r\n`);
      raw.write(Buffer.concat([block, payload, Buffer.from('\r\n')]));
      for (let i = 0; got.length < 1 && i < 100; i++) await delay(10);
      assert.equal(got.length, 1);
      const read = readMessageHeaders(got[0]!);
      assert.deepEqual(read, readHeaders(got[0]!.headers));
      assert.equal(read.sender, 'host-\uFFFD-1');
      assert.equal(read.idempotencyKey, 'a-key-longer-than-thirteen');
    } finally {
      raw.destroy();
      await nc.close();
    }
  });

  test('garbage on an actor subject gets a typed error and does not crash the node', async () => {
    const nc = await connect({ servers: nats.url });
    try {
      const subject = `stitch.${CLUSTER}.actor.counter.c-ask`;
      for (const body of [
        new Uint8Array([0xc1, 0xff, 0x00]),
        Buffer.from('{"not":"msgpack"'),
        new Uint8Array(),
      ]) {
        const reply = await nc.request(subject, body, { timeout: 2000 });
        assert.equal(reply.headers?.get('Stitch-Error-Code'), 'ACTOR_BAD_MESSAGE');
      }
      nc.publish(subject, new Uint8Array([0xc1])); // no reply subject: dropped with a log line
      const ref = client.ref<typeof Counter>({ type: 'counter', id: 'c-ask' });
      const wrong = await ref.ask({ type: 'nope' } as never).catch((e: unknown) => e);
      assert.ok(wrong instanceof BadMessage);
      const h = headers();
      h.set('traceparent', 'not-a-trace');
      await nc.request(subject, Buffer.from([0x81, 0xa4, 0x74, 0x79, 0x70, 0x65, 0xa3, 0x67, 0x65, 0x74]), {
        timeout: 2000,
        headers: h,
      });
      assert.equal(await ref.ask({ type: 'get' }), 7);
      assert.equal(remote.child.exitCode, null, 'the node process is alive');
    } finally {
      await nc.close();
    }
  });

  test('no activation → NoResponders; a slow reply → Timeout; retries keep one effect', async () => {
    const missing = client.ref<typeof Counter>({ type: 'counter', id: 'nobody' });
    await assert.rejects(missing.ask({ type: 'get' }), NoResponders);
    const echo = client.ref<typeof Echo>({ type: 'echo', id: 'big' });
    await assert.rejects(echo.ask({ type: 'sleep', ms: 400 }, { timeoutMs: 100 }), Timeout);
    // One timer serves every ask of a connection: a short timeout asked after a long one still fires
    // on time, and the long one still succeeds.
    const long = echo.ask({ type: 'sleep', ms: 300 }, { timeoutMs: 10_000 });
    const started = Date.now();
    await assert.rejects(echo.ask({ type: 'sleep', ms: 50 }, { timeoutMs: 150 }), Timeout);
    const waited = Date.now() - started;
    assert.ok(waited >= 140 && waited < 1000, `the 150 ms ask timed out after ${waited} ms`);
    assert.equal(await long, 300);
    const ref = client.ref<typeof Counter>({ type: 'counter', id: 'c-ask' });
    const key = 'retry-1';
    assert.equal(await ref.ask({ type: 'add', by: 10 }, { idempotencyKey: key, retries: 2 }), 17);
    assert.equal(
      await ref.ask({ type: 'add', by: 10 }, { idempotencyKey: key }),
      17,
      'a repeat is answered, not applied',
    );
    assert.equal(await ref.ask({ type: 'get' }), 17);
  });
});

// Virtual actors (`cluster.get`): activation on first use, re-activation after the owner dies, racing
// first callers, a node restarted under its old id, the restart limit, and tells that find no actor.
// Each test runs in a cluster of its own on one nats-server, so node processes never mix between tests.
import assert from 'node:assert/strict';
import { type AddressInfo, createConnection, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  type ActorInspection,
  type ActorRefData,
  type Cluster,
  type ConnectOptions,
  Crash,
  connectCluster,
  type EmbeddedNats,
  type LogLevel,
  NoResponders,
  startEmbeddedNats,
  Timeout,
} from '@stitch/runtime';
import { decode, encode, names } from '@stitch/runtime/internal';
import { Cart, Counter, Stall } from './fixtures/runtime-actors.js';
import { type NodeProc, startNode, stopAll } from './fixtures/runtime-procs.js';
import { waitFor, within } from './fixtures/wait.js';

const quiet = () => undefined;

describe('virtual actors (cluster.get)', () => {
  let nats: EmbeddedNats;
  let raw: NatsConnection;
  const clients: Cluster[] = [];

  before(async () => {
    nats = await startEmbeddedNats();
    raw = await connect({ servers: nats.url });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await raw?.close();
    await stopAll();
    await nats?.stop();
  });

  /** A client connection with no node of its own, closed by the after hook. */
  async function client(cluster: string, options: Partial<ConnectOptions> = {}): Promise<Cluster> {
    const c = await connectCluster({ log: quiet, ...options, nats: nats.url, name: cluster });
    clients.push(c);
    return c;
  }

  /** What a node process hosts, asked on its control subject (the same request `stitch` sends). */
  async function hosted(cluster: string, nodeId: string): Promise<ActorInspection[]> {
    const m = await raw.request(names(cluster).nodeControl(nodeId), encode({ op: 'inspect' }), {
      timeout: 5000,
    });
    return (decode(m.data) as { actors: ActorInspection[] }).actors;
  }

  /**
   * Waits until the server has dropped a killed node's subscriptions. A fast message sent before it
   * has is delivered to the dead socket and lost (fast mode is at most once), and the ask times out;
   * once it has, the server answers no-responders, which is what makes a virtual ref re-activate.
   */
  async function waitGone(cluster: string, nodeId: string): Promise<void> {
    const subject = names(cluster).nodeControl(nodeId);
    await waitFor(async () => {
      try {
        await raw.request(subject, encode({ op: 'inspect' }), { timeout: 1000 });
        return undefined;
      } catch (err) {
        return /no responders/i.test(String(err)) || undefined;
      }
    }, 10_000);
  }

  test('first use activates the actor on a node; no spawn', async () => {
    const CLUSTER = 'v-first';
    const node = await startNode({ nats: nats.url, cluster: CLUSTER });
    const c = await client(CLUSTER);
    assert.equal(c.node, undefined, 'the client hosts no node');
    const ref = c.get(Counter, 'v1');
    assert.equal(await c.locate(ref), undefined, 'nothing is active before the first message');
    assert.equal(await ref.ask({ type: 'add', by: 2 }), 2);
    assert.equal(c.metrics().sentAgain, 1, 'the first ask went again once its actor was active');
    assert.equal(await ref.ask({ type: 'add', by: 3 }), 5);
    assert.equal(c.metrics().sentAgain, 1);
    assert.deepEqual(await c.locate(ref), { node: node.nodeId, epoch: 1 });
    const seen = await ref.inspect();
    assert.equal(seen.nodeId, node.nodeId);
    assert.equal(seen.epoch, 1);
  });

  /** Two node processes in a cluster of their own, and a client of it. */
  async function twoNodes(cluster: string, ids: [string, string], options: Partial<ConnectOptions> = {}) {
    const procs = new Map<string, NodeProc>();
    for (const id of ids) procs.set(id, await startNode({ nats: nats.url, cluster, nodeId: id }));
    return { procs, c: await client(cluster, options) };
  }

  /** Kills (-9) the node process hosting `ref` and waits until the server has dropped it. */
  async function killOwner(
    cluster: string,
    procs: Map<string, NodeProc>,
    c: Cluster,
    ref: Parameters<Cluster['locate']>[0],
  ) {
    const first = await c.locate(ref);
    assert.ok(first, 'the actor is located');
    const owner = procs.get(first.node)!;
    owner.child.kill('SIGKILL');
    assert.equal(await owner.exited, 'SIGKILL');
    await waitGone(cluster, owner.nodeId);
    return { first, survivor: [...procs.keys()].find((id) => id !== first.node)! };
  }

  test('after kill -9 of the owner the next ask re-activates it elsewhere from its stored snapshot', async () => {
    const CLUSTER = 'v-kill';
    const { procs, c } = await twoNodes(CLUSTER, ['vk-a', 'vk-b']);
    const ref = c.get(Counter, 'k1');
    assert.equal(await ref.ask({ type: 'add', by: 4 }), 4);
    // Counter's snapshot is taken after every turn but reaches storage only on stop and on a durable
    // commit: a durable ask resolves after the commit that wrote the snapshot (n = 11) to the state KV.
    assert.equal(await ref.ask({ type: 'add', by: 7 }, { mode: 'durable' }), 11);
    const { first, survivor } = await killOwner(CLUSTER, procs, c, ref);

    // The same ref, no error: no-responders, activation on the survivor, the ask sent again.
    assert.equal(await ref.ask({ type: 'get' }), 11);
    assert.equal(await ref.ask({ type: 'add', by: 1 }), 12);
    const afterKill = await c.locate(ref);
    assert.ok(afterKill, 'the actor is located again');
    assert.equal(afterKill.node, survivor);
    assert.ok(afterKill.epoch > first.epoch, `epoch ${afterKill.epoch} after ${first.epoch}`);
    const seen = await ref.inspect();
    assert.equal(seen.nodeId, survivor);
    assert.equal(seen.epoch, afterKill.epoch);
  });

  test('a durable ask to an actor whose node was killed is answered by a take-over, not at its timeout', async () => {
    const CLUSTER = 'v-gone';
    // With a minute to wait, an ask that relied on its timeout to find the node dead would not be answered below.
    const { procs, c } = await twoNodes(CLUSTER, ['vg-a', 'vg-b'], { askTimeoutMs: 60_000 });
    const ref = c.get(Counter, 'g1');
    assert.equal(await ref.ask({ type: 'add', by: 5 }, { mode: 'durable' }), 5);
    const { first, survivor } = await killOwner(CLUSTER, procs, c, ref);
    assert.deepEqual(await c.locate(ref), first, 'the directory still names the dead node');

    assert.equal(await within(ref.ask({ type: 'add', by: 1 }, { mode: 'durable' }), 20_000), 6);
    assert.equal(c.metrics().takeOversOfGoneNodes, 1);
    const now = await c.locate(ref);
    assert.equal(now?.node, survivor);
    assert.ok(now.epoch > first.epoch, `epoch ${now.epoch} after ${first.epoch}`);
    assert.equal(await ref.ask({ type: 'get' }), 6, 'applied once');
  });

  test('a durable ask sent again after its node was killed is answered from the record, not with no-responders', async () => {
    const CLUSTER = 'v-again';
    const { procs, c } = await twoNodes(CLUSTER, ['va-a', 'va-b']);
    const ref = c.get(Counter, 'o1');
    assert.equal(await ref.ask({ type: 'add', by: 2 }, { mode: 'durable', idempotencyKey: 'once' }), 2);
    await killOwner(CLUSTER, procs, c, ref);
    // The stream drops the repeat, and its outcome is asked of the actor, whose node is gone: the
    // actor is activated on the other node and answers from its record.
    assert.equal(
      await within(ref.ask({ type: 'add', by: 2 }, { mode: 'durable', idempotencyKey: 'once' }), 20_000),
      2,
    );
    assert.equal(await ref.ask({ type: 'get' }), 2, 'applied once');
  });

  test('a durable message its killed node took and never acknowledged is run by the take-over, not after ack_wait', async () => {
    const { procs, c } = await twoNodes('v-unacked', ['vu-a', 'vu-b'], { askTimeoutMs: 60_000 });
    const ref = c.get(Stall, 's1');
    const first = await ref.ask({ type: 'hold', onNode: 'none', ms: 0 }, { mode: 'durable' });
    const owner = procs.get(first)!;
    const survivor = [...procs.keys()].find((id) => id !== first)!;
    // Taken by the owner, which holds it (ack_wait is a minute) until it is killed.
    const answer = ref.ask({ type: 'hold', onNode: first, ms: 120_000 }, { mode: 'durable' });
    await waitFor(async () => ((await ref.inspect()).durable.delivered >= 2 ? true : undefined), 10_000);
    owner.child.kill('SIGKILL');
    assert.equal(await owner.exited, 'SIGKILL');

    assert.equal(await within(answer, 20_000), survivor);
    assert.equal(await ref.ask({ type: 'runs' }), 2, 'each message ran once where it counted');
  });

  test('a durable answer sent while the caller was reconnecting is asked for again, not waited out', async () => {
    const CLUSTER = 'v-reconnect';
    await startNode({ nats: nats.url, cluster: CLUSTER, nodeId: 'vr-a' });
    const proxy = await cuttableProxy(Number(new URL(nats.url).port));
    try {
      const c = await connectCluster({ log: quiet, nats: proxy.url, name: CLUSTER, askTimeoutMs: 60_000 });
      clients.push(c);
      const ref = c.get(Stall, 'r1');
      assert.equal(await ref.ask({ type: 'hold', onNode: 'none', ms: 0 }, { mode: 'durable' }), 'vr-a');
      const answer = ref.ask({ type: 'hold', onNode: 'vr-a', ms: 300 }, { mode: 'durable' });
      await waitFor(async () => ((await ref.inspect()).durable.delivered >= 2 ? true : undefined), 10_000);
      // The caller is away while the actor answers (300 ms in), and back after its reconnect pause.
      await proxy.cut(1500);
      assert.equal(await within(answer, 20_000), 'vr-a');
      assert.ok(c.metrics().durableAsksAgainAfterReconnect >= 1);
      assert.ok(c.metrics().sentAgain >= c.metrics().durableAsksAgainAfterReconnect);
      assert.equal(await ref.ask({ type: 'runs' }), 2, 'applied once');
      // A durable publish made while the caller is away goes again until the stream answers it.
      const before = c.metrics();
      const cut = proxy.cut(1000);
      assert.equal(
        await within(ref.ask({ type: 'hold', onNode: 'none', ms: 0 }, { mode: 'durable' }), 20_000),
        'vr-a',
      );
      await cut;
      const after = c.metrics();
      const asksAgain = after.durableAsksAgainAfterReconnect - before.durableAsksAgainAfterReconnect;
      assert.ok(
        after.sentAgain - before.sentAgain > asksAgain,
        `sent again ${after.sentAgain - before.sentAgain}`,
      );
      assert.equal(await ref.ask({ type: 'runs' }), 3, 'applied once');
    } finally {
      proxy.close();
    }
  });

  test('a fast-mode actor with persist survives kill -9 of its node: every saved message comes back', async () => {
    const CLUSTER = 'v-persist';
    const { procs, c } = await twoNodes(CLUSTER, ['vp-a', 'vp-b']);
    const cart = c.get(Cart, 'c1');
    for (const item of ['apple', 'bread', 'cheese']) await cart.ask({ type: 'add', item });
    // Saves run in the background after each message: wait until the actor reports none unsaved.
    for (let i = 0; i < 200 && (await cart.inspect()).persist?.unsaved !== 0; i++)
      await new Promise((r) => setTimeout(r, 25));
    const seen = await cart.inspect();
    assert.equal(seen.persist?.unsaved, 0);
    assert.ok((seen.persist?.saves ?? 0) >= 1);
    const owner = procs.get(seen.nodeId)!;
    owner.child.kill('SIGKILL');
    assert.equal(await owner.exited, 'SIGKILL');
    await waitGone(CLUSTER, owner.nodeId);
    assert.deepEqual(await cart.ask({ type: 'items' }), ['apple', 'bread', 'cheese']);
    assert.notEqual((await cart.inspect()).nodeId, owner.nodeId);
  });

  describe('two callers racing to activate the same new id', () => {
    const CLUSTER = 'v-race';
    const NODES = ['vr-a', 'vr-b'];
    const IDS = 10;

    before(async () => {
      for (const nodeId of NODES) await startNode({ nats: nats.url, cluster: CLUSTER, nodeId });
    });

    /**
     * Two client connections each send two adds to every id at once (through `get`, which activates on
     * first use) and report what each add returned. `placeA`/`placeB` choose where each client activates.
     */
    async function race(prefix: string, placeA: string, placeB: string) {
      const a = await client(CLUSTER, { activationPlacement: () => placeA });
      const b = await client(CLUSTER, { activationPlacement: () => placeB });
      const results: { id: string; settled: PromiseSettledResult<number>[] }[] = [];
      for (let i = 0; i < IDS; i++) {
        const id = `${prefix}${i}`;
        const settled = await Promise.allSettled(
          [a, a, b, b].map((c) => c.get(Counter, id).ask({ type: 'add', by: 1 })),
        );
        results.push({ id, settled });
      }
      return { a, results };
    }

    /** Exactly one activation per id, with epoch 1, holding exactly the adds that were answered. */
    async function checkOneActivation(c: Cluster, results: Awaited<ReturnType<typeof race>>['results']) {
      const hosting = new Map<string, string[]>();
      for (const nodeId of NODES) {
        for (const a of await hosted(CLUSTER, nodeId)) {
          hosting.set(a.id, [...(hosting.get(a.id) ?? []), nodeId]);
        }
      }
      for (const { id, settled } of results) {
        assert.equal(hosting.get(id)?.length, 1, `${id} is hosted by ${hosting.get(id)?.join(', ')}`);
        const ref = c.ref<typeof Counter>({ type: 'counter', id });
        const seen = await ref.inspect();
        assert.equal(seen.epoch, 1, `${id} was claimed once`);
        const answered = settled.filter((s) => s.status === 'fulfilled').map((s) => s.value);
        // Nothing lost, nothing applied twice: every answered add is in the count, and each saw its own n.
        assert.equal(await ref.ask({ type: 'get' }), answered.length, id);
        assert.deepEqual(
          [...answered].sort((x, y) => x - y),
          Array.from({ length: answered.length }, (_, i) => i + 1),
          id,
        );
      }
    }

    test('callers whose placement picks the same node: one activation, every add applied once', async () => {
      const { a, results } = await race('same', 'vr-a', 'vr-a');
      for (const { id, settled } of results) {
        for (const s of settled)
          assert.equal(s.status, 'fulfilled', `${id}: ${String((s as PromiseRejectedResult).reason)}`);
      }
      await checkOneActivation(a, results);
    });

    test('callers whose placement picks different nodes: still one activation, no add applied twice', async () => {
      const { a, results } = await race('split', 'vr-a', 'vr-b');
      await checkOneActivation(a, results);
    });

    // The losing node's claim is AlreadyActive, and a caller told so re-asks until the winner serves.
    test('callers whose placement picks different nodes: every caller gets its answer', async () => {
      const { results } = await race('every', 'vr-a', 'vr-b');
      const failed = results.flatMap(({ id, settled }) =>
        settled.flatMap((s) => (s.status === 'rejected' ? [`${id}: ${String(s.reason)}`] : [])),
      );
      assert.deepEqual(failed, []);
    });
  });

  test('a node restarted under the same id leaves no ghost activation behind', async () => {
    const CLUSTER = 'v-fixed';
    const env = { nats: nats.url, cluster: CLUSTER };
    const c = await client(CLUSTER);
    const old = await startNode({ ...env, nodeId: 'n-fixed' });
    const f1 = await c.spawn(Counter, { id: 'f1', node: 'n-fixed' });
    const f2 = await c.spawn(Counter, { id: 'f2', node: 'n-fixed' });
    assert.equal(await f1.ask({ type: 'add', by: 3 }), 3);
    assert.deepEqual(await c.locate(f1), { node: 'n-fixed', epoch: 1 });
    old.child.kill('SIGKILL');
    assert.equal(await old.exited, 'SIGKILL');

    const again = await startNode({ ...env, nodeId: 'n-fixed' });
    assert.equal(again.nodeId, 'n-fixed');
    const other = await startNode({ ...env, nodeId: 'n-other' });
    // The directory still names n-fixed, whose new process answers that it does not host f1.
    const moved = await c.spawn(Counter, { id: 'f1', node: other.nodeId });
    assert.deepEqual(await c.locate(moved), { node: 'n-other', epoch: 2 });
    // Fast-mode state is persisted on stop and durable commits only; kill -9 allowed neither.
    assert.equal(await moved.ask({ type: 'get' }), 0);
    assert.equal(await c.get(Counter, 'f1').ask({ type: 'add', by: 5 }), 5);
    // The restarted node takes over its own old entry too.
    await c.spawn(Counter, { id: 'f2', node: 'n-fixed' });
    assert.deepEqual(await c.locate(f2), { node: 'n-fixed', epoch: 2 });
    assert.equal(await c.get(Counter, 'f2').ask({ type: 'add', by: 1 }), 1);
  });

  test('past the restart limit the directory entry is gone by the first NoResponders', async () => {
    const CLUSTER = 'v-limit';
    const node = await startNode({ nats: nats.url, cluster: CLUSTER });
    const c = await client(CLUSTER);
    for (let round = 0; round < 5; round++) {
      const ref = await c.spawn(Counter, { id: `lim${round}`, node: node.nodeId });
      assert.equal(await ref.ask({ type: 'add', by: 1 }), 1);
      // Poisoned state: every restore throws, so restarts fail until the limit (3) stops the actor.
      await ref.ask({ type: 'poison' });
      await assert.rejects(ref.ask({ type: 'crash' }), Crash);
      let stoppedAt: NoResponders | undefined;
      for (let i = 0; i < 200 && !stoppedAt; i++) {
        try {
          await ref.inspect();
          await delay(10);
        } catch (err) {
          if (err instanceof NoResponders) stoppedAt = err;
          else assert.ok(err instanceof Timeout, String(err)); // a loaded machine; ask again
        }
      }
      assert.ok(stoppedAt, `lim${round} was still answering`);
      // At once, no polling: the entry was released before the actor unsubscribed.
      assert.equal(await c.locate(ref), undefined, `lim${round} is still in the directory`);
    }
  });

  test('a fast tell to an actor with no activation is counted and logged', async () => {
    const CLUSTER = 'v-tell';
    await startNode({ nats: nats.url, cluster: CLUSTER });
    const logs: { level: LogLevel; message: string; fields: Record<string, unknown> | undefined }[] = [];
    const c = await client(CLUSTER, {
      log: (level, message, fields) => logs.push({ level, message, fields }),
    });
    assert.equal(c.metrics().tellsWithoutActivation, 0);
    const ghost: ActorRefData = { type: 'counter', id: 'nobody' };
    await c.ref<typeof Counter>(ghost).tell({ type: 'add', by: 1 });
    await waitFor(async () => c.metrics().tellsWithoutActivation >= 1 || undefined, 10_000);
    assert.equal(c.metrics().tellsWithoutActivation, 1);
    const warning = logs.find((l) => l.message.includes('no activation'));
    assert.ok(warning, `logged: ${JSON.stringify(logs)}`);
    assert.equal(warning.level, 'warn');
    assert.equal(warning.fields?.actor, 'counter.nobody');
    assert.equal(warning.fields?.dropped, 1);
    // The tell went nowhere: nothing was activated for it.
    assert.equal(await c.locate(ghost), undefined);
  });
});

/**
 * A TCP proxy to the server on `port` that can cut every connection through it and refuse new ones
 * for a while: the caller's side of a server restart or a network blip, with the server itself up.
 */
async function cuttableProxy(
  port: number,
): Promise<{ url: string; cut(ms: number): Promise<void>; close(): void }> {
  const sockets = new Set<Socket>();
  let server: Server;
  const listen = (at: number) =>
    new Promise<number>((resolve) => {
      server = createServer((inbound) => {
        const outbound = createConnection(port, '127.0.0.1');
        for (const s of [inbound, outbound]) {
          sockets.add(s);
          s.on('error', () => undefined);
          s.on('close', () => {
            sockets.delete(s);
            inbound.destroy();
            outbound.destroy();
          });
        }
        inbound.pipe(outbound).pipe(inbound);
      });
      server.listen(at, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
  const own = await listen(0);
  const stop = () => {
    server.close();
    for (const s of sockets) s.destroy();
  };
  return {
    url: `nats://127.0.0.1:${own}`,
    async cut(ms) {
      stop();
      await delay(ms);
      await listen(own);
    },
    close: stop,
  };
}

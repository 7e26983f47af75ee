// Per-principal credentials: `stitch cluster init --auth` (writeAuthDir) makes static nkey users with
// permissions per role; a nats-server configured with them lets a node host actors and a client ask
// them, and refuses what each principal has no business doing (a client or a node stopping an actor, writing
// the directory or posing as a node; a node writing another node's capability record; anyone reading
// replies sent to another principal's inboxes).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type NatsConnection, nkeyAuthenticator, nkeys } from '@nats-io/transport-node';
import { KernelSource, kernelStoreName } from '@stitch/compiler';
import {
  type Cluster,
  connectCluster,
  defineActor,
  type EmbeddedNats,
  initCluster,
  startEmbeddedNats,
} from '@stitch/runtime';
import { decode, encode, natsFastPathEnabled } from '@stitch/runtime/internal';
import { writeAuthDir } from '../packages/cli/src/auth-files.js';
import { Ledger } from './fixtures/runtime-actors.js';

const C = 'sec';

const Echo = defineActor({
  type: 'echo',
  handlers: { echo: (_s: unknown, m: { text: string }) => m.text },
});

/** Resolves with what `p` resolves to, or with 'timeout' after `ms`: a bounded wait. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((done) => {
    timer = setTimeout(() => done('timeout'), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

describe('per-principal nkey credentials', () => {
  let dir: string;
  let seeds: Record<string, string>;
  let nats: EmbeddedNats;
  let nodeA: Cluster | undefined;
  let nodeB: Cluster | undefined;
  let client: Cluster | undefined;
  const raw: NatsConnection[] = [];
  const as = (principal: string) => ({
    nats: nats.url,
    name: C,
    nkeySeedFile: seeds[principal],
    deadAfterMs: 3000,
    askTimeoutMs: 10_000,
  });
  const rawAs = async (principal: string) => {
    const seed = new TextEncoder().encode(readFileSync(seeds[principal]!, 'utf8').trim());
    const nc = await connect({
      servers: nats.url,
      authenticator: nkeyAuthenticator(seed),
      // The inboxes its permissions allow (what connectCluster derives from the seed).
      inboxPrefix: `_INBOX.${nkeys.fromSeed(seed).getPublicKey()}`,
    });
    raw.push(nc);
    return nc;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stitch-auth-test-'));
    const first = writeAuthDir(dir, { name: C, nodes: ['a', 'b'] });
    // Idempotent: a second run keeps every key.
    const again = writeAuthDir(dir, { name: C, nodes: ['a', 'b'] });
    assert.equal(again.config, first.config);
    seeds = first.seeds;
    assert.equal(statSync(seeds['node-a']!).mode & 0o777, 0o600);
    nats = await startEmbeddedNats({ config: readFileSync(join(dir, 'auth.conf'), 'utf8') });
    await initCluster(as('admin'));
    nodeA = await connectCluster(as('node-a'));
    await nodeA.startNode({ id: 'a', actors: [Echo, Ledger] });
    nodeB = await connectCluster(as('node-b'));
    await nodeB.startNode({ id: 'b', actors: [Echo, Ledger] });
    client = await connectCluster(as('client'));
  });

  after(async () => {
    await Promise.all(raw.map((nc) => nc.close().catch(() => undefined)));
    await client?.close();
    await nodeA?.close();
    await nodeB?.close();
    await nats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('without a credential the server refuses the connection', async () => {
    await assert.rejects(connectCluster({ nats: nats.url, name: C }));
  });

  test('a node hosts actors and a client asks them (fast and durable)', async () => {
    const echo = client!.get(Echo, 'e1');
    assert.equal(await echo.ask({ type: 'echo', text: 'hi' }), 'hi');
    const ledger = await client!.spawn(Ledger, { id: 'l1', node: 'b' });
    assert.equal(await ledger.ask({ type: 'apply', n: 1 }, { mode: 'durable', idempotencyKey: 'k1' }), 1);
    // The client may read the directory and the nodes bucket.
    assert.equal((await client!.locate({ type: 'echo', id: 'e1' }))?.node !== undefined, true);
    const ids = (await client!.nodes()).map((r) => r.nodeId).sort();
    assert.deepEqual(ids, ['a', 'b']);
  });

  test('a client cannot stop an actor: a node control subject is not its to publish to', async () => {
    const echo = client!.get(Echo, 'e2');
    assert.equal(await echo.ask({ type: 'echo', text: 'one' }), 'one');
    // The server drops the command (no permission), so the request can only time out.
    await assert.rejects(client!.stop({ type: 'echo', id: 'e2' }, { timeoutMs: 1000 }));
    assert.equal(await echo.ask({ type: 'echo', text: 'still here' }), 'still here');
  });

  test('the coordinator migrates a durable actor live between nodes (they hand off to each other); a client may not', async () => {
    const ledger = await client!.spawn(Ledger, { id: 'l-move', node: 'b' });
    assert.equal(await ledger.ask({ type: 'apply', n: 1 }, { mode: 'durable', idempotencyKey: 'm1' }), 1);
    // The server drops the client's command (no permission), so the request can only time out.
    await assert.rejects(client!.migrate({ type: 'ledger', id: 'l-move' }, 'a', { timeoutMs: 1000 }));
    const coordinator = await connectCluster(as('coordinator'));
    try {
      const report = await coordinator.migrate({ type: 'ledger', id: 'l-move' }, 'a');
      assert.equal(report.to, 'a');
      // The nodes pull with inboxes under the cluster's pull prefix, which each may read (its other
      // inboxes only it may): the target takes over the source's pulls.
      if (natsFastPathEnabled) assert.ok(report.pullsHandedOver >= 1, `pulls: ${report.pullsHandedOver}`);
    } finally {
      await coordinator.close();
    }
    assert.equal((await client!.locate({ type: 'ledger', id: 'l-move' }))?.node, 'a');
    // The state and the durable record came along: the key applied on b is not applied again on a.
    assert.equal(await ledger.ask({ type: 'apply', n: 1 }, { mode: 'durable', idempotencyKey: 'm1' }), 1);
    assert.equal(await ledger.ask({ type: 'apply', n: 2 }, { mode: 'durable', idempotencyKey: 'm2' }), 1);
    assert.deepEqual(await ledger.ask({ type: 'get' }), { m1: 1, m2: 1 });
  });

  test('a client cannot write the directory or the nodes bucket', async () => {
    const directory = await client!.kv(`stitch_${C}_directory`);
    await assert.rejects(directory.put('echo.e1', JSON.stringify({ node: 'b', epoch: 99 })));
    const nodes = await client!.kv(`stitch_${C}_nodes`);
    await assert.rejects(nodes.put('fake', JSON.stringify({ nodeId: 'fake' })));
    // Nor create a stream (a bucket is one).
    await assert.rejects(client!.kv(`stitch_${C}_other`, { create: true }));
    // Nothing changed: the directory still says where e1 is, and no fake node appeared.
    assert.equal(await client!.get(Echo, 'e1').ask({ type: 'echo', text: 'after' }), 'after');
    assert.equal(
      (await client!.nodes()).some((r) => r.nodeId === 'fake'),
      false,
    );
  });

  test('a client cannot pose as a node: it may not subscribe to a node control subject', async () => {
    const nc = await rawAs('client');
    const sub = nc.subscribe(`stitch.${C}.node.a.control`);
    const closed = await within(sub.closed, 10_000);
    assert.ok(closed instanceof Error, `subscription not refused: ${String(closed)}`);
    assert.match(closed.message, /permission/i);
    // Nor subscribe to actor subjects (to answer in an actor's place).
    const actorSub = nc.subscribe(`stitch.${C}.actor.echo.e1`);
    const actorClosed = await within(actorSub.closed, 10_000);
    assert.ok(actorClosed instanceof Error, `subscription not refused: ${String(actorClosed)}`);
  });

  test("no principal can read another's replies: each subscribes to its own inboxes only", async () => {
    for (const who of ['client', 'node-a']) {
      const nc = await rawAs(who);
      const sub = nc.subscribe('_INBOX.>');
      const closed = await within(sub.closed, 10_000);
      assert.ok(closed instanceof Error, `${who}: _INBOX.> not refused: ${String(closed)}`);
      assert.match(closed.message, /permission/i);
    }
    // Its own inboxes it does use: asks, KV reads and durable replies all came back above and do here.
    assert.equal(await client!.get(Echo, 'e3').ask({ type: 'echo', text: 'mine' }), 'mine');
  });

  test("node a cannot stop node b's actors; it may still ask b whether it hosts one", async () => {
    const echo = await client!.spawn(Echo, { id: 'e-b', node: 'b' });
    assert.equal(await echo.ask({ type: 'echo', text: 'before' }), 'before');
    // A command to another node's control subject is refused by the server (the request fails).
    await assert.rejects(nodeA!.stop({ type: 'echo', id: 'e-b' }, { timeoutMs: 1000 }));
    assert.equal(await echo.ask({ type: 'echo', text: 'after' }), 'after');
    const nc = await rawAs('node-a');
    const q = await nc.request(`stitch.${C}.node.b.query`, encode({ op: 'hosts', type: 'echo', id: 'e-b' }));
    assert.equal(decode(q.data), true);
  });

  test('a node fetches a kernel the admin published, signed with the key cluster init made; it cannot publish one', async () => {
    const admin = await connectCluster(as('admin'));
    try {
      const spec = { op: 'nn.matvec' as const, m: 4, k: 32 };
      const keys = writeAuthDir(dir, { name: C, nodes: ['a', 'b'] }).kernelKeys;
      const adminStore = await admin.objectStore(kernelStoreName(C), { create: true });
      const signingKey = readFileSync(keys.privateKey, 'utf8');
      const published = await new KernelSource({
        store: adminStore,
        signingKey,
        cacheDir: join(dir, 'k-admin'),
      }).obtain(spec, 'x86-64');
      const nodeStore = await nodeA!.objectStore(kernelStoreName(C));
      const fetched = await new KernelSource({
        store: nodeStore,
        trustedKeys: [readFileSync(keys.publicKey, 'utf8')],
        cacheDir: join(dir, 'k-node'),
      }).obtain(spec, 'x86-64');
      assert.equal(fetched.origin, 'fetched');
      assert.equal(fetched.manifest.hash, published.manifest.hash);
      // Writing the store is the admin's: a node's put is refused by the server.
      await assert.rejects(nodeStore.putBlob({ name: 'forged.so' }, new Uint8Array(16)));
    } finally {
      await admin.close();
    }
  });

  test("node a cannot write node b's capability record, only its own", async () => {
    const nodes = await nodeA!.kv(`stitch_${C}_nodes`);
    const before = await nodes.get('b');
    assert.ok(before);
    await assert.rejects(nodes.put('b', JSON.stringify({ nodeId: 'b', forged: true })));
    const afterPut = await nodes.get('b');
    assert.equal(afterPut?.string().includes('forged'), false);
    // Node a's own record it does write (its heartbeat keeps it current).
    assert.equal(await nodeA!.isNodeAlive('a'), true);
  });
});

describe('an auth config generated before the pull inboxes', () => {
  let dir: string;
  let nats: EmbeddedNats;
  const clusters: Cluster[] = [];

  after(async () => {
    for (const c of clusters.reverse()) await c.close().catch(() => undefined);
    await nats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('its nodes consume durable messages as before, and a durable move makes the consumer again', async () => {
    dir = mkdtempSync(join(tmpdir(), 'stitch-auth-old-'));
    const { config, seeds } = writeAuthDir(dir, { name: C, nodes: ['a', 'b'] });
    const old = config.replaceAll(`"stitch.${C}.pull.>", `, '');
    assert.notEqual(old, config, 'the nodes may subscribe to pull inboxes in a config made now');
    nats = await startEmbeddedNats({ config: old });
    const as = async (principal: string) => {
      const c = await connectCluster({
        nats: nats.url,
        name: C,
        nkeySeedFile: seeds[principal],
        deadAfterMs: 3000,
      });
      clusters.push(c);
      return c;
    };
    await initCluster({ nats: nats.url, name: C, nkeySeedFile: seeds.admin });
    await (await as('node-a')).startNode({ id: 'a', actors: [Ledger] });
    await (await as('node-b')).startNode({ id: 'b', actors: [Ledger] });
    const client = await as('client');
    const ledger = await client.spawn(Ledger, { id: 'l-old', node: 'b' });
    assert.equal(await ledger.ask({ type: 'apply', n: 1 }, { mode: 'durable', idempotencyKey: 'o1' }), 1);
    const report = await (await as('coordinator')).migrate({ type: 'ledger', id: 'l-old' }, 'a');
    assert.equal(report.pullsHandedOver, 0);
    assert.equal(await ledger.ask({ type: 'apply', n: 2 }, { mode: 'durable', idempotencyKey: 'o2' }), 1);
    assert.equal(await ledger.ask({ type: 'apply', n: 1 }, { mode: 'durable', idempotencyKey: 'o1' }), 1);
    assert.deepEqual(await ledger.ask({ type: 'get' }), { o1: 1, o2: 1 });
  });
});

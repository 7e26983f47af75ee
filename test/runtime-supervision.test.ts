// Supervision: a throwing handler fails one message; a crash restarts the actor from its last snapshot,
// with backoff, up to a limit.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  type ActorInspection,
  type Cluster,
  Crash,
  connectCluster,
  defineActor,
  type EmbeddedNats,
  NoResponders,
  startEmbeddedNats,
  Timeout,
} from '@stitch/runtime';
import { Counter } from './fixtures/runtime-actors.js';
import { type NodeProc, startNode, stopAll } from './fixtures/runtime-procs.js';

const CLUSTER = 'sup';

describe('supervision', () => {
  let nats: EmbeddedNats;
  let node: NodeProc;
  let client: Cluster;

  before(async () => {
    nats = await startEmbeddedNats();
    node = await startNode({ nats: nats.url, cluster: CLUSTER });
    client = await connectCluster({ nats: nats.url, name: CLUSTER });
  });

  after(async () => {
    await client?.close();
    await stopAll();
    await nats?.stop();
  });

  test('a crash fails its message and restarts the actor from its last snapshot', async () => {
    const ref = await client.spawn(Counter, { id: 'c1', node: node.nodeId });
    await ref.ask({ type: 'add', by: 3 });
    await ref.ask({ type: 'add', by: 4 });
    const err = await ref.ask({ type: 'crash' }).catch((e: unknown) => e);
    assert.ok(err instanceof Crash && err.remote && err.code === 'ACTOR_CRASH', String(err));
    // Queued during the restart backoff, answered after it from the restored state.
    assert.equal(await ref.ask({ type: 'get' }), 7);
    const seen = await ref.inspect();
    assert.equal(seen.restarts, 1);
    assert.equal(seen.status, 'running');
  });

  test('past the restart limit the actor stops; a failing restore counts as a crash', async () => {
    const ref = await client.spawn(Counter, { id: 'c2', node: node.nodeId });
    await ref.ask({ type: 'add', by: 1 });
    // Poisoned state: every restore throws, so restarts fail until the limit (3) stops the actor.
    await ref.ask({ type: 'poison' });
    await assert.rejects(ref.ask({ type: 'crash' }), Crash);
    let last: ActorInspection | undefined;
    for (let i = 0; i < 100; i++) {
      try {
        last = await ref.inspect({ timeoutMs: 2000 });
      } catch (e) {
        // A loaded machine may miss a deadline; only a missing actor ends the wait.
        if (e instanceof Timeout) continue;
        assert.ok(e instanceof NoResponders, String(e));
        break;
      }
      await delay(20);
    }
    assert.ok(last && last.restarts >= 3, `restarted ${last?.restarts} times before stopping`);
    await assert.rejects(ref.ask({ type: 'get' }), NoResponders);
    assert.equal(await client.locate(ref), undefined, 'its directory entry was released');
    // Fast-mode snapshots are persisted on stop and durable commits only; this actor failed before
    // either, so spawning it again starts from init.
    const again = await client.spawn(Counter, { id: 'c2', node: node.nodeId });
    assert.equal(await again.ask({ type: 'get' }), 0);
  });

  test('an actor stopped during its restart backoff stays stopped and keeps its last snapshot, not the crashed state', async () => {
    let starts = 0;
    const Fragile = defineActor({
      type: 'fragile',
      init: () => {
        starts++;
        return { n: 0 };
      },
      handlers: {
        add(s: { n: number }, m: { by: number }) {
          s.n += m.by;
          return s.n;
        },
        crash(s: { n: number }) {
          s.n = -1;
          throw new Crash('asked to crash midway');
        },
        get: (s: { n: number }) => s.n,
      },
      snapshotOnDemand: true,
      snapshot: (s) => ({ ...s }),
      restore: (snap) => {
        starts++;
        return { ...(snap as { n: number }) };
      },
      restart: { maxRestarts: 5, withinMs: 60_000, backoffMs: 400 },
    });
    const host = await connectCluster({ nats: nats.url, name: CLUSTER, log: () => undefined });
    try {
      await host.startNode({ id: 'in-process', actors: [Fragile] });
      const ref = await host.spawn(Fragile, { id: 'f1', node: 'in-process' });
      assert.equal(await ref.ask({ type: 'add', by: 5 }), 5);
      // A migration snapshots an on-demand actor; a stop does too, so take one now: n = 5.
      await host.stop(ref);
      const again = await host.spawn(Fragile, { id: 'f1', node: 'in-process' });
      assert.equal(await again.ask({ type: 'add', by: 2 }), 7);
      await assert.rejects(again.ask({ type: 'crash' }), Crash);
      // Stopped inside the backoff: no restart follows it, and what it saves is the snapshot a
      // restart would have restored (5), not the state the crash left (-1) nor the unsaved 7.
      await host.stop(again);
      const before = starts;
      await delay(800);
      assert.equal(starts, before, 'the actor was started again after its stop');
      const third = await host.spawn(Fragile, { id: 'f1', node: 'in-process' });
      assert.equal(await third.ask({ type: 'get' }), 5);
    } finally {
      await host.close();
    }
  });
});

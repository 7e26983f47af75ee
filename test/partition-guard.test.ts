// `stitch cluster guard` on three namespace hosts: a host cut off from the other two stops its
// nats-server before its Raft election timeout, starts it again once healed, and the server rejoins
// its streams as a follower; nothing published meanwhile is lost.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { skipWithoutHosts } from './fixtures/hosts/available.js';
import { NatsCluster } from './fixtures/hosts/nats-cluster.js';
import { Hosts } from './fixtures/hosts/netns.js';
import { waitFor, waitUntil } from './fixtures/wait.js';

const count = (text: string, what: string) => text.split(what).length - 1;

test('a cut-off host stops its nats-server and starts it again when healed; the stream loses nothing', {
  skip: skipWithoutHosts(),
  timeout: 150_000,
}, async () => {
  const hosts = new Hosts(['h1', 'h2', 'h3']);
  let nats: NatsCluster | undefined;
  let nc: NatsConnection | undefined;
  try {
    nats = await NatsCluster.start(hosts, { guarded: true });
    nc = await connect({
      servers: [nats.url('h2'), nats.url('h3')],
      reconnectTimeWait: 100,
      // The client stays on the majority's side.
      ignoreClusterUpdates: true,
    });
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc, { timeout: 2000 });
    await jsm.streams.add({ name: 'guarded', subjects: ['guarded.>'], num_replicas: 3 });
    await jsm.consumers.add('guarded', { durable_name: 'all', ack_policy: AckPolicy.Explicit });
    let published = 0;
    /** Publishes until it is acknowledged: a stream whose leader was on h1 elects another meanwhile. */
    const publish = async () => {
      const n = published + 1;
      await waitFor(
        () =>
          js.publish(`guarded.${n}`, `${n}`, { msgID: `m${n}` }).then(
            () => true,
            () => undefined,
          ),
        30_000,
      );
      published = n;
    };
    for (let i = 0; i < 5; i++) await publish();
    const log = () => nats!.log('h1');
    assert.equal(count(log(), 'Server is ready'), 1);

    hosts.cut('h1');
    // The guard stops h1's server.
    await waitUntil(() => log().includes('nats-server stopped until there is'), 20_000);
    const guardPid = nats.pid('h1')!;
    // h1's nats-server exits.
    await waitUntil(
      () => readFileSync(`/proc/${guardPid}/task/${guardPid}/children`, 'utf8').trim() === '',
      15_000,
    );
    for (let i = 0; i < 5; i++) await publish();

    hosts.heal('h1');
    // The guard starts h1's server again, and it is a current replica of the stream again.
    await waitUntil(() => count(log(), 'Server is ready') === 2, 20_000);
    await waitFor(async () => {
      const info = await jsm.streams.info('guarded').catch(() => undefined);
      const replicas = [
        info?.cluster?.leader,
        ...(info?.cluster?.replicas ?? []).map((r) => r.current && r.name),
      ];
      return replicas.includes('h1') || undefined;
    }, 60_000);
    for (let i = 0; i < 5; i++) await publish();

    // After the heal the consumer's group may still be electing ("temporarily unavailable"): asked
    // again, as a client would.
    const consumer = await waitFor(() => js.consumers.get('guarded', 'all').catch(() => undefined), 30_000);
    const seen = new Set<string>();
    // The consumer's group may still be settling after the heal: a fetch that fails (missed heartbeats,
    // no leader yet) is made again, as a client would; one that ends empty is a lost message.
    const until = Date.now() + 30_000;
    while (seen.size < published) {
      const m = await consumer.next({ expires: 2000 }).catch((err: unknown) => {
        if (Date.now() > until) throw err;
        return 'retry' as const;
      });
      if (m === 'retry') {
        await delay(250);
        continue;
      }
      assert.ok(m, `only ${seen.size} of ${published} messages came back`);
      seen.add(m.string());
      m.ack();
    }
    assert.deepEqual(
      [...seen].map(Number).sort((a, b) => a - b),
      Array.from({ length: 15 }, (_, i) => i + 1),
    );
  } finally {
    // Closed here, not after the checks: a failed check must not leave servers and a connection behind.
    await nc?.close().catch(() => undefined);
    await nats?.close();
    await hosts.close();
  }
});

// Replication: on a 3-server JetStream cluster (one server per namespace host) the durable stream and
// every bucket get 3 replicas by default; a cluster set up with 1 replica is raised to 3 and says so;
// a single server keeps 1. Durable asks from a client on one host to a node on another keep exact
// counts while one nats-server is stopped and restarted.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  AlreadyActive,
  connectCluster,
  InvalidOptions,
  initCluster,
  type LogFn,
  startEmbeddedNats,
} from '@stitch/runtime';
import { runScenario } from './chaos/scenario.js';
import { skipWithoutHosts } from './fixtures/hosts/available.js';
import { NatsCluster } from './fixtures/hosts/nats-cluster.js';
import { Hosts } from './fixtures/hosts/netns.js';
import { ForgetfulSequencer, Ledger, PatientForgetfulSequencer } from './fixtures/runtime-actors.js';
import { startNode, stopAll } from './fixtures/runtime-procs.js';
import { countApplied, startLoad } from './fixtures/sequencer-load.js';
import { waitFor } from './fixtures/wait.js';

const streamsOf = (c: string) => [
  `stitch_${c}_mailbox`,
  `KV_stitch_${c}_nodes`,
  `KV_stitch_${c}_directory`,
  `KV_stitch_${c}_state`,
  `KV_stitch_${c}_reminders`,
];

async function replicasOf(urls: string[], streams: string[]): Promise<Record<string, number>> {
  const nc = await connect({ servers: urls });
  try {
    const jsm = await jetstreamManager(nc);
    const out: Record<string, number> = {};
    // Asked again while a stream's group still elects its leader (just made, or after a restart).
    for (const s of streams)
      out[s] = await waitFor(
        () =>
          jsm.streams.info(s).then(
            (i) => i.config.num_replicas,
            () => undefined,
          ),
        30_000,
      );
    return out;
  } finally {
    await nc.close();
  }
}

const all = (streams: string[], n: number) => Object.fromEntries(streams.map((s) => [s, n]));

/**
 * Has the consumer's leader step down, and waits until another server leads it (asked again every 2 s:
 * a leader whose followers are not current yet refuses).
 */
async function stepDown(admin: NatsConnection, stream: string, consumer: string): Promise<void> {
  const jsm = await jetstreamManager(admin);
  const leaderOf = async () => (await jsm.consumers.info(stream, consumer)).cluster?.leader;
  const before = await leaderOf();
  for (let asked = 0; asked < 15; asked++) {
    await admin
      .request(`$JS.API.CONSUMER.LEADER.STEPDOWN.${stream}.${consumer}`, '', { timeout: 5000 })
      .catch(() => undefined);
    for (let waited = 0; waited < 2000; waited += 50) {
      const now = await leaderOf().catch(() => before);
      if (now !== undefined && now !== before) return;
      await delay(50);
    }
  }
  throw new Error(`consumer ${consumer} kept its leader ${before} for 30 s of step-downs`);
}

test('replicas must be 1 to 5', async () => {
  for (const replicas of [0, 6, 1.5])
    await assert.rejects(connectCluster({ name: 'r', nats: 'nats://127.0.0.1:1', replicas }), InvalidOptions);
});

test('a single server (in no cluster) gets one replica', async () => {
  const nats = await startEmbeddedNats();
  try {
    const c = await connectCluster({ nats: nats.url, name: 'single' });
    await c.close();
    assert.deepEqual(await replicasOf([nats.url], streamsOf('single')), all(streamsOf('single'), 1));
  } finally {
    await nats.stop();
  }
});

describe('a 3-server cluster', { skip: skipWithoutHosts() }, () => {
  let hosts: Hosts;
  let nats: NatsCluster;
  before(async () => {
    hosts = new Hosts(['h1', 'h2', 'h3']);
    nats = await NatsCluster.start(hosts);
  });
  after(async () => {
    await nats?.close();
    await hosts?.close();
  });

  // First: a restart of every server recovers every stream the other tests made (19 s after them, 9 s first).
  test('a cluster set up while it has no metadata leader waits for one rather than report JetStream off', async () => {
    // All three stopped and h1 started alone: no server of a cluster restarted without a quorum leads.
    for (const h of ['h1', 'h2', 'h3']) await nats.stop(h);
    await nats.start('h1');
    const logged: { msg: string }[] = [];
    const log: LogFn = (_level, msg, fields) => logged.push({ msg, ...fields });
    try {
      // Its JetStream API answers nothing until h2 and h3 are back and elect.
      const init = initCluster({ nats: nats.urls().slice(0, 1), name: 'leaderless', replicas: 3, log });
      await delay(3000);
      await nats.start('h2');
      await nats.start('h3');
      await init;
    } finally {
      await nats.start('h2').catch(() => undefined);
      await nats.start('h3').catch(() => undefined);
    }
    assert.deepEqual(await replicasOf(nats.urls(), streamsOf('leaderless')), all(streamsOf('leaderless'), 3));
    assert.ok(
      logged.some(
        (l) => l.msg === 'JetStream does not answer yet (its cluster is electing a leader); trying again',
      ),
      JSON.stringify(logged),
    );
  });

  test('the stream and buckets get 3 replicas; one-replica ones are raised and reported', async () => {
    await initCluster({ nats: nats.urls(), name: 'fresh' });
    assert.deepEqual(await replicasOf(nats.urls(), streamsOf('fresh')), all(streamsOf('fresh'), 3));

    const old = await connectCluster({ nats: nats.urls(), name: 'old', replicas: 1 });
    await old.kv('stitch_old_app', { create: true });
    await old.close();
    const streams = [...streamsOf('old'), 'KV_stitch_old_app'];
    assert.deepEqual(await replicasOf(nats.urls(), streams), all(streams, 1));

    const logged: { msg: string; stream?: unknown; from?: unknown; to?: unknown }[] = [];
    const log: LogFn = (_level, msg, fields) => logged.push({ msg, ...fields });
    const now = await connectCluster({ nats: nats.urls(), name: 'old', log });
    await now.kv('stitch_old_app', { create: true });
    await now.close();
    assert.deepEqual(await replicasOf(nats.urls(), streams), all(streams, 3));
    const raised = logged.filter((l) => l.msg === 'stream replicas raised');
    assert.deepEqual(raised.map((l) => l.stream).sort(), [...streams].sort());
    assert.ok(raised.every((l) => l.from === 1 && l.to === 3));
  });

  test('a cluster set up while one server is still starting waits for it rather than fail', async () => {
    await nats.stop('h3');
    const logged: { msg: string; what?: unknown }[] = [];
    const log: LogFn = (_level, msg, fields) => logged.push({ msg, ...fields });
    try {
      // Three replicas cannot be placed on the two servers up: JetStream refuses until h3 is back.
      const init = initCluster({ nats: nats.urls().slice(0, 2), name: 'forming', replicas: 3, log });
      await delay(1500);
      await nats.start('h3');
      await init;
    } finally {
      await nats.start('h3').catch(() => undefined);
    }
    assert.deepEqual(await replicasOf(nats.urls(), streamsOf('forming')), all(streamsOf('forming'), 3));
    assert.ok(
      // Which wait it shows depends on where the metadata leader was: on h3, the API itself waits
      // out the election first, and h3 may be back before a create is refused.
      logged.some(
        (l) =>
          l.msg === 'the cluster cannot place replicas yet; trying again' ||
          l.msg === 'JetStream does not answer yet (its cluster is electing a leader); trying again',
      ),
      JSON.stringify(logged),
    );
  });

  test('a durable actor pulls again at once when its consumer gets a new leader', async () => {
    const name = 'lead';
    const client = await connectCluster({ nats: nats.urls(), name });
    const admin = await connect({ servers: nats.urls() });
    try {
      const node = await startNode({ nats: nats.urls()[0]!, cluster: name, nodeId: 'lead-a' });
      const ref = await client.spawn(Ledger, { id: 'l1', node: node.nodeId });
      const ask = (k: string) => ref.ask({ type: 'apply', n: 0 }, { mode: 'durable', idempotencyKey: k });
      assert.equal(await ask('k0'), 1);
      const jsm = await jetstreamManager(admin);
      const stream = `stitch_${name}_mailbox`;
      const [consumer] = await jsm.consumers.list(stream).next();
      assert.ok(consumer, 'the actor has its durable consumer');
      // Past the first second of its pull (an election then is taken for the consumer's making).
      await delay(1500);
      // The leader hands the consumer to another server; the pull the node had waiting there is gone.
      await stepDown(admin, stream, consumer.name);
      for (let i = 1; i <= 5; i++) assert.equal(await ask(`k${i}`), 1);
      const seen = await ref.inspect();
      assert.ok((seen.durable.repulls ?? 0) >= 1, JSON.stringify(seen.durable));
    } finally {
      await admin.close();
      await client.close();
      await stopAll();
    }
  });

  // Acknowledgements sent while the consumer changes leaders are lost: those messages come again after
  // ack_wait, by when this actor (32 kept outcomes, a thousand messages a second) has forgotten their
  // keys. Moved at once instead, they reach the target's fresh consumer unacknowledged: the target
  // knows them by the stream sequences the source's commit lists. Its node killed instead (ack_wait
  // 10 s: none has come again by then), they reach the next activation's fresh consumer: it knows
  // them by the sequences the record lists.
  for (const then of ['', 'move', 'kill'] as const)
    test(`a durable actor whose consumer changes leaders under load${then ? `, then ${then === 'move' ? 'moves' : 'loses its node'},` : ''} applies each message once`, async () => {
      const name = `forget${then}`;
      const actor = then === 'kill' ? PatientForgetfulSequencer : ForgetfulSequencer;
      const client = await connectCluster({ nats: nats.urls(), name });
      const admin = await connect({ servers: nats.urls() });
      try {
        const nodes = await Promise.all(
          (then ? [0, 1] : [0]).map((i) =>
            startNode({
              nats: nats.urls()[i]!,
              cluster: name,
              nodeId: `${name}-${i}`,
              ...(then === 'kill' ? { deadAfterMs: 3000 } : {}),
            }),
          ),
        );
        const ref = await client.spawn(actor, { id: 'f1', node: nodes[0]!.nodeId });
        await ref.ask({ type: 'next', from: 'warm', seq: 1 }, { mode: 'durable' });
        const load = startLoad(ref, 'load', 16, 'durable', 30_000);
        try {
          for (let i = 1; i <= 3; i++) {
            await delay(1500);
            await stepDown(admin, `stitch_${name}_mailbox`, `${actor.type}__f1`);
            if (then === 'move') await client.migrate(ref, nodes[i % 2]!.nodeId);
          }
          if (then === 'kill') {
            nodes[0]!.child.kill('SIGKILL');
            await nodes[0]!.exited;
            await waitFor(
              () =>
                client.spawn(actor, { id: 'f1', node: nodes[1]!.nodeId }).then(
                  () => true,
                  (err) => {
                    assert.ok(err instanceof AlreadyActive, String(err));
                    return undefined;
                  },
                ),
              30_000,
            );
          }
          // Past ack_wait (or the next activation's start): what lost its acknowledgement has come again.
          await delay(3000);
        } finally {
          await load.stop();
        }
        assert.deepEqual(load.errors.slice(0, 5), []);
        const [c] = await countApplied(ref, [load]);
        const seen = (await ref.inspect()).durable;
        process.stdout.write(`# ${name}: ${JSON.stringify(seen)}\n`);
        assert.equal(c!.duplicated, 0, `applied twice (${JSON.stringify(seen)})`);
        assert.equal(c!.lost, 0);
      } finally {
        await admin.close();
        await client.close();
        await stopAll();
      }
    });

  test('durable asks keep exact counts while one nats-server is stopped and restarted', async () => {
    // Its own hosts: runScenario builds them (nodes on h1 and h2, the client on h3).
    const r = await runScenario(
      {
        name: 'replication-server-stop',
        what: 'nats-server h1 stopped (SIGTERM) and restarted',
        fault: (w) => w.nats.stop('h1', 'SIGTERM'),
        heal: (w) => w.nats.start('h1'),
      },
      {
        requests: 200,
        rate: 40,
        actors: 4,
        faultAfterMs: 1500,
        holdMs: 2000,
        timeoutMs: 2000,
        giveUpMs: 150_000,
      },
    );
    assert.equal(r.sent, 200);
    assert.deepEqual(
      { succeeded: r.succeeded, failed: r.failed, lost: r.lost, duplicated: r.duplicated },
      { succeeded: 200, failed: 0, lost: 0, duplicated: 0 },
      JSON.stringify(r),
    );
  });
});

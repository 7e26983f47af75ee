// Live migration across a 3-server JetStream cluster (one nats-server per namespace host) whose routes
// run under mutual TLS (SECURITY.md, "Routes"): the source node, the target node and the callers each
// connect to a different server, so the target's subscription and the source's unsubscribe reach the
// callers' server over routes, later than on one server, and a durable actor's consumer has its
// leader on any of the three. Open-loop callers (messages in flight at every instant of each
// hand-off) must lose nothing, repeat nothing and keep each sender's order, in fast and durable mode. A fourth server whose certificate another CA signed cannot join the cluster.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { type Cluster, connectCluster, findNatsServer } from '@stitch/runtime';
import { natsFastPathEnabled } from '@stitch/runtime/internal';
import { skipWithoutHosts } from './fixtures/hosts/available.js';
import { NatsCluster, routeTlsBlock } from './fixtures/hosts/nats-cluster.js';
import { Hosts } from './fixtures/hosts/netns.js';
import { TestCa } from './fixtures/pki.js';
import { Sequencer } from './fixtures/runtime-actors.js';
import { type NodeProc, startNode, stopAll } from './fixtures/runtime-procs.js';
import { countApplied, startLoad, startOpenLoad } from './fixtures/sequencer-load.js';

const CLUSTER = 'migc';

describe('live migration on a 3-server cluster', { skip: skipWithoutHosts() }, () => {
  let hosts: Hosts;
  let nats: NatsCluster;
  let client: Cluster;
  let a: NodeProc;
  let b: NodeProc;

  let ca: TestCa;
  let rogueCa: TestCa;

  before(async () => {
    hosts = new Hosts(['h1', 'h2', 'h3', 'h4']);
    ca = TestCa.make();
    rogueCa = TestCa.make();
    const certs = new Map(
      ['h1', 'h2', 'h3'].map((h) => [h, ca.issue(h, 'both', [hosts.host(h).ip])] as const),
    );
    nats = await NatsCluster.start(hosts, {
      on: ['h1', 'h2', 'h3'],
      routeTls: (server) => ({ ...certs.get(server)!, ca: ca.caFile }),
    });
    // Processes run in the root namespace, each connected to one server only.
    client = await connectCluster({ nats: nats.url('h3'), name: CLUSTER, askTimeoutMs: 10_000 });
    [a, b] = await Promise.all([
      startNode({ nats: nats.url('h1'), cluster: CLUSTER, nodeId: 'migc-a' }),
      startNode({ nats: nats.url('h2'), cluster: CLUSTER, nodeId: 'migc-b' }),
    ]);
  });

  after(async () => {
    await client?.close();
    await stopAll();
    await nats?.close();
    await hosts?.close();
    ca?.remove();
    rogueCa?.remove();
  });

  for (const mode of ['fast', 'durable'] as const) {
    test(`${mode} mode: open-loop and closed-loop callers on a third server lose nothing and keep order`, async () => {
      const ref = await client.spawn(Sequencer, { id: `seq-${mode}`, node: a.nodeId });
      const loops = [
        startOpenLoad(ref, `${mode}-open`, mode === 'fast' ? 4 : 1, mode === 'fast' ? 1 : 5, mode),
        startLoad(ref, `${mode}-pipelined`, 16, mode),
      ];
      await delay(200);
      try {
        for (let i = 0; i < (mode === 'fast' ? 10 : 6); i++) {
          const report = await client.migrate(ref, i % 2 === 0 ? b.nodeId : a.nodeId);
          // A durable move reads the actor's consumer as it was (making it again takes 0.25–0.75 s
          // with 3 replicas on nats-server 2.9): the target takes over the pulls the source made.
          if (mode === 'durable' && natsFastPathEnabled) {
            assert.ok(report.pullsHandedOver >= 1, `pulls handed over: ${report.pullsHandedOver}`);
            assert.ok(report.pullsHeldMs > 0, 'the target says how long it has read them');
          }
          await delay(mode === 'fast' ? 40 : 150);
        }
        await delay(200);
      } finally {
        await Promise.all(loops.map((l) => l.stop()));
      }
      assert.deepEqual(
        loops.flatMap((l) => l.errors).slice(0, 5),
        [],
        'callers saw errors during the migrations',
      );
      for (const c of await countApplied(ref, loops)) {
        assert.ok(c.sent > 50, `${c.sender} kept sending (${c.sent})`);
        assert.equal(c.lost, 0, `${c.sender}: lost`);
        assert.equal(c.duplicated, 0, `${c.sender}: duplicated`);
        assert.equal(c.applied, c.sent, `${c.sender}: applied once each`);
        assert.equal(c.outOfOrder, 0, `${c.sender}: reordered`);
      }
    });
  }

  test('a server whose route certificate another CA signed cannot join', async () => {
    const rogue = rogueCa.issue('h4', 'both', [hosts.host('h4').ip]);
    const conf = join(nats.dir, 'h4.conf');
    const routes = ['h1', 'h2', 'h3'].map((h) => `"nats-route://${hosts.host(h).ip}:6222"`);
    writeFileSync(
      conf,
      [
        'server_name: "h4"',
        `listen: "${hosts.host('h4').ip}:4222"`,
        'cluster {',
        '  name: "stitch-chaos"',
        `  listen: "${hosts.host('h4').ip}:6222"`,
        `  routes: [${routes.join(', ')}]`,
        routeTlsBlock({ ...rogue, ca: rogueCa.caFile }),
        '}',
      ].join('\n'),
    );
    const p = hosts.spawn('h4', findNatsServer(), ['-c', conf]);
    const until = Date.now() + 15_000;
    while (!/TLS route handshake error/i.test(p.output().stderr) && Date.now() < until) await delay(50);
    assert.match(p.output().stderr, /TLS route handshake error/i, 'its routes fail the handshake');
    assert.doesNotMatch(p.output().stderr, /Route connection created/);
    // Nothing of the cluster is reachable through it: the actor's subject has no subscriber there.
    const outsider = await connect({ servers: `nats://${hosts.host('h4').ip}:4222` });
    try {
      const ref = await client.spawn(Sequencer, { id: 'seq-tls', node: a.nodeId });
      await ref.ask({ type: 'report' });
      await assert.rejects(
        outsider.request(`stitch.${CLUSTER}.actor.sequencer.seq-tls`, '', { timeout: 500 }),
      );
    } finally {
      await outsider.close();
    }
  });
});

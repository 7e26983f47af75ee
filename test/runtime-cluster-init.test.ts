// Set-up of a secured cluster: clients that may not create streams find the cluster ready only after
// `initCluster` (what `stitch cluster init` runs), which is idempotent; an open server needs no step.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { answersBucket } from '@stitch/agents';
import { KERNEL_STORE_MAX_BYTES, kernelStoreName } from '@stitch/compiler';
import {
  ClusterNotInitialized,
  connectCluster,
  defineActor,
  type EmbeddedNats,
  initCluster,
  startEmbeddedNats,
} from '@stitch/runtime';

const CLI = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));

const Echo = defineActor({
  type: 'echo',
  handlers: { echo: (_s: unknown, m: { text: string }) => m.text },
});

describe('cluster init on a secured server', () => {
  let nats: EmbeddedNats;
  const as = (user: string) => ({ nats: nats.url, user, pass: 'pw' });

  before(async () => {
    // `app` may use JetStream but not create streams (KV buckets are streams too).
    nats = await startEmbeddedNats({
      config: `authorization {
        users = [
          { user: admin, password: pw }
          { user: app, password: pw, permissions: { publish: { allow: [">"], deny: ["$JS.API.STREAM.CREATE.>"] } } }
        ]
      }`,
    });
  });

  after(async () => {
    await nats?.stop();
  });

  test('a client that may not create streams is told to run stitch cluster init', async () => {
    await assert.rejects(
      connectCluster({ name: 'sec', ...as('app') }),
      (e: unknown) =>
        e instanceof ClusterNotInitialized &&
        e.code === 'CLUSTER_NOT_INITIALIZED' &&
        e.message.includes('stitch cluster init --name sec'),
    );
  });

  test('after init (run twice: idempotent) the client connects, hosts and asks', async () => {
    await initCluster({ name: 'sec', ...as('admin') });
    await initCluster({ name: 'sec', ...as('admin') });
    const cluster = await connectCluster({ name: 'sec', ...as('app') });
    try {
      await cluster.startNode({ actors: [Echo] });
      assert.equal(await cluster.get(Echo, 'e1').ask({ type: 'echo', text: 'hi' }), 'hi');
    } finally {
      await cluster.close();
    }
  });

  test('stitch cluster init sets a cluster up from the command line', async () => {
    const run = spawnSync(
      process.execPath,
      [CLI, 'cluster', 'init', '--nats', nats.url, '--user', 'admin', '--password', 'pw', '--name', 'cli'],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /cluster "cli" is set up/);
    const cluster = await connectCluster({ name: 'cli', ...as('app') });
    await cluster.close();
    // The kernel store it made is bounded, and refuses a put past its bound rather than drop old kernels.
    const admin = await connectCluster({ name: 'cli', ...as('admin') });
    const nc = await connect({ servers: nats.url, user: 'admin', pass: 'pw' });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(`OBJ_${kernelStoreName('cli')}`);
      assert.deepEqual([info.config.max_bytes, info.config.discard], [KERNEL_STORE_MAX_BYTES, 'new']);
      // So is the record of what each request's memory.store stored: one key per request, so it expires too.
      const answers = (await jsm.streams.info(`KV_${answersBucket('cli').name}`)).config;
      assert.deepEqual([answers.max_bytes, answers.max_age], [256 * 1024 * 1024, 15 * 60 * 1e9]);
      const small = await admin.objectStore('stitch_cli_small', { create: true, maxBytes: 64 * 1024 });
      await small.putBlob({ name: 'fits' }, new Uint8Array(16 * 1024));
      await assert.rejects(small.putBlob({ name: 'past' }, new Uint8Array(128 * 1024)));
      assert.ok(await small.get('fits'));
    } finally {
      await nc.close();
      await admin.close();
    }
  });
});

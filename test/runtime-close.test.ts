// Closing without a server: a node process whose nats-server is gone still stops on SIGTERM, instead
// of waiting out every request of its graceful close.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { connectCluster, startEmbeddedNats } from '@stitch/runtime';
import { Sequencer } from './fixtures/runtime-actors.js';
import { startNode, stopAll } from './fixtures/runtime-procs.js';
import { waitUntil } from './fixtures/wait.js';

after(stopAll);

test('a node whose server was killed closes on SIGTERM once its connection has been down closeOfflineMs', async () => {
  const nats = await startEmbeddedNats();
  const client = await connectCluster({ nats: nats.url, name: 'offline', closeOfflineMs: 300 });
  try {
    const node = await startNode({ nats: nats.url, cluster: 'offline', closeOfflineMs: 300 });
    // An actor with a snapshot: its graceful stop writes it, a request that cannot succeed now.
    const ref = await client.spawn(Sequencer, { id: 'offline-1', node: node.nodeId });
    await ref.ask({ type: 'resize', bytes: 1024 });
    process.kill(nats.pid, 'SIGKILL');
    await waitUntil(() => {
      try {
        process.kill(nats.pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 10_000);
    node.child.kill('SIGTERM');
    // 0: the close ended (the fixture exits 1 if it has not 15 s after SIGTERM; without the bound a
    // close there waited out about 40 s of request timeouts).
    assert.equal(await node.exited, 0);
  } finally {
    await client.close();
    await nats.stop();
  }
});

// Listing a bucket's keys while another client keeps writing one of them (a coordinator's leader
// lease does so all the time): every listing ends, and lists exactly the stored keys.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { type Cluster, connectCluster, type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';

const BUCKET = 'stitch_keys_app';
const LISTINGS = 200;

describe('cluster.kvKeys', () => {
  let nats: EmbeddedNats;
  let cluster: Cluster;

  before(async () => {
    nats = await startEmbeddedNats();
    cluster = await connectCluster({ nats: nats.url, name: 'keys' });
  });

  after(async () => {
    await cluster?.close();
    await nats?.stop();
  });

  test('ends every time while a key is rewritten, and lists each stored key once', async () => {
    const kv = await cluster.kv(BUCKET, { create: true });
    for (const k of ['b', 'a', 'gone']) await kv.put(k, '{}');
    await kv.delete('gone');
    let writing = true;
    const writer = (async () => {
      while (writing) {
        await kv.put('_lease', String(Date.now()));
        await delay(2);
      }
    })();
    try {
      for (let i = 0; i < LISTINGS; i++) {
        const timer = new AbortController();
        const keys = await Promise.race([
          cluster.kvKeys(BUCKET).finally(() => timer.abort()),
          delay(5000, undefined, { signal: timer.signal }).then(() =>
            assert.fail(`listing ${i} did not end within 5 s`),
          ),
        ]);
        // A deleted key keeps its delete marker until purged; callers read the entry to tell.
        assert.deepEqual([...keys].sort(), ['_lease', 'a', 'b', 'gone']);
      }
    } finally {
      writing = false;
      await writer;
    }
  });

  test('a bucket that does not exist is an error, not an empty list', async () => {
    await assert.rejects(cluster.kvKeys('stitch_keys_missing'));
  });
});

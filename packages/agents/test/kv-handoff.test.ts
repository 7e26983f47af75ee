// The KV-cache hand-off through the cluster's bucket on a real nats-server: a cache larger than one
// message goes in parts and comes back equal, once; references that are not this deployment's, or
// that lie about the size, read nothing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';
import { fetchKv, storeKv } from '../src/kv-handoff.js';
import { closeMemoryConnections } from '../src/memory.js';

let nats: EmbeddedNats;
const where = () => ({ deployment: 'd1', natsUrl: nats.url, cluster: 'kvh' });

before(async () => {
  nats = await startEmbeddedNats();
});
after(async () => {
  await closeMemoryConnections();
  await nats?.stop();
});

/** A cache of `floats` per side, values that show where each came from. */
function cache(position: number, floats: number) {
  return {
    position,
    k: Float32Array.from({ length: floats }, (_, i) => i * 0.5),
    v: Float32Array.from({ length: floats }, (_, i) => -i),
  };
}

test('a cache of several parts round-trips once', async () => {
  const kv = cache(160, 320_000); // 2.56 MB: three parts
  const ref = await storeKv(where(), 'req-1', kv);
  assert.ok(ref);
  assert.equal(ref.bytes, 12 + 8 * 320_000);
  assert.deepEqual(await fetchKv(where(), ref), kv);
  assert.equal(await fetchKv(where(), ref), undefined, 'read once, then purged');
});

test('references that are not this deployment’s, or lie about their size, read nothing', async () => {
  const ref = await storeKv(where(), 'req-2', cache(4, 1000));
  assert.ok(ref);
  const other = { ...where(), deployment: 'd2' };
  assert.equal(await fetchKv(other, ref), undefined);
  assert.equal(await fetchKv(where(), { ...ref, bytes: ref.bytes + 4 }), undefined);
  assert.equal(await fetchKv(where(), { ...ref, key: 'd1.kvcache.req-2.0' }), undefined);
  assert.equal(await fetchKv(where(), { key: 'd1.kvcache.nothing', bytes: 100 }), undefined);
  assert.equal(await fetchKv(where(), 'not a reference'), undefined);
  assert.equal(await storeKv(where(), 'bad id!', cache(1, 8)), undefined);
});

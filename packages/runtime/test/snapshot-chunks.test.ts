// Large snapshots in the state record against a real nats-server: stored in chunks beyond
// max_payload, only changed chunks written per commit, replaced chunks purged without markers, a
// stale writer's chunks never named by the record, and what a crashed write left swept at the next load.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  chunkBytesFor,
  INLINE_SNAPSHOT_BYTES,
  MAX_CHUNK_BYTES,
  SnapshotChunks,
} from '../src/actor/snapshot-chunks.js';
import { StateRecord } from '../src/actor/state.js';
import { bucketKeys } from '../src/cluster/bucket-keys.js';
import { type EmbeddedNats, startEmbeddedNats } from '../src/cluster/embedded-nats.js';
import { encode } from '../src/wire/codec.js';
import { decodeSnapshot, encodeImage, type ImageBytes } from '../src/wire/image.js';
import { countingGets } from './fixtures/counting-kv.js';

const BUCKET = 'chunks_test';
/** A snapshot's bytes, however the record holds it (an encoding, or chunks). */
const bytes = (s: ImageBytes | undefined) => s && new Uint8Array(s.subarray(0, s.length));

describe('snapshot chunks', () => {
  let nats: EmbeddedNats;
  let nc: NatsConnection;
  let kv: KV;
  let jsm: JetStreamManager;

  before(async () => {
    nats = await startEmbeddedNats();
    nc = await connect({ servers: nats.url });
    kv = await new Kvm(nc).create(BUCKET, { history: 1 });
    jsm = await jetstreamManager(nc);
  });

  after(async () => {
    await nc?.close();
    await nats?.stop();
  });

  const errors: unknown[] = [];
  /** `key`'s record, reading and writing through `store` (the bucket, or a stand-in that counts). */
  const record = (key: string, store: KV = kv) =>
    new StateRecord(
      store,
      key,
      100,
      undefined,
      undefined,
      new SnapshotChunks(store, jsm, BUCKET, key, (e) => errors.push(e), 0),
    );
  /** The chunk keys stored under `key`, once purges in flight have landed. */
  const chunkKeys = async (key: string, expect: number) => {
    for (let i = 0; i < 50; i++) {
      const keys = await bucketKeys(jsm, BUCKET, `${key}.c`);
      if (keys.length === expect) return keys;
      await new Promise((r) => setTimeout(r, 20));
    }
    return bucketKeys(jsm, BUCKET, `${key}.c`);
  };
  /** The stream's messages on `key`'s chunk subjects: purged chunks leave none (no delete markers). */
  const chunkMessages = async (key: string) => {
    const info = await jsm.streams.info(`KV_${BUCKET}`, { subjects_filter: `$KV.${BUCKET}.${key}.c.>` });
    return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  };

  test('a 3 MiB snapshot round-trips; a commit that changes one chunk writes one; replaced ones are purged', async () => {
    const key = 't.big';
    const a = record(key);
    const image = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 7) & 0xff);
    a.snapshot = image;
    await a.save();
    const size = chunkBytesFor(image.length);
    const chunks = Math.ceil(image.length / size);
    assert.equal((await chunkKeys(key, chunks)).length, chunks);

    const b = record(key);
    await b.load();
    assert.deepEqual(bytes(b.snapshot), image);

    // One byte in the fifth chunk: one new chunk, the old one purged, nothing else written.
    const next = image.slice();
    next[4 * size + 3] = 0xff - next[4 * size + 3]!;
    b.snapshot = next;
    await b.save();
    assert.equal((await chunkKeys(key, chunks)).length, chunks);
    assert.equal(await chunkMessages(key), chunks);
    const c = record(key);
    await c.load();
    assert.deepEqual(bytes(c.snapshot), next);

    // Shrunk below a chunk: inline again, every chunk purged.
    c.snapshot = new Uint8Array([1, 2, 3]);
    await c.save();
    assert.equal((await chunkKeys(key, 0)).length, 0);
    const d = record(key);
    await d.load();
    assert.deepEqual(bytes(d.snapshot), new Uint8Array([1, 2, 3]));
    assert.deepEqual(errors, []);
  });

  test("turns' snapshots encoded while a commit is in flight leave the one it took as it was, chunked or whole", async () => {
    for (const [key, size] of [
      ['t.reuse-chunked', 600 * 1024],
      ['t.reuse-inline', 100 * 1024],
    ] as const) {
      const a = record(key);
      const state = (fill: number) => ({
        blob: new Uint8Array(size).fill(fill),
        note: `turn ${fill} `.repeat(20),
      });
      // Snapshots after every turn: their buffers are used again for the snapshot after next.
      a.encodeSnapshot(state(1));
      a.encodeSnapshot(state(2));
      const saving = a.save();
      // The write has taken turn 2's snapshot (at once: nothing to capture) and is sending it.
      await new Promise((r) => setImmediate(r));
      for (let turn = 3; turn < 8; turn++) a.encodeSnapshot(state(turn));
      await saving;
      const b = record(key);
      await b.load();
      assert.deepEqual(decodeSnapshot(bytes(b.snapshot)!), state(2), key);
    }
    assert.deepEqual(errors, []);
  });

  test('a snapshot read from live arrays is fixed when the write takes it, and the next write stores only what changed', async () => {
    const key = 't.live';
    const a = record(key);
    const blob = new Uint8Array(2 * 1024 * 1024 + 11).fill(3);
    // As an actor that snapshots on demand: the image reads `blob` where it is; the state changes
    // right after the write took it.
    a.capture = (done) => {
      a.snapshot = encodeImage({ blob });
      done();
      blob.fill(9);
    };
    await a.save();
    const size = chunkBytesFor(a.snapshot!.length);
    const chunks = Math.ceil(a.snapshot!.length / size);
    assert.equal((await chunkKeys(key, chunks)).length, chunks);
    const b = record(key);
    await b.load();
    const stored = decodeSnapshot(bytes(b.snapshot)!) as { blob: Uint8Array };
    assert.ok(
      stored.blob.every((x) => x === 3),
      'the write holds the state as it was taken',
    );
    const taken = decodeSnapshot(a.snapshot!.subarray(0, a.snapshot!.length)) as { blob: Uint8Array };
    assert.ok(
      taken.blob.every((x) => x === 3),
      'and so does the snapshot a restart would restore',
    );

    // Deep in the blob: one chunk changes. The state changed everywhere to 9 after the first take,
    // so set it back but one byte.
    blob.fill(3);
    blob[size * 5] = 4;
    a.capture = (done) => {
      a.snapshot = encodeImage({ blob });
      done();
    };
    const before = new Set(await chunkKeys(key, chunks));
    await a.save();
    const after = await chunkKeys(key, chunks);
    assert.equal(after.filter((k) => !before.has(k)).length, 1, 'one chunk written');
    assert.equal(await chunkMessages(key), chunks, 'the one it replaced purged');
    const c = record(key);
    await c.load();
    assert.equal((decodeSnapshot(bytes(c.snapshot)!) as { blob: Uint8Array }).blob[size * 5], 4);
    assert.deepEqual(errors, []);
  });

  test('a stale writer loses its compare-and-set and its chunks are purged; the record keeps its own', async () => {
    const key = 't.stale';
    const owner = record(key);
    const length = 2 * INLINE_SNAPSHOT_BYTES;
    const chunks = Math.ceil(length / chunkBytesFor(length));
    owner.snapshot = new Uint8Array(length).fill(1);
    await owner.save();
    const stale = record(key);
    await stale.load();
    owner.snapshot = new Uint8Array(length).fill(2);
    await owner.save();
    // The stale writer built on the older revision: its chunks are new names, its record is refused.
    stale.snapshot = new Uint8Array(length).fill(3);
    await assert.rejects(stale.save());
    assert.equal(stale.superseded, true);
    assert.equal((await chunkKeys(key, chunks)).length, chunks);
    const fresh = record(key);
    await fresh.load();
    assert.deepEqual(bytes(fresh.snapshot), new Uint8Array(length).fill(2));
  });

  test('chunks a crashed write left are swept by a load once the record has moved past them', async () => {
    const key = 't.crash';
    const a = record(key);
    const length = INLINE_SNAPSHOT_BYTES + 1;
    const chunks = Math.ceil(length / chunkBytesFor(length));
    a.snapshot = new Uint8Array(length).fill(4);
    await a.save();
    // A writer that died between its chunks and its record (built on revision 1, named c.1.<w>.<i>).
    await kv.put(`${key}.c.1.deadwriter.0`, new Uint8Array(10));
    await kv.put(`${key}.c.1.deadwriter.1`, new Uint8Array(10));
    a.snapshot = new Uint8Array(length).fill(5);
    await a.save();
    // Built on the current revision: a live writer may still commit it, so it stays.
    const revision = (await kv.get(key))!.revision;
    await kv.put(`${key}.c.${revision}.inflight.0`, new Uint8Array(10));
    const b = record(key);
    await b.load();
    const keys = await chunkKeys(key, chunks + 1);
    assert.ok(!keys.some((k) => k.includes('deadwriter')), keys.join(' '));
    assert.ok(
      keys.some((k) => k.includes('inflight')),
      keys.join(' '),
    );
    assert.deepEqual(bytes(b.snapshot), new Uint8Array(length).fill(5));
  });

  test("a record in another build's chunk size is read, and the next write cuts the state in its own", async () => {
    const key = 't.legacy';
    // As a build before chunk sizes varied wrote it: chunks of MAX_CHUNK_BYTES, and no size stated.
    const image = new Uint8Array(2 * MAX_CHUNK_BYTES + 100).map((_, i) => (i * 13) & 0xff);
    const names = [0, 1, 2].map((i) => `c.0.oldwriter.${i}`);
    for (const [i, name] of names.entries())
      await kv.put(`${key}.${name}`, image.subarray(i * MAX_CHUNK_BYTES, (i + 1) * MAX_CHUNK_BYTES));
    await kv.create(
      key,
      encode({ v: 2, s: null, c: names, z: image.length, x: 1, n: 0, g: 0, h: 0, m: 5, t: [] }),
    );
    const a = record(key);
    await a.load();
    assert.deepEqual(bytes(a.snapshot), image);

    const next = image.slice();
    next[7] = 0xff - next[7]!;
    a.snapshot = next;
    await a.save();
    const chunks = Math.ceil(image.length / chunkBytesFor(image.length));
    assert.ok(chunks > names.length, 'the write cuts smaller chunks');
    const keys = await chunkKeys(key, chunks);
    assert.equal(keys.length, chunks, 'every chunk of the old size purged');
    assert.ok(!keys.some((k) => k.includes('oldwriter')), keys.join(' '));
    const b = record(key);
    await b.load();
    assert.deepEqual(bytes(b.snapshot), next);
    assert.deepEqual(errors, []);
  });

  test('a state that grows past its chunk size is cut anew; one that changes a little keeps its chunks', async () => {
    const key = 't.grow';
    const a = record(key);
    const small = new Uint8Array(1024 * 1024).fill(1);
    a.snapshot = small;
    await a.save();
    const smallChunks = Math.ceil(small.length / chunkBytesFor(small.length));
    assert.equal((await chunkKeys(key, smallChunks)).length, smallChunks);

    // A few bytes more: the same chunk size, only the new chunk written.
    const before = new Set(await chunkKeys(key, smallChunks));
    const longer = new Uint8Array(small.length + 5).fill(1);
    a.snapshot = longer;
    await a.save();
    const after = await chunkKeys(key, smallChunks + 1);
    assert.equal(after.filter((k) => !before.has(k)).length, 1);

    const large = new Uint8Array(16 * 1024 * 1024 + 3).map((_, i) => i & 0xff);
    assert.ok(chunkBytesFor(large.length, chunkBytesFor(small.length)) > chunkBytesFor(small.length));
    a.snapshot = large;
    await a.save();
    const largeChunks = Math.ceil(large.length / chunkBytesFor(large.length));
    assert.equal((await chunkKeys(key, largeChunks)).length, largeChunks);
    const b = record(key);
    await b.load();
    assert.deepEqual(bytes(b.snapshot), large);
    assert.deepEqual(errors, []);
  });

  test('a record its writer sends with the chunks written since the reader read it loads without reading any', async () => {
    const key = 't.shipped';
    const writer = record(key);
    const image = new Uint8Array(1024 * 1024 + 9).map((_, i) => (i * 5) & 0xff);
    writer.snapshot = image;
    await writer.save();
    const since = writer.mark();
    const counted = countingGets(kv);
    const reader = record(key, counted.kv);
    await reader.load();
    // Two writes since: bytes in two chunks, then in one of them again.
    const next = image.slice();
    next[10] = 0xff - next[10]!;
    next[600 * 1024] = 0xff - next[600 * 1024]!;
    writer.snapshot = next.slice();
    await writer.save();
    next[11] = 0xff - next[11]!;
    writer.snapshot = next;
    await writer.save();
    const shipment = writer.shipment(since, 1 << 20);
    assert.equal(shipment?.chunks?.length, 2, 'the chunks the record names that were written since');
    counted.reset();
    await reader.load(writer.revision, shipment);
    assert.equal(counted.reads, 0);
    assert.deepEqual(bytes(reader.snapshot), next);
    // Without room for the chunks, the reader reads them.
    const bare = writer.shipment(since, shipment!.record.length + 100);
    assert.equal(bare?.chunks, undefined);
    const other = record(key);
    await other.load(writer.revision, bare);
    assert.deepEqual(bytes(other.snapshot), next);
    assert.deepEqual(errors, []);
  });

  test('a record that states a chunk size this build cannot read fails its load with the size', async () => {
    const key = 't.badsize';
    await kv.create(
      key,
      encode({ v: 2, s: null, c: ['c.0.w.0'], z: 10, q: 3000, n: 0, g: 0, h: 0, m: 5, t: [] }),
    );
    await assert.rejects(record(key).load(), /chunks of 3000 bytes/);
  });
});

test('chunk sizes: about 256 chunks, from 16 KiB to 256 KiB, kept while within a factor of two', () => {
  const KiB = 1024;
  const MiB = 1024 * KiB;
  assert.equal(chunkBytesFor(300 * KiB), 16 * KiB);
  assert.equal(chunkBytesFor(MiB), 16 * KiB);
  assert.equal(chunkBytesFor(16 * MiB), 64 * KiB);
  assert.equal(chunkBytesFor(16 * MiB + 1), 128 * KiB);
  assert.equal(chunkBytesFor(100 * MiB), MAX_CHUNK_BYTES);
  assert.equal(chunkBytesFor(1024 * MiB), MAX_CHUNK_BYTES);
  // A state that wavers around a boundary keeps the size it has.
  assert.equal(chunkBytesFor(16 * MiB + 1, 64 * KiB), 64 * KiB);
  assert.equal(chunkBytesFor(16 * MiB, 128 * KiB), 128 * KiB);
  // Far from it, or a size this build would not cut, is left.
  assert.equal(chunkBytesFor(100 * MiB, 16 * KiB), MAX_CHUNK_BYTES);
  assert.equal(chunkBytesFor(MiB, 8 * KiB), 16 * KiB);
});

test("the wait before replaced chunks are purged does not keep the record's chunks alive", () => {
  const out = execFileSync(
    process.execPath,
    [
      '--expose-gc',
      '--import',
      '@stitch/typescript-loader',
      fileURLToPath(new URL('./fixtures/chunks-timer-release.ts', import.meta.url)),
    ],
    { encoding: 'utf8' },
  );
  assert.equal(out.trim(), 'released');
});

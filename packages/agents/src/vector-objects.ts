import { createReadStream, createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebStream } from 'node:stream/web';
import { Objm } from '@nats-io/obj';
import { connect } from '@nats-io/transport-node';
import { AgentsError, AgentsErrorCode } from './errors.js';

export function vectorBucketName(cluster: string): string {
  return `stitch_${cluster}_vectors`;
}

type Objects = Awaited<ReturnType<Objm['create']>>;

/** Runs `fn` on the cluster's vector object store (created on first use) over a connection of its own. */
async function withObjects<T>(natsUrl: string, cluster: string, fn: (os: Objects) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: natsUrl, name: `stitch-vector-${process.pid}` });
  try {
    return await fn(await new Objm(nc).create(vectorBucketName(cluster)));
  } finally {
    await nc.close();
  }
}

/** Stores an index file's bytes as object `name`; returns its digest so a restore can tell it got the same. */
export function putIndexObject(
  natsUrl: string,
  cluster: string,
  name: string,
  bytes: Uint8Array,
): Promise<string> {
  return withObjects(natsUrl, cluster, async (os) => (await os.putBlob({ name }, bytes)).digest);
}

export function getIndexObject(
  natsUrl: string,
  cluster: string,
  name: string,
): Promise<{ bytes: Uint8Array | null; digest: string | undefined }> {
  return withObjects(natsUrl, cluster, async (os) => {
    const info = await os.info(name);
    return { bytes: info ? await os.getBlob(name) : null, digest: info?.digest };
  });
}

/**
 * Streams the file at `path` into object `name`, chunk by chunk (no copy of the whole file in
 * memory, so not `readFile`'s 2 GiB bound); returns its digest.
 */
export function putIndexFile(natsUrl: string, cluster: string, name: string, path: string): Promise<string> {
  return withObjects(natsUrl, cluster, async (os) => {
    const rs = Readable.toWeb(createReadStream(path)) as unknown as ReadableStream<Uint8Array>;
    return (await os.put({ name }, rs)).digest;
  });
}

/**
 * Streams object `name` into the file at `path` when its digest is `digest` (the object store checks
 * the bytes against it as they come); says so when the object is missing or another version.
 */
export function getIndexFile(
  natsUrl: string,
  cluster: string,
  name: string,
  digest: string,
  path: string,
): Promise<'ok' | 'missing' | 'changed'> {
  return withObjects(natsUrl, cluster, async (os) => {
    const got = await os.get(name);
    if (!got) return 'missing';
    if (got.info.digest !== digest) {
      await got.data.cancel().catch(() => undefined);
      return 'changed';
    }
    await pipeline(Readable.fromWeb(got.data as unknown as WebStream<Uint8Array>), createWriteStream(path));
    const error = await got.error;
    if (error) throw error;
    return 'ok';
  });
}

/** Objects `names`, one after another over one connection: `each` gets its bytes (null: missing) and digest. */
export function readIndexObjects(
  natsUrl: string,
  cluster: string,
  names: readonly string[],
  each: (name: string, bytes: Uint8Array | null, digest: string | undefined) => Promise<void>,
): Promise<void> {
  return withObjects(natsUrl, cluster, async (os) => {
    for (const name of names) {
      const info = await os.info(name);
      await each(name, info ? await os.getBlob(name) : null, info?.digest);
    }
  });
}

/** Deletes objects `names` (those already gone are skipped). */
export function deleteIndexObjects(
  natsUrl: string,
  cluster: string,
  names: readonly string[],
): Promise<void> {
  return withObjects(natsUrl, cluster, async (os) => {
    for (const name of names) await os.delete(name).catch(() => undefined);
  });
}

/**
 * Inserts as an object (a segment of the operator's journal): u32 count, u32 dim, count f64 keys,
 * count × dim f32 vectors, in the host's byte order (as usearch's own file).
 */
export function encodeInserts(
  dim: number,
  parts: readonly { keys: readonly number[]; vectors: ArrayLike<number> }[],
): Uint8Array {
  const count = parts.reduce((n, p) => n + p.keys.length, 0);
  const buf = new ArrayBuffer(8 + 8 * count + 4 * count * dim);
  new Uint32Array(buf, 0, 2).set([count, dim]);
  const keys = new Float64Array(buf, 8, count);
  const vectors = new Float32Array(buf, 8 + 8 * count, count * dim);
  let at = 0;
  for (const p of parts) {
    keys.set(p.keys, at);
    vectors.set(p.vectors, at * dim);
    at += p.keys.length;
  }
  return new Uint8Array(buf);
}

export function decodeInserts(bytes: Uint8Array, dim: number): { keys: number[]; vectors: Float32Array } {
  // A copy: the typed views below need the buffer aligned.
  const buf = bytes.slice().buffer;
  const [count = 0, d] = bytes.length >= 8 ? new Uint32Array(buf, 0, 2) : [];
  if (d !== dim || bytes.length !== 8 + 8 * count + 4 * count * dim)
    throw new AgentsError(
      AgentsErrorCode.VectorInvalid,
      `an inserts object of ${bytes.length} bytes is not ${dim}-dimensional inserts`,
    );
  return {
    keys: Array.from(new Float64Array(buf, 8, count)),
    vectors: new Float32Array(buf, 8 + 8 * count, count * dim),
  };
}

import { Objm } from '@nats-io/obj';
import { connect } from '@nats-io/transport-node';

export function vectorBucketName(cluster: string): string {
  return `stitch_${cluster}_vectors`;
}

/** Runs `fn` on the cluster's vector object store (created on first use) over a connection of its own. */
async function withObjects<T>(
  natsUrl: string,
  cluster: string,
  fn: (os: Awaited<ReturnType<Objm['create']>>) => Promise<T>,
): Promise<T> {
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

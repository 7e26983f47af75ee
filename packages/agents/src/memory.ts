import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';

/** An idle connection is closed after this long, so a node process can exit once its actors stop. */
const IDLE_CLOSE_MS = 1000;

interface Shared {
  nc: Promise<NatsConnection>;
  buckets: Map<string, Promise<KV>>;
  active: number;
  idle: NodeJS.Timeout | undefined;
}

/** One connection per server URL in this process, shared by every memory actor it hosts. */
const shared = new Map<string, Shared>();

/** Per cluster: the memory bucket through a connection this process already holds (its node's). */
const hosted = new Map<string, () => Promise<KV>>();

/**
 * Memory ops of `cluster` in this process use `open` (e.g. `() => cluster.kv(memoryBucketName(name),
 * { create: true })` on the node's own connection, with its credentials) instead of dialling the URL
 * their configuration names. `stitch node` sets this; without it they connect to that URL anonymously.
 */
export function useMemoryBucket(cluster: string, open: (() => Promise<KV>) | undefined): void {
  if (!open) {
    hosted.delete(cluster);
    return;
  }
  let bucket: Promise<KV> | undefined;
  hosted.set(cluster, () => {
    bucket ??= open().catch((err: unknown) => {
      bucket = undefined;
      throw err;
    });
    return bucket;
  });
}

export function memoryBucketName(cluster: string): string {
  return `stitch_${cluster}_memory`;
}

/**
 * Runs `fn` with the agent memory of a cluster: a JetStream KV bucket, opened (or created) on first
 * use. The connection stays open while memory ops run and closes when idle.
 */
export async function withMemory<T>(
  natsUrl: string,
  cluster: string,
  fn: (kv: KV) => Promise<T>,
): Promise<T> {
  const own = hosted.get(cluster);
  if (own) return fn(await own());
  let s = shared.get(natsUrl);
  if (!s) {
    const nc = connect({ servers: natsUrl, name: `stitch-memory-${process.pid}`, maxReconnectAttempts: -1 });
    s = { nc, buckets: new Map(), active: 0, idle: undefined };
    shared.set(natsUrl, s);
    nc.catch(() => shared.delete(natsUrl));
  }
  clearTimeout(s.idle);
  s.active++;
  try {
    let b = s.buckets.get(cluster);
    if (!b) {
      b = s.nc.then((c) => new Kvm(c).create(memoryBucketName(cluster), { history: 1 }));
      s.buckets.set(cluster, b);
      b.catch(() => s.buckets.delete(cluster));
    }
    return await fn(await b);
  } finally {
    s.active--;
    if (s.active === 0) s.idle = setTimeout(() => void closeOne(natsUrl, s), IDLE_CLOSE_MS);
  }
}

async function closeOne(url: string, s: Shared): Promise<void> {
  if (s.active > 0 || shared.get(url) !== s) return;
  shared.delete(url);
  await (await s.nc).close().catch(() => undefined);
}

/** Closes every shared connection now (tests; a node process relies on the idle close). */
export async function closeMemoryConnections(): Promise<void> {
  const all = [...shared.values()];
  shared.clear();
  await Promise.all(
    all.map(async (s) => {
      clearTimeout(s.idle);
      await (await s.nc).close().catch(() => undefined);
    }),
  );
}

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

/** A bucket the ops use, and how it is made when missing. */
export interface OpBucket {
  name: string;
  /** Entries expire after this long (a bucket-wide TTL). */
  ttlMs?: number;
  /** Past this a put is refused until entries expire (a KV bucket discards nothing old). */
  maxBytes?: number;
}

/** Per bucket name: the bucket through a connection this process already holds (its node's). */
const hosted = new Map<string, () => Promise<KV>>();
const opensOf = new Map<string, (bucket: OpBucket) => Promise<KV>>();

/**
 * The ops of `cluster` in this process open their buckets (memory, KV caches) with `open` (e.g. on
 * the node's own connection, with its credentials) instead of dialling the URL their configuration
 * names. `stitch node` sets this; without it they connect to that URL anonymously.
 */
export function useNodeBuckets(cluster: string, open: ((bucket: OpBucket) => Promise<KV>) | undefined): void {
  for (const name of [...hosted.keys()]) if (name.startsWith(`stitch_${cluster}_`)) hosted.delete(name);
  if (open) opensOf.set(cluster, open);
  else opensOf.delete(cluster);
}

function hostedBucket(cluster: string, bucket: OpBucket): (() => Promise<KV>) | undefined {
  const open = opensOf.get(cluster);
  if (!open) return undefined;
  let get = hosted.get(bucket.name);
  if (!get) {
    let kv: Promise<KV> | undefined;
    get = () => {
      kv ??= open(bucket).catch((err: unknown) => {
        kv = undefined;
        throw err;
      });
      return kv;
    };
    hosted.set(bucket.name, get);
  }
  return get;
}

export function memoryBucketName(cluster: string): string {
  return `stitch_${cluster}_memory`;
}

/** The bucket prefill hands KV caches to decode through: entries live 2 min at most, 256 MiB in all. */
export function kvCacheBucket(cluster: string): OpBucket {
  return { name: `stitch_${cluster}_kvcache`, ttlMs: 120_000, maxBytes: 256 * 1024 * 1024 };
}

/**
 * The bucket `memory.store` records each request's stored value in (`<deployment>.<rid>`), so that
 * a caller can check that every request stored exactly once (the demo does): a record of recent
 * requests, not memory, so it is bounded as one: entries live 15 min, 256 MiB in all.
 */
export function answersBucket(cluster: string): OpBucket {
  return { name: `stitch_${cluster}_answers`, ttlMs: 15 * 60_000, maxBytes: 256 * 1024 * 1024 };
}

/**
 * Runs `fn` with the agent memory of a cluster: a JetStream KV bucket, opened (or created) on first
 * use. The connection stays open while memory ops run and closes when idle.
 */
export function withMemory<T>(natsUrl: string, cluster: string, fn: (kv: KV) => Promise<T>): Promise<T> {
  return withBucket(natsUrl, cluster, { name: memoryBucketName(cluster) }, fn);
}

/** Runs `fn` with the cluster's answers bucket (see answersBucket), as withMemory does with memory. */
export function withAnswers<T>(natsUrl: string, cluster: string, fn: (kv: KV) => Promise<T>): Promise<T> {
  return withBucket(natsUrl, cluster, answersBucket(cluster), fn);
}

/** Runs `fn` with the cluster's KV-cache bucket (see kvCacheBucket), as withMemory does with memory. */
export function withKvCache<T>(natsUrl: string, cluster: string, fn: (kv: KV) => Promise<T>): Promise<T> {
  return withBucket(natsUrl, cluster, kvCacheBucket(cluster), fn);
}

async function withBucket<T>(
  natsUrl: string,
  cluster: string,
  bucket: OpBucket,
  fn: (kv: KV) => Promise<T>,
): Promise<T> {
  const own = hostedBucket(cluster, bucket);
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
    let b = s.buckets.get(bucket.name);
    if (!b) {
      b = s.nc.then((c) =>
        new Kvm(c).create(bucket.name, {
          history: 1,
          ...(bucket.ttlMs !== undefined ? { ttl: bucket.ttlMs } : {}),
          ...(bucket.maxBytes !== undefined ? { max_bytes: bucket.maxBytes } : {}),
        }),
      );
      s.buckets.set(bucket.name, b);
      b.catch(() => s.buckets.delete(bucket.name));
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

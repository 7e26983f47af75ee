import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';

/** One connection per server URL in this process, shared by every memory actor it hosts. */
const connections = new Map<string, Promise<NatsConnection>>();
const buckets = new Map<string, Promise<KV>>();

export function memoryBucketName(cluster: string): string {
  return `stitch_${cluster}_memory`;
}

/** The agent memory of a cluster: a JetStream KV bucket, opened (or created) on first use. */
export function memoryBucket(natsUrl: string, cluster: string): Promise<KV> {
  const key = `${natsUrl} ${cluster}`;
  let b = buckets.get(key);
  if (!b) {
    let nc = connections.get(natsUrl);
    if (!nc) {
      nc = connect({ servers: natsUrl, name: `stitch-memory-${process.pid}`, maxReconnectAttempts: -1 });
      connections.set(natsUrl, nc);
    }
    b = nc.then((c) => new Kvm(c).create(memoryBucketName(cluster), { history: 1 }));
    buckets.set(key, b);
    b.catch(() => buckets.delete(key));
  }
  return b;
}

/** Closes the shared connections (a node process calls this nowhere: they die with it; tests do). */
export async function closeMemoryConnections(): Promise<void> {
  const all = [...connections.values()];
  connections.clear();
  buckets.clear();
  await Promise.all(all.map(async (c) => (await c).close().catch(() => undefined)));
}

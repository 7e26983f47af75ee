import { DiscardPolicy, type JetStreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { type NatsConnection, nanos } from '@nats-io/transport-node';
import { ClusterNotInitialized } from '../errors.js';
import type { Names } from './names.js';

/** The buckets of one cluster, opened. */
export interface ClusterBuckets {
  nodesKv: KV;
  directoryKv: KV;
  stateKv: KV;
}

/** Bounds of the durable mailbox stream (ConnectOptions.durableStream, resolved). */
export interface StreamLimits {
  maxBytes: number;
  maxAgeMs: number;
}

/**
 * Creates the cluster's stream and buckets where missing and opens them: what `stitch cluster init`
 * runs once on a secured server. Idempotent: existing ones are left as they are.
 */
export async function initCluster(
  nc: NatsConnection,
  jsm: JetStreamManager,
  names: Names,
  deadAfterMs: number,
  stream: StreamLimits,
): Promise<ClusterBuckets> {
  await ensureStream(jsm, names, stream);
  const kvm = new Kvm(nc);
  const [nodesKv, directoryKv, stateKv] = await Promise.all([
    createKv(kvm, names.nodesBucket, { ttl: deadAfterMs, history: 1 }),
    createKv(kvm, names.directoryBucket, { history: 1 }),
    createKv(kvm, names.stateBucket, { history: 1 }),
  ]);
  return { nodesKv, directoryKv, stateKv };
}

/** Opens a cluster set up by `initCluster`; says which part is missing (and how to make it) when one is. */
export async function openCluster(
  nc: NatsConnection,
  jsm: JetStreamManager,
  names: Names,
  cluster: string,
): Promise<ClusterBuckets> {
  const streams = [
    names.stream,
    `KV_${names.nodesBucket}`,
    `KV_${names.directoryBucket}`,
    `KV_${names.stateBucket}`,
  ];
  for (const stream of streams) {
    await jsm.streams.info(stream).catch(() => {
      throw new ClusterNotInitialized(cluster, `stream ${stream}`);
    });
  }
  const kvm = new Kvm(nc);
  const [nodesKv, directoryKv, stateKv] = await Promise.all([
    kvm.open(names.nodesBucket),
    kvm.open(names.directoryBucket),
    kvm.open(names.stateBucket),
  ]);
  return { nodesKv, directoryKv, stateKv };
}

async function ensureStream(jsm: JetStreamManager, n: Names, limits: StreamLimits): Promise<void> {
  const config = {
    name: n.stream,
    subjects: [n.durableAll],
    // Work-queue retention drops a message once its actor acks it; each actor's consumer filters its own subject.
    retention: RetentionPolicy.Workqueue,
    // The server refuses a duplicate window longer than max_age.
    duplicate_window: nanos(Math.min(120_000, limits.maxAgeMs)),
    // Unacknowledged messages (an actor that never comes back, a flood of durable tells) are bounded:
    // past max_bytes new publishes are refused (the sender gets the error), past max_age they expire.
    max_bytes: limits.maxBytes,
    max_age: nanos(limits.maxAgeMs),
    discard: DiscardPolicy.New,
  };
  try {
    await jsm.streams.info(n.stream);
  } catch {
    await jsm.streams.add(config).catch(async (err) => {
      // Another process created it first.
      await jsm.streams.info(n.stream).catch(() => {
        throw err;
      });
    });
  }
}

async function createKv(kvm: Kvm, bucket: string, opts: { ttl?: number; history: number }): Promise<KV> {
  try {
    return await kvm.create(bucket, opts);
  } catch {
    return kvm.open(bucket);
  }
}

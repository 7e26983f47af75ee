import { setTimeout as delay } from 'node:timers/promises';
import { DiscardPolicy, type JetStreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { type NatsConnection, nanos, type ServerInfo } from '@nats-io/transport-node';
import { ClusterNotInitialized } from '../errors.js';
import type { LogFn } from '../log.js';
import type { Names } from './names.js';

/** The buckets of one cluster, opened. */
export interface ClusterBuckets {
  nodesKv: KV;
  directoryKv: KV;
  stateKv: KV;
  /** Undefined on a secured cluster set up before reminders existed (`stitch cluster init` again adds it). */
  remindersKv: KV | undefined;
}

/** The reminders bucket's bound: past it, setting a reminder fails (the caller gets the server's error). */
export const REMINDERS_MAX_BYTES = 256 * 1024 * 1024;

/** Most replicas a default asks for: a 3-server quorum survives one lost server. */
const DEFAULT_MAX_REPLICAS = 3;

/**
 * Replicas of the stream and buckets when none were asked for: one per server of the server's cluster
 * (the client URLs it advertises), at most 3; 1 on a server that is in no cluster.
 */
export function defaultReplicas(info: ServerInfo | undefined): number {
  if (!info?.cluster) return 1;
  return Math.max(1, Math.min(DEFAULT_MAX_REPLICAS, info.connect_urls?.length ?? 1));
}

/**
 * What JetStream answers a stream or bucket it cannot place yet: while a cluster forms (a server not
 * joined yet, a metadata leader being elected) there are fewer peers than replicas asked for.
 */
const NOT_PLACED_YET = /no suitable peers|insufficient resources|temporarily unavailable/i;
/**
 * How long set-up waits for the cluster to form before it gives up with the server's answer. Servers
 * started together (or one alone, then the others) elect a metadata leader in rounds of 4–9 s each
 * (nats-server's Raft election timeout), and a round can end without one: 20 s ran out once in about
 * ten runs of the test that starts them so; a minute covers several rounds.
 */
const FORMING_WAIT_MS = 60_000;

/**
 * Runs `attempt` until it succeeds, while `forming(err)` says its failure is a cluster still forming,
 * for up to FORMING_WAIT_MS (tries 250 ms apart, doubling to 2 s); then the last failure is thrown.
 * Nodes started with their servers (systemd starting them all at once) would otherwise fail on a
 * cluster a few seconds from formed.
 */
export async function whileForming<T>(
  attempt: () => Promise<T>,
  forming: (err: unknown) => boolean,
  log: LogFn,
  msg: string,
  fields: Record<string, unknown> = {},
): Promise<T> {
  const end = Date.now() + FORMING_WAIT_MS;
  for (let wait = 250; ; wait = Math.min(2000, wait * 2)) {
    try {
      return await attempt();
    } catch (err) {
      if (!forming(err) || Date.now() + wait > end) throw err;
      log('warn', msg, { ...fields, error: (err as Error)?.message ?? String(err), retryInMs: wait });
      await delay(wait);
    }
  }
}

/** Runs `create` until JetStream can place what it makes. */
const onceFormed = <T>(create: () => Promise<T>, what: string, log: LogFn): Promise<T> =>
  whileForming(
    create,
    (err) => NOT_PLACED_YET.test((err as Error)?.message ?? String(err)),
    log,
    'the cluster cannot place replicas yet; trying again',
    { what },
  );

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
  replicas: number,
  log: LogFn,
): Promise<ClusterBuckets> {
  await ensureStream(jsm, names, stream, replicas, log);
  await ensureReplicas(jsm, names.stream, replicas, log);
  const kvm = new Kvm(nc);
  const [nodesKv, directoryKv, stateKv, remindersKv] = await Promise.all(
    [
      { bucket: names.nodesBucket, ttl: deadAfterMs },
      { bucket: names.directoryBucket },
      { bucket: names.stateBucket },
      { bucket: names.remindersBucket, max_bytes: REMINDERS_MAX_BYTES },
    ].map((b) =>
      createKv(kvm, jsm, b.bucket, { ...b, history: 1, replicas }, log).catch(async (err) => {
        // Another process may have created it with other options right now; else the create's error
        // (open does not look: it would bind to a bucket that is not there).
        await jsm.streams.info(`KV_${b.bucket}`).catch(() => {
          throw err;
        });
        return kvm.open(b.bucket);
      }),
    ),
  );
  return { nodesKv: nodesKv!, directoryKv: directoryKv!, stateKv: stateKv!, remindersKv: remindersKv! };
}

/** Opens a cluster set up by `initCluster`; says which part is missing (and how to make it) when one is. */
export async function openCluster(
  nc: NatsConnection,
  jsm: JetStreamManager,
  names: Names,
  cluster: string,
  replicas: number,
  log: LogFn,
): Promise<ClusterBuckets> {
  const streams = [
    names.stream,
    `KV_${names.nodesBucket}`,
    `KV_${names.directoryBucket}`,
    `KV_${names.stateBucket}`,
  ];
  for (const stream of streams) {
    const info = await jsm.streams.info(stream).catch(() => {
      throw new ClusterNotInitialized(cluster, `stream ${stream}`);
    });
    // This connection may not update streams: say what would, rather than run on fewer copies quietly.
    if (info.config.num_replicas < replicas)
      log('warn', 'stream has fewer replicas than the cluster has servers', {
        stream,
        replicas: info.config.num_replicas,
        wanted: replicas,
        fix: 'run `stitch cluster init` with a credential that may update streams',
      });
  }
  const kvm = new Kvm(nc);
  const [nodesKv, directoryKv, stateKv] = await Promise.all([
    kvm.open(names.nodesBucket),
    kvm.open(names.directoryBucket),
    kvm.open(names.stateBucket),
  ]);
  // Optional: a cluster initialised by an older build has none, and runs without reminders.
  const reminders = await jsm.streams.info(`KV_${names.remindersBucket}`).catch(() => undefined);
  if (!reminders)
    log('warn', 'this cluster has no reminders bucket: reminders are off', {
      bucket: names.remindersBucket,
      fix: 'run `stitch cluster init` again with a credential that may create buckets',
    });
  const remindersKv = reminders ? await kvm.open(names.remindersBucket) : undefined;
  return { nodesKv, directoryKv, stateKv, remindersKv };
}

async function ensureStream(
  jsm: JetStreamManager,
  n: Names,
  limits: StreamLimits,
  replicas: number,
  log: LogFn,
): Promise<void> {
  const config = {
    name: n.stream,
    num_replicas: replicas,
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
    await onceFormed(() => jsm.streams.add(config), n.stream, log).catch(async (err) => {
      // Another process created it first.
      await jsm.streams.info(n.stream).catch(() => {
        throw err;
      });
    });
  }
}

/**
 * Creates the bucket, or opens an existing one, and raises its replicas to `opts.replicas` (nats.js's
 * create returns an existing bucket as it is, whatever replicas it asked for).
 */
export async function createKv(
  kvm: Kvm,
  jsm: JetStreamManager,
  bucket: string,
  opts: { ttl?: number; history: number; replicas: number; max_bytes?: number },
  log: LogFn,
): Promise<KV> {
  const kv = await onceFormed(() => kvm.create(bucket, opts), `KV_${bucket}`, log);
  await ensureReplicas(jsm, `KV_${bucket}`, opts.replicas, log);
  return kv;
}

/**
 * Raises an existing stream's replicas to `replicas` (nats-server 2.9 scales a stream up in place:
 * the new peers catch up from the leader), and logs it. A stream with more is left as it is. A raise
 * the server refuses (too few servers up) is logged with the stream still at its old count.
 */
export async function ensureReplicas(
  jsm: JetStreamManager,
  stream: string,
  replicas: number,
  log: LogFn,
): Promise<void> {
  // A principal that may not read the stream cannot tell; `stitch cluster init` (the admin) does the raise.
  const info = await jsm.streams.info(stream).catch(() => undefined);
  const had = info?.config.num_replicas ?? replicas;
  if (!info || had >= replicas) return;
  try {
    await jsm.streams.update(stream, { ...info.config, num_replicas: replicas });
    log('warn', 'stream replicas raised', { stream, from: had, to: replicas });
  } catch (err) {
    log('error', 'stream keeps fewer replicas than asked: the server refused to raise them', {
      stream,
      replicas: had,
      wanted: replicas,
      error: (err as Error).message,
    });
  }
}

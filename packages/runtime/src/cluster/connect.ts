import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { type JetStreamManager, jetstream, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, credsAuthenticator, nanos } from '@nats-io/transport-node';
import { Cluster } from './cluster.js';
import { startEmbeddedNats } from './embedded-nats.js';
import { InvalidOptions } from '../errors.js';
import { names as clusterNames, type Names } from './names.js';
import { type LogFn, stderrLog, type WireLimits } from '../wire/publish.js';

export interface ConnectOptions {
  /** Server URL(s). @default an embedded nats-server started for this connection */
  nats?: string | string[];
  /** Cluster name; namespaces every subject, stream and bucket. */
  name: string;
  /** Path of a NATS `.creds` file (JWT + nkey seed). */
  credentials?: string;
  /** TLS files for the connection. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Split messages above the server's max_payload into parts. @default true */
  chunking?: boolean;
  /** A node whose heartbeat is older than this is dead; also the nodes bucket's TTL. @default 5000 */
  deadAfterMs?: number;
  /** @default warnings and errors as JSON lines on stderr */
  log?: LogFn;
}

/** Connects to (or starts) NATS and opens the cluster's stream and buckets. */
export async function connectCluster(options: ConnectOptions): Promise<Cluster> {
  const n = clusterNames(options.name);
  const deadAfterMs = options.deadAfterMs ?? 5000;
  if (!Number.isFinite(deadAfterMs) || deadAfterMs < 300)
    throw new InvalidOptions('options.deadAfterMs must be ≥ 300');
  const embedded = options.nats === undefined ? await startEmbeddedNats() : undefined;
  try {
    const nc = await connect({
      servers: embedded ? embedded.url : options.nats!,
      name: `stitch-${options.name}-${hostname()}-${process.pid}`,
      // A long-lived runtime never gives up on its server; jitter spreads a fleet's reconnects.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      reconnectJitter: 500,
      ...(options.credentials
        ? { authenticator: credsAuthenticator(readFileSync(options.credentials)) }
        : {}),
      ...(options.tls ? { tls: options.tls } : {}),
    });
    const jsm = await jetstreamManager(nc);
    await ensureStream(jsm, n);
    const kvm = new Kvm(nc);
    const [nodesKv, directoryKv, stateKv] = await Promise.all([
      openKv(kvm, n.nodesBucket, { ttl: deadAfterMs, history: 1 }),
      openKv(kvm, n.directoryBucket, { history: 1 }),
      openKv(kvm, n.stateBucket, { history: 1 }),
    ]);
    const limits: WireLimits = {
      maxPayload: nc.info?.max_payload ?? 1024 * 1024,
      chunking: options.chunking ?? true,
    };
    const cluster = new Cluster({
      name: options.name,
      nc,
      js: jetstream(nc),
      jsm,
      names: n,
      nodesKv,
      directoryKv,
      stateKv,
      limits,
      deadAfterMs,
      log: options.log ?? stderrLog,
      embedded,
    });
    await cluster.directory.startWatch();
    return cluster;
  } catch (err) {
    await embedded?.stop();
    throw err;
  }
}

async function ensureStream(jsm: JetStreamManager, n: Names): Promise<void> {
  const config = {
    name: n.stream,
    subjects: [n.durableAll],
    // Work-queue retention drops a message once its actor acks it; each actor's consumer filters its own subject.
    retention: RetentionPolicy.Workqueue,
    duplicate_window: nanos(120_000),
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

async function openKv(kvm: Kvm, bucket: string, opts: { ttl?: number; history: number }): Promise<KV> {
  try {
    return await kvm.create(bucket, opts);
  } catch {
    return kvm.open(bucket);
  }
}

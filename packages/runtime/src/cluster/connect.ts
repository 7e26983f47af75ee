import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import {
  type Authenticator,
  connect,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
  nkeys,
  PermissionViolationError,
} from '@nats-io/transport-node';
import { sleep, systemClock } from '../clock.js';
import { ConnectionFailed, InvalidOptions, JetStreamDisabled, StitchError } from '../errors.js';
import { Guard } from '../guard.js';
import type { LogFn } from '../log.js';
import type { WireLimits } from '../wire/publish.js';
import { Cluster } from './cluster.js';
import { type EmbeddedNats, startEmbeddedNats } from './embedded-nats.js';
import { names as clusterNames } from './names.js';
import { type ConnectOptions, type ResolvedConnectOptions, resolveConnectOptions } from './options.js';
import { initCluster as createResources, defaultReplicas, openCluster, whileForming } from './setup.js';

/** Gap between first-connect attempts while `waitForServerMs` lasts. */
const CONNECT_RETRY_MS = 250;
/**
 * A server cut off by a partition drops packets silently: the connection looks open until pings go
 * unanswered. nats.js's default (a ping every 2 min, 2 outstanding) leaves a node on the wrong side for
 * minutes; this notices it within 3-4 s and reconnects to another server of the cluster.
 */
const PING_INTERVAL_MS = 1000;
const MAX_PINGS_OUT = 3;
/**
 * One connection attempt at most this long, reconnects included. A server that requires a client
 * certificate closes a connection without one after the handshake, and nats.js then waits out its own
 * 20 s default before it rejects; a server behind a partition drops the attempt silently, and a
 * reconnect tries the server it lost first (a client of a cut-off server reached another 9 s after the
 * cut with 5 s here, 4 s of them noticing the cut). A reachable server answers within milliseconds;
 * nats.go's default is 2 s.
 */
const CONNECT_TIMEOUT_MS = 2000;

/**
 * Connects to (or starts) NATS and opens the cluster's stream and buckets. On a server without
 * authentication it creates what is missing; on a secured one they must exist (`stitch cluster init`).
 */
export async function connectCluster(options: ConnectOptions): Promise<Cluster> {
  const o = resolveConnectOptions(options);
  const n = clusterNames(o.name);
  const embedded = o.nats === undefined ? await startEmbeddedNats() : undefined;
  let nc: NatsConnection | undefined;
  try {
    const auth = authOf(o);
    nc = await connectNats(o, embedded, auth);
    const url = serverUrl(o, embedded);
    const jsm = await openJetStream(nc, url, o.log);
    const open = nc.info?.auth_required !== true;
    const replicas = o.replicas ?? defaultReplicas(nc.info);
    const buckets = open
      ? await createResources(nc, jsm, n, o.deadAfterMs, o.durableStream, replicas, o.log)
      : await openCluster(nc, jsm, n, o.name, replicas, o.log);
    const limits: WireLimits = {
      maxPayload: nc.info?.max_payload ?? 1024 * 1024,
      chunking: o.chunking,
      maxMessageBytes: o.maxMessageBytes,
    };
    const cluster = new Cluster(
      {
        name: o.name,
        nc,
        js: jetstream(nc),
        jsm,
        names: n,
        ...buckets,
        limits,
        deadAfterMs: o.deadAfterMs,
        log: o.log,
        guard: new Guard(o.log, () => o.clock.now()),
        clock: o.clock,
        embedded,
        inboxPrefix: auth.inboxPrefix,
        replicas,
      },
      o,
    );
    await cluster.directory.startWatch();
    return cluster;
  } catch (err) {
    await nc?.close().catch(() => undefined);
    await embedded?.stop();
    throw err;
  }
}

/**
 * Creates the cluster's stream and buckets where missing (idempotent), then disconnects: the set-up
 * step of a secured cluster, run with credentials that may create streams (`stitch cluster init`).
 */
export async function initCluster(options: ConnectOptions): Promise<void> {
  const o = resolveConnectOptions(options);
  if (o.nats === undefined)
    throw new InvalidOptions('initCluster needs { nats }: the server whose cluster to set up');
  const nc = await connectNats(o, undefined, authOf(o));
  try {
    const jsm = await openJetStream(nc, serverUrl(o, undefined), o.log);
    const replicas = o.replicas ?? defaultReplicas(nc.info);
    await createResources(nc, jsm, clusterNames(o.name), o.deadAfterMs, o.durableStream, replicas, o.log);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** The server URL(s) for messages, without any user or password written into them. */
function serverUrl(o: ResolvedConnectOptions, embedded: EmbeddedNats | undefined): string {
  return embedded?.url ?? o.nats!.map((u) => u.replace(/\/\/[^/@]*@/, '//')).join(',');
}

/** How the connection authenticates, and the prefix of its inboxes (scoped by the user's nkey). */
export function authOf(o: ResolvedConnectOptions): {
  authenticator: Authenticator | undefined;
  inboxPrefix: string;
} {
  let authenticator: Authenticator | undefined;
  if (o.credentials) {
    try {
      authenticator = credsAuthenticator(readFileSync(o.credentials));
    } catch (err) {
      throw new InvalidOptions(
        `could not read the credentials file ${o.credentials}: ${(err as Error).message}`,
      );
    }
  }
  let inboxPrefix = o.inboxPrefix ?? '_INBOX';
  if (o.nkeySeedFile) {
    const seed = readNkeySeed(o.nkeySeedFile);
    authenticator = nkeyAuthenticator(seed);
    inboxPrefix = o.inboxPrefix ?? `_INBOX.${nkeys.fromSeed(seed).getPublicKey()}`;
  }
  return { authenticator, inboxPrefix };
}

export async function connectNats(
  o: ResolvedConnectOptions,
  embedded: EmbeddedNats | undefined,
  { authenticator, inboxPrefix }: ReturnType<typeof authOf>,
): Promise<NatsConnection> {
  const url = serverUrl(o, embedded);
  // Real time, whatever the cluster's clock: this waits for a real server.
  const deadline = Date.now() + o.waitForServerMs;
  for (;;) {
    try {
      return await connect({
        servers: embedded ? embedded.url : o.nats!,
        name: `stitch-${o.name}-${hostname()}-${process.pid}`,
        // A long-lived runtime never gives up on its server; jitter spreads a fleet's reconnects.
        timeout: CONNECT_TIMEOUT_MS,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1000,
        reconnectJitter: 500,
        pingInterval: PING_INTERVAL_MS,
        maxPingOut: MAX_PINGS_OUT,
        // nats.js captures a stack per request for async traces; the runtime's own errors say where.
        noAsyncTraces: true,
        inboxPrefix,
        ...(authenticator ? { authenticator } : {}),
        ...(o.user !== undefined ? { user: o.user, pass: o.pass ?? '' } : {}),
        ...(o.token !== undefined ? { token: o.token } : {}),
        ...(o.tls ? { tls: o.tls } : {}),
      });
    } catch (err) {
      if (Date.now() >= deadline) throw new ConnectionFailed(url, (err as Error).message, { cause: err });
      await sleep(systemClock, CONNECT_RETRY_MS);
    }
  }
}

/** How long one look at a forming cluster's JetStream API waits for its answer. */
const PROBE_TIMEOUT_MS = 2000;

/**
 * The JetStream manager of a server that has JetStream on. While its cluster elects a metadata leader
 * (a server of three just stopped, or all starting at once) the API answers nothing or "temporarily
 * unavailable" for seconds: that is waited out (up to the forming wait), not reported as JetStream off.
 */
async function openJetStream(nc: NatsConnection, url: string, log: LogFn): Promise<JetStreamManager> {
  if (nc.info && nc.info.jetstream !== true) throw new JetStreamDisabled(url);
  // A server that says it has JetStream, in a cluster, is forming; any other is misconfigured.
  const forming = nc.info?.jetstream === true && nc.info.cluster !== undefined;
  try {
    // The manager checks the API as it is made. A forming cluster is checked with a short timeout,
    // so that it is found ready soon after it is; the manager then returned is made without a second
    // check and keeps nats.js's default timeout for the creates that follow.
    const checked = await whileForming(
      () => jetstreamManager(nc, forming ? { timeout: PROBE_TIMEOUT_MS } : {}),
      (err) => forming && !waitingCannotMend(err),
      log,
      'JetStream does not answer yet (its cluster is electing a leader); trying again',
    );
    return forming ? await jetstreamManager(nc, { checkAPI: false }) : checked;
  } catch (err) {
    if (err instanceof StitchError) throw err;
    throw new JetStreamDisabled(url, { cause: err });
  }
}

/**
 * A failure of the JetStream API check that no election mends: the account has no JetStream (the API
 * says so once the cluster has formed), or the user may not publish to the API.
 */
export function waitingCannotMend(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof PermissionViolationError) return true;
    if (e instanceof JetStreamApiError && e.code === JetStreamApiCodes.JetStreamNotEnabledForAccount)
      return true;
  }
  return false;
}

/**
 * The user nkey seed (`SU…`) in a seed file: the first line that is one, so a file with comments or a
 * trailing newline reads as well. Static nkey users (`authorization { users = [{ nkey }] }`) need no
 * resolver or account server, unlike JWT operator mode, and work with Debian's nats-server 2.9.
 */
function readNkeySeed(file: string): Uint8Array {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidOptions(`could not read the nkey seed file ${file}: ${(err as Error).message}`);
  }
  const seed = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => /^SU[A-Z2-7]{20,}$/.test(l));
  if (!seed) throw new InvalidOptions(`the nkey seed file ${file} holds no user seed (a line starting SU)`);
  return new TextEncoder().encode(seed);
}

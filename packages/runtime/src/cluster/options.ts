import { type Clock, systemClock } from '../clock.js';
import { InvalidOptions } from '../errors.js';
import { type LogFn, stderrLog } from '../log.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../wire/chunks.js';
import { type ActivationPlacement, leastLoadedNode } from './activator.js';
import { checkToken } from './names.js';

export interface ConnectOptions {
  /** Server URL(s). @default an embedded nats-server started for this connection */
  nats?: string | string[];
  /** Cluster name; namespaces every subject, stream and bucket. */
  name: string;
  /** Path of a NATS `.creds` file (JWT + nkey seed). */
  credentials?: string;
  /**
   * Path of a file holding a user nkey seed (`SU…`), for a server whose `authorization { users }` lists
   * that user's public key (`{ nkey: "U…" }`); `stitch cluster init --auth` writes such files.
   */
  nkeySeedFile?: string;
  /**
   * Prefix of this connection's reply inboxes (`_INBOX` or `_INBOX.<token>`). A server that gives each
   * principal only `_INBOX.<its name>.>` to subscribe keeps one caller from reading another's replies.
   * @default `_INBOX.<public key>` with `nkeySeedFile` (what `stitch cluster init --auth` permits), else `_INBOX`
   */
  inboxPrefix?: string;
  /** User and password, for a server configured with `authorization { users }`. */
  user?: string;
  pass?: string;
  /** Token, for a server configured with `authorization { token }`. */
  token?: string;
  /** TLS files for the connection. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Split messages above the server's max_payload into parts. @default true */
  chunking?: boolean;
  /** A node whose heartbeat is older than this is dead; also the nodes bucket's TTL. @default 5000 */
  deadAfterMs?: number;
  /** How long the first connect keeps trying a server that is not up yet. @default 0 (fail at once) */
  waitForServerMs?: number;
  /** Timeout of an ask that sets none. @default 5000 */
  askTimeoutMs?: number;
  /**
   * A `close()` whose connection has been down this long stops waiting for the steps that need the
   * server (each would wait out its timeout: about 40 s for a node with one actor) and closes without
   * them. @default 5000
   */
  closeOfflineMs?: number;
  /** Which node activates an actor for `cluster.get` and `spawn` without a node. @default leastLoadedNode */
  activationPlacement?: ActivationPlacement;
  /** Time for every runtime timer; tests pass a manual clock. @default the system clock */
  clock?: Clock;
  /** @default warnings and errors as JSON lines on stderr */
  log?: LogFn;
  /**
   * Largest chunked message this connection reassembles (actor messages and replies); a bigger one is
   * refused with PayloadTooLarge, so a header claiming a huge message cannot make it allocate. @default 64 MiB
   */
  maxMessageBytes?: number;
  /**
   * Limits of the durable mailbox stream, applied when this connection creates it (an existing stream
   * is left as it is). Unacknowledged durable messages cannot fill the server's disk: past `maxBytes`
   * the stream refuses new publishes, and a message older than `maxAgeMs` is removed.
   * @default { maxBytes: 1 GiB, maxAgeMs: 7 days }
   */
  durableStream?: { maxBytes?: number; maxAgeMs?: number };
  /**
   * Replicas (1-5) of the durable stream and every bucket this connection creates (`kv`, `objectStore`
   * included); an existing stream or bucket with fewer is raised to this many where this connection may
   * update it, and a warning is logged where it may not. More replicas than servers fails the create.
   * @default the servers in the server's cluster, at most 3 (1 on a server in no cluster)
   */
  replicas?: number;
}

/** Defaults of the durable stream's limits: a generous backlog that still cannot fill a disk. */
export const DURABLE_STREAM_MAX_BYTES = 1024 ** 3;
export const DURABLE_STREAM_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

/** ConnectOptions with every default filled in, resolved once by `connectCluster`. */
export interface ResolvedConnectOptions {
  nats: string[] | undefined;
  name: string;
  credentials: string | undefined;
  nkeySeedFile: string | undefined;
  /** undefined: derived from the nkey seed when there is one, else `_INBOX`. */
  inboxPrefix: string | undefined;
  user: string | undefined;
  pass: string | undefined;
  token: string | undefined;
  tls: { caFile?: string; certFile?: string; keyFile?: string } | undefined;
  chunking: boolean;
  deadAfterMs: number;
  waitForServerMs: number;
  askTimeoutMs: number;
  closeOfflineMs: number;
  activationPlacement: ActivationPlacement;
  clock: Clock;
  log: LogFn;
  maxMessageBytes: number;
  durableStream: { maxBytes: number; maxAgeMs: number };
  /** undefined: from the server's cluster once connected (`defaultReplicas`). */
  replicas: number | undefined;
}

export function resolveConnectOptions(options: ConnectOptions): ResolvedConnectOptions {
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptions('connectCluster needs an options object with at least { name }');
  const deadAfterMs = options.deadAfterMs ?? 5000;
  if (!Number.isFinite(deadAfterMs) || deadAfterMs < 300)
    throw new InvalidOptions('options.deadAfterMs must be ≥ 300');
  const waitForServerMs = options.waitForServerMs ?? 0;
  if (!Number.isFinite(waitForServerMs) || waitForServerMs < 0)
    throw new InvalidOptions('options.waitForServerMs must be ≥ 0');
  const askTimeoutMs = options.askTimeoutMs ?? 5000;
  if (!Number.isFinite(askTimeoutMs) || askTimeoutMs <= 0)
    throw new InvalidOptions('options.askTimeoutMs must be > 0');
  const closeOfflineMs = options.closeOfflineMs ?? 5000;
  if (!Number.isFinite(closeOfflineMs) || closeOfflineMs < 0)
    throw new InvalidOptions('options.closeOfflineMs must be ≥ 0');
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const maxBytes = options.durableStream?.maxBytes ?? DURABLE_STREAM_MAX_BYTES;
  const maxAgeMs = options.durableStream?.maxAgeMs ?? DURABLE_STREAM_MAX_AGE_MS;
  for (const [what, v] of [
    ['maxMessageBytes', maxMessageBytes],
    ['durableStream.maxBytes', maxBytes],
    ['durableStream.maxAgeMs', maxAgeMs],
  ] as const)
    if (!Number.isSafeInteger(v) || v <= 0)
      throw new InvalidOptions(`options.${what} must be an integer > 0`);
  if (
    options.nkeySeedFile !== undefined &&
    (options.credentials !== undefined || options.user !== undefined || options.token !== undefined)
  )
    throw new InvalidOptions(
      'options.nkeySeedFile excludes credentials, user and token: a connection authenticates one way',
    );
  const replicas = options.replicas;
  if (replicas !== undefined && (!Number.isInteger(replicas) || replicas < 1 || replicas > 5))
    throw new InvalidOptions('options.replicas must be an integer from 1 to 5 (JetStream allows no more)');
  const nats = options.nats === undefined ? undefined : [options.nats].flat();
  if (nats?.length === 0 || nats?.some((u) => typeof u !== 'string' || u === ''))
    throw new InvalidOptions('options.nats must be a server URL or a non-empty list of them');
  return {
    nats,
    name: checkToken('cluster name', options.name),
    credentials: options.credentials,
    nkeySeedFile: options.nkeySeedFile,
    inboxPrefix: options.inboxPrefix === undefined ? undefined : checkInboxPrefix(options.inboxPrefix),
    user: options.user,
    pass: options.pass,
    token: options.token,
    tls: options.tls,
    chunking: options.chunking ?? true,
    deadAfterMs,
    waitForServerMs,
    askTimeoutMs,
    closeOfflineMs,
    activationPlacement: options.activationPlacement ?? leastLoadedNode,
    clock: options.clock ?? systemClock,
    log: options.log ?? stderrLog,
    maxMessageBytes,
    durableStream: { maxBytes, maxAgeMs },
    replicas,
  };
}

/** `_INBOX` or `_INBOX.<token>`: replies are then `<prefix>.<id>.<seq>`, which NATS permissions can scope. */
function checkInboxPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || !/^_INBOX(\.[A-Za-z0-9_-]{1,64})?$/.test(prefix))
    throw new InvalidOptions(
      `options.inboxPrefix must be _INBOX or _INBOX.<1-64 of A-Z a-z 0-9 _ -> (got ${JSON.stringify(prefix)})`,
    );
  return prefix;
}

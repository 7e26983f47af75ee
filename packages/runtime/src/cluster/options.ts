import { type Clock, systemClock } from '../clock.js';
import { InvalidOptions } from '../errors.js';
import { type LogFn, stderrLog } from '../log.js';
import { type ActivationPlacement, leastLoadedNode } from './activator.js';
import { checkToken } from './names.js';

export interface ConnectOptions {
  /** Server URL(s). @default an embedded nats-server started for this connection */
  nats?: string | string[];
  /** Cluster name; namespaces every subject, stream and bucket. */
  name: string;
  /** Path of a NATS `.creds` file (JWT + nkey seed). */
  credentials?: string;
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
  /** Which node activates an actor for `cluster.get` and `spawn` without a node. @default leastLoadedNode */
  activationPlacement?: ActivationPlacement;
  /** Time for every runtime timer; tests pass a manual clock. @default the system clock */
  clock?: Clock;
  /** @default warnings and errors as JSON lines on stderr */
  log?: LogFn;
}

/** ConnectOptions with every default filled in, resolved once by `connectCluster`. */
export interface ResolvedConnectOptions {
  nats: string[] | undefined;
  name: string;
  credentials: string | undefined;
  user: string | undefined;
  pass: string | undefined;
  token: string | undefined;
  tls: { caFile?: string; certFile?: string; keyFile?: string } | undefined;
  chunking: boolean;
  deadAfterMs: number;
  waitForServerMs: number;
  askTimeoutMs: number;
  activationPlacement: ActivationPlacement;
  clock: Clock;
  log: LogFn;
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
  const nats = options.nats === undefined ? undefined : [options.nats].flat();
  if (nats?.length === 0 || nats?.some((u) => typeof u !== 'string' || u === ''))
    throw new InvalidOptions('options.nats must be a server URL or a non-empty list of them');
  return {
    nats,
    name: checkToken('cluster name', options.name),
    credentials: options.credentials,
    user: options.user,
    pass: options.pass,
    token: options.token,
    tls: options.tls,
    chunking: options.chunking ?? true,
    deadAfterMs,
    waitForServerMs,
    askTimeoutMs,
    activationPlacement: options.activationPlacement ?? leastLoadedNode,
    clock: options.clock ?? systemClock,
    log: options.log ?? stderrLog,
  };
}

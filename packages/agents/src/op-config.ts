import { StaleFence } from '@stitch/runtime';
import { AgentsError, AgentsErrorCode } from './errors.js';
import type { OpConfig } from './ops.js';

/** Longest `estimatedMs` a modelled op may sleep per request (a minute; real model estimates are far below). */
export const MAX_ESTIMATED_MS = 60_000;
/** Entries of `attrs`, characters of one key and of one string value. */
export const MAX_ATTRS = 256;
export const MAX_ATTR_KEY_CHARS = 256;
export const MAX_ATTR_STRING_CHARS = 16 * 1024;
/** Characters of `deployment`, `opId`, `op` and `device`. */
export const MAX_NAME_CHARS = 256;
const MAX_URL_CHARS = 2048;
/** Cluster names go into bucket names (`stitch_<cluster>_memory`): the runtime's token characters only. */
const CLUSTER_NAME = /^[A-Za-z0-9_-]{1,120}$/;

/** Environment variable a process hosting operators may set: allowed NATS URLs, comma-separated, or `*`. */
export const OPERATOR_NATS_URLS_ENV = 'STITCH_OPERATOR_NATS_URLS';

type Policy =
  | { kind: 'first'; pinned?: string; env?: string[] | 'any' }
  | { kind: 'list'; urls: string[] }
  | { kind: 'any' };
let policy: Policy = { kind: 'first' };

/**
 * Which NATS servers operators in this process may connect to (memory ops open a connection to the
 * config's `natsUrl`). The default, `'first'`: the servers in `STITCH_OPERATOR_NATS_URLS` when set,
 * otherwise the server of the first config this process accepted — the coordinator always sends its
 * own cluster's server, so every later config naming another one is rejected. A list or `'any'`
 * replaces that rule for this process.
 */
export function allowOperatorNatsUrls(urls: readonly string[] | 'any' | 'first'): void {
  if (urls === 'any') policy = { kind: 'any' };
  else if (urls === 'first') policy = { kind: 'first' };
  else policy = { kind: 'list', urls: urls.map((u) => serverKey(u) ?? u) };
}

/** `host:port` as `nats.js` reports a server becomes `nats://host:port`; URLs with a scheme stay as they are. */
export function normaliseNatsUrl(url: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `nats://${url}`;
}

/** `nats://host:port` of an acceptable URL, or undefined. */
function serverKey(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    return undefined;
  }
  if (u.protocol !== 'nats:' && u.protocol !== 'tls:') return undefined;
  if (!u.hostname || u.username || u.password || u.search || u.hash) return undefined;
  if (u.pathname !== '' && u.pathname !== '/') return undefined;
  return `${u.protocol}//${u.host}`;
}

function envList(): string[] | 'any' | undefined {
  const raw = process.env[OPERATOR_NATS_URLS_ENV];
  if (raw === undefined || raw.trim() === '') return undefined;
  if (raw.trim() === '*') return 'any';
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => serverKey(s) ?? s);
}

const HOW_TO_ALLOW = `set ${OPERATOR_NATS_URLS_ENV} (comma-separated URLs, or *) in the node's environment or call allowOperatorNatsUrls() in the hosting process to allow others`;

/** Why `key` may not be used, or undefined; `pin` is set when the whole config turns out valid. */
function checkServer(key: string): { problem?: string; pin?: string } {
  if (policy.kind === 'any') return {};
  if (policy.kind === 'list') {
    return policy.urls.includes(key)
      ? {}
      : {
          problem: `natsUrl ${key} is not one of the allowed servers (${policy.urls.join(', ')}); ${HOW_TO_ALLOW}`,
        };
  }
  policy.env ??= envList() ?? [];
  if (policy.env === 'any') return {};
  if (policy.env.length > 0) {
    return policy.env.includes(key)
      ? {}
      : { problem: `natsUrl ${key} is not in ${OPERATOR_NATS_URLS_ENV} (${policy.env.join(', ')})` };
  }
  if (policy.pinned === undefined) return { pin: key };
  return key === policy.pinned
    ? {}
    : {
        problem: `natsUrl ${key} is not the NATS server operators in this process use (${policy.pinned}); ${HOW_TO_ALLOW}`,
      };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function name(problems: string[], cfg: Record<string, unknown>, key: string): void {
  const v = cfg[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_NAME_CHARS)
    problems.push(`${key} must be a string of 1 to ${MAX_NAME_CHARS} characters`);
}

function checkAttrs(problems: string[], attrs: unknown): void {
  if (!isObject(attrs)) {
    problems.push('attrs must be an object of strings, numbers and booleans');
    return;
  }
  const keys = Object.keys(attrs);
  if (keys.length > MAX_ATTRS) {
    problems.push(`attrs has ${keys.length} entries, more than ${MAX_ATTRS}`);
    return;
  }
  for (const k of keys) {
    const shown = k.length > 40 ? `${k.slice(0, 40)}…` : k;
    if (k.length > MAX_ATTR_KEY_CHARS)
      problems.push(`attrs key ${shown} is longer than ${MAX_ATTR_KEY_CHARS} characters`);
    const v = attrs[k];
    if (typeof v === 'string') {
      if (v.length > MAX_ATTR_STRING_CHARS)
        problems.push(`attrs.${shown} is longer than ${MAX_ATTR_STRING_CHARS} characters`);
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) problems.push(`attrs.${shown} must be a finite number`);
    } else if (typeof v !== 'boolean') {
      problems.push(`attrs.${shown} must be a string, number or boolean`);
    }
  }
}

/**
 * Checks a `configure` message's config before an operator acts on any of it: names and attrs are
 * bounded, `estimatedMs` is finite and within [0, MAX_ESTIMATED_MS], and `natsUrl` is a `nats://` or
 * `tls://` URL of a server this process may use (see `allowOperatorNatsUrls`). Throws `AgentsError`
 * `OP_CONFIG_INVALID` listing every problem; returns the config otherwise.
 */
export function validateOpConfig(raw: unknown): OpConfig {
  const fail = (problems: string[]): never => {
    throw new AgentsError(AgentsErrorCode.OpConfigInvalid, `configure rejected: ${problems.join('; ')}`);
  };
  if (!isObject(raw)) return fail(['config must be an object (an OpConfig)']);
  const problems: string[] = [];
  for (const key of ['deployment', 'opId', 'op', 'device']) name(problems, raw, key);
  if (typeof raw.cluster !== 'string' || !CLUSTER_NAME.test(raw.cluster))
    problems.push('cluster must be 1 to 120 letters, digits, _ or -');
  if (typeof raw.modelled !== 'boolean') problems.push('modelled must be a boolean');
  const ms = raw.estimatedMs;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > MAX_ESTIMATED_MS)
    problems.push(`estimatedMs must be a finite number from 0 to ${MAX_ESTIMATED_MS}, found ${String(ms)}`);
  checkAttrs(problems, raw.attrs);
  const url = raw.natsUrl;
  const key = typeof url === 'string' && url.length <= MAX_URL_CHARS ? serverKey(url) : undefined;
  let pin: string | undefined;
  if (key === undefined) {
    problems.push(
      'natsUrl must be a nats:// or tls:// URL of a server (host and port, no credentials, path or query)',
    );
  } else {
    const server = checkServer(key);
    if (server.problem) problems.push(server.problem);
    pin = server.pin;
  }
  if (problems.length > 0) fail(problems);
  if (pin !== undefined && policy.kind === 'first') policy.pinned = pin;
  return raw as unknown as OpConfig;
}

/**
 * The coordinator epoch an operator keeps after a `configure` carrying `epoch` (the leader lease's
 * fencing epoch; see Coordinator.epoch), given the newest it kept so far. A configure of an older
 * epoch is refused with the runtime's StaleFence: its coordinator was deposed, and its device choice
 * must not undo the new leader's. A configure without an epoch (a coordinator without a lease) is not
 * fenced, as node commands without one are not.
 */
export function configureEpoch(epoch: unknown, newest: number): number {
  if (epoch === undefined) return newest;
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 1)
    throw new AgentsError(
      AgentsErrorCode.OpConfigInvalid,
      'configure rejected: epoch must be an integer ≥ 1',
    );
  if (epoch < newest) throw new StaleFence('coordinator', epoch, newest);
  return epoch;
}

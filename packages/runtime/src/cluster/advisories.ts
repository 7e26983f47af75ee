// The server's own word that a client's connection closed: nats-server publishes a disconnect advisory
// on `$SYS.ACCOUNT.<account>.DISCONNECT` the moment it notices (a TCP close, or missed pings), long
// before a dead node's heartbeat expires. Only a user of the system account may subscribe.
import type { NatsConnection } from '@nats-io/transport-node';
import { InvalidOptions } from '../errors.js';
import { Guard } from '../guard.js';
import { type LogFn, stderrLog } from '../log.js';
import { authOf, connectNats } from './connect.js';
import { resolveConnectOptions } from './options.js';

export interface DisconnectedClient {
  /** The connection's name; stitch names its connections `stitch-<cluster>-<host>-<pid>`. */
  name: string;
  /** The account the client was in. */
  account: string;
  /** Why the server closed it (`Client Closed`, `Stale Connection`, `Read Error`, …). */
  reason: string;
}

export interface ServerEventOptions {
  nats: string | string[];
  /** A seed file of a system-account user (`system.nk` from `stitch cluster init --auth`). */
  nkeySeedFile?: string;
  credentials?: string;
  user?: string;
  pass?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  log?: LogFn;
}

const MAX_FIELD = 256;

/** The fields stitch uses from an advisory, or undefined when it has not that shape. */
function parseDisconnect(data: Uint8Array): DisconnectedClient | undefined {
  const v = JSON.parse(Buffer.from(data).toString('utf8')) as {
    client?: { name?: unknown; acc?: unknown };
    reason?: unknown;
  } | null;
  const name = v?.client?.name;
  const account = v?.client?.acc;
  if (typeof name !== 'string' || typeof account !== 'string' || name.length > MAX_FIELD) return undefined;
  const reason = typeof v?.reason === 'string' ? v.reason.slice(0, MAX_FIELD) : '';
  return { name, account: account.slice(0, MAX_FIELD), reason };
}

/**
 * Calls `onDisconnect` for every client connection the server closes, in every account. Returns the
 * watcher; `close()` ends it. Throws InvalidOptions when the credential may not subscribe to the
 * system account's advisories.
 */
export async function watchServerDisconnects(
  options: ServerEventOptions,
  onDisconnect: (client: DisconnectedClient) => void,
): Promise<{ close(): Promise<void> }> {
  const o = resolveConnectOptions({ ...options, name: 'sys' });
  const guard = new Guard(options.log ?? stderrLog);
  const nc: NatsConnection = await connectNats(o, undefined, authOf(o));
  const sub = nc.subscribe('$SYS.ACCOUNT.*.DISCONNECT', {
    callback: guard.callback('server disconnect advisory', (m: { data: Uint8Array }) => {
      const client = parseDisconnect(m.data);
      if (client) onDisconnect(client);
    }),
  });
  try {
    await nc.flush();
    // A user outside the system account gets a permissions violation for this subscription.
    // The server answers the SUB before the flush's PONG, so a refusal has arrived by now.
    const refused = await Promise.race([sub.closed, new Promise((r) => setImmediate(r, null))]);
    if (refused instanceof Error) throw refused;
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw new InvalidOptions(
      `cannot watch the server's disconnect advisories (${(err as Error).message}); connect with a system-account user (system.nk)`,
    );
  }
  return { close: () => nc.close() };
}

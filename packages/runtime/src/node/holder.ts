import { type NatsConnection, NoRespondersError, RequestError } from '@nats-io/transport-node';
import type { Location } from '../cluster/directory.js';
import type { Names } from '../cluster/names.js';
import { decode, encode } from '../wire/codec.js';
import { H } from '../wire/envelope.js';

/** How long a node waits for another node to say whether it still hosts an actor. */
const HOLDER_CHECK_MS = 1000;

/**
 * Whether the node named in a directory entry still runs that activation. A node that is gone has
 * no subscriptions, so the server answers no-responders at once (no waiting for its heartbeat to
 * expire); a node restarted under the same id answers false for activations of its old process.
 * A holder that does not answer in time is taken to hold it, so a slow node is never doubled.
 */
export async function isHeldElsewhere(
  node: { nc: NatsConnection; names: Names },
  key: string,
  held: Location,
): Promise<boolean> {
  const dot = key.indexOf('.');
  const request = { op: 'hosts', type: key.slice(0, dot), id: key.slice(dot + 1) };
  try {
    const reply = await node.nc.request(node.names.nodeQuery(held.node), encode(request), {
      timeout: HOLDER_CHECK_MS,
    });
    if (reply.headers?.code === 503) return false;
    return reply.headers?.get(H.errorCode) ? true : decode(reply.data) === true;
  } catch (err) {
    const gone = err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders());
    return !gone;
  }
}

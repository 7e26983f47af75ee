import { type Msg, type NatsConnection, NoRespondersError, RequestError } from '@nats-io/transport-node';
import type { Location } from '../cluster/directory.js';
import type { Names } from '../cluster/names.js';
import { decode, encode } from '../wire/codec.js';
import { H } from '../wire/envelope.js';

/** How long a node waits for another node to say whether it still hosts an actor. */
const HOLDER_CHECK_MS = 1000;

/**
 * Asks node `nodeId` a question on its query subject: the reply; `gone` when nothing subscribes there
 * (the server's no-responders: the node's connection is closed, no waiting for its heartbeat to
 * expire); `silent` when no answer came in time (a busy node) or the request failed otherwise.
 */
export async function queryNode(
  node: { nc: NatsConnection; names: Names },
  nodeId: string,
  request: unknown,
  timeoutMs: number,
): Promise<Msg | 'gone' | 'silent'> {
  try {
    const reply = await node.nc.request(node.names.nodeQuery(nodeId), encode(request), {
      timeout: timeoutMs,
    });
    return reply.headers?.code === 503 ? 'gone' : reply;
  } catch (err) {
    const gone = err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders());
    return gone ? 'gone' : 'silent';
  }
}

/**
 * Whether the node named in a directory entry still runs that activation. A node that is gone
 * answers no-responders at once; a node restarted under the same id answers false for activations
 * of its old process. A holder that does not answer in time is taken to hold it, so a slow node is
 * never doubled.
 */
export async function isHeldElsewhere(
  node: { nc: NatsConnection; names: Names },
  key: string,
  held: Location,
): Promise<boolean> {
  const dot = key.indexOf('.');
  const request = { op: 'hosts', type: key.slice(0, dot), id: key.slice(dot + 1) };
  const reply = await queryNode(node, held.node, request, HOLDER_CHECK_MS);
  if (reply === 'gone') return false;
  if (reply === 'silent') return true;
  return reply.headers?.get(H.errorCode) ? true : decode(reply.data) === true;
}

import { type Msg, type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import { encode } from '../wire/codec.js';
import { H } from '../wire/envelope.js';
import { failure } from '../wire/outcome.js';

/**
 * Answers one request to a node (activation or control): the encoded result, or the error as
 * `Stitch-Error-*` headers, as an actor answers. Nothing `handle` throws escapes: a bad request is
 * answered (or dropped when it has no reply subject) and the subscription keeps serving.
 */
export async function answerRequest(
  nc: NatsConnection,
  m: Msg,
  handle: () => Promise<unknown>,
): Promise<void> {
  let out: Uint8Array;
  try {
    out = encode(await handle());
  } catch (err) {
    const f = failure(err);
    if (!m.reply || f.ok) return;
    const h = natsHeaders();
    h.set(H.errorCode, f.code);
    h.set(H.errorName, f.name);
    // May throw (a closed connection): the caller's guard reports it, nothing else is lost.
    nc.publish(m.reply, Buffer.from(f.message), { headers: h });
    return;
  }
  if (m.reply) nc.publish(m.reply, out);
}

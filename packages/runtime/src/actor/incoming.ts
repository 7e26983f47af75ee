import { FORWARD_ROOM, type ForwardedMessage } from '../migration/protocol.js';
import { decode, encode } from '../wire/codec.js';
import type { Envelope } from '../wire/envelope.js';
import type { AnyActorDefinition } from './definition.js';
import type { DurableDelivery } from './durable-delivery.js';
import { checkMessage } from './messages.js';

/** A message as an activation queues it. */
export interface Incoming {
  msg: { type: string /** Set by ref.stream(): where the turn's items go. */; $stream?: unknown };
  env: Envelope;
  reply: string | undefined;
  durable: DurableDelivery | undefined;
  /** Idempotency key, or the stream sequence for durable messages sent without one. */
  key: string | undefined;
  /** Arrived in a Stitch-Batch: the caller inbox its reply is coalesced under (the sender reads batches). */
  inbox: string | undefined;
}

/** A queued message as a migration's source forwards it to the target. */
export function forwardedOf(item: Incoming): ForwardedMessage {
  const { env } = item;
  return {
    b: encode(item.msg),
    s: env.sender,
    t: env.traceparent,
    d: env.deadline,
    ...(item.reply !== undefined ? { r: item.reply } : {}),
    // A durable message's key stands for its stream sequence when it was sent without one.
    ...(env.idempotencyKey !== undefined ? { k: env.idempotencyKey } : {}),
    ...(env.seq !== undefined ? { q: env.seq } : {}),
    ...(env.prev !== undefined ? { p: env.prev } : {}),
    ...(env.more ? { m: true as const } : {}),
  };
}

/**
 * A forwarded message as the target queues it (a fast-mode one: a durable one gets its delivery
 * after). Throws what checkMessage throws when its body is not a message of actor `key`.
 */
export function incomingOf(def: AnyActorDefinition, key: string, f: ForwardedMessage): Incoming {
  const msg = checkMessage(def, key, decode(f.b));
  const env: Envelope = {
    traceparent: f.t,
    sender: f.s,
    deadline: f.d,
    ...(f.k !== undefined ? { idempotencyKey: f.k } : {}),
    ...(f.q !== undefined ? { seq: f.q } : {}),
    ...(f.p !== undefined ? { prev: f.p } : {}),
    ...(f.m ? { more: true as const } : {}),
  };
  return { msg, env, reply: f.r, durable: undefined, key: f.k, inbox: undefined };
}

/**
 * The fast-mode messages of `queued` from the `from`-th on, as forwarded, while their bodies and room
 * fit `maxBytes`.
 */
export function forwardedFrom(
  queued: Iterable<Incoming>,
  from: number,
  maxBytes: number,
): ForwardedMessage[] {
  const out: ForwardedMessage[] = [];
  let skip = from;
  let room = maxBytes;
  for (const item of queued) {
    if (item.durable) continue;
    if (skip > 0) {
      skip--;
      continue;
    }
    const f = forwardedOf(item);
    room -= f.b.length + FORWARD_ROOM;
    if (room < 0) break;
    out.push(f);
  }
  return out;
}

import { type MsgHdrs, type NatsConnection, headers as natsHeaders, nuid } from '@nats-io/transport-node';
import { PayloadTooLarge } from '../errors.js';
import { chunkHeader, HEADER_ROOM, split } from './chunks.js';
import { H } from './envelope.js';
import { publishDirect } from './nats-internals.js';
import { OutgoingHeaders } from './outgoing-headers.js';

export interface WireLimits {
  maxPayload: number;
  /** Split messages above max_payload into parts instead of refusing them. */
  chunking: boolean;
  /** Largest chunked message a receiver reassembles (see AssemblerLimits). @default 64 MiB */
  maxMessageBytes?: number;
}

/** Publishes one message: directly where it can (see direct-publish.ts), else with nats.js `publish`. */
export function publishOne(
  nc: NatsConnection,
  subject: string,
  data: Uint8Array,
  opts: { reply?: string; headers?: MsgHdrs },
): void {
  const h = opts.headers;
  // Headers other than stitch's own (nats.js MsgHdrs) go the nats.js way, encoded by nats.js.
  const direct = h === undefined || h instanceof OutgoingHeaders;
  if (!direct || !publishDirect(nc, subject, data, opts.reply, h?.toString()))
    nc.publish(subject, data, opts);
}

/** Publishes `data`, in parts when it exceeds max_payload; the last part carries `reply` and `headers`. */
export function publish(
  nc: NatsConnection,
  subject: string,
  data: Uint8Array,
  opts: { reply?: string; headers?: MsgHdrs },
  limits: WireLimits,
): void {
  const room = limits.maxPayload - HEADER_ROOM;
  if (data.length <= room) {
    publishOne(nc, subject, data, opts);
    return;
  }
  if (!limits.chunking) {
    throw new PayloadTooLarge(
      data.length,
      limits.maxPayload,
      'connect with chunking: true, or send a reference to the object store',
    );
  }
  const parts = split(data, room);
  const id = nuid.next();
  parts.forEach((part, index) => {
    const last = index === parts.length - 1;
    const h = last ? (opts.headers ?? natsHeaders()) : natsHeaders();
    h.set(H.chunk, chunkHeader(id, index, parts.length));
    publishOne(nc, subject, part, last ? { ...opts, headers: h } : { headers: h });
  });
}

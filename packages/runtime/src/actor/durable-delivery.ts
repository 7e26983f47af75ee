import type { JsMsg } from '@nats-io/jetstream';
import type { Msg, MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { coreMsg } from '../wire/nats-internals.js';

/**
 * A durable message as an activation handles it: what it reads of nats.js's JsMsg, which is one. A
 * migration's target also gets them as core messages, on a pull inbox it took over from the source
 * (see TakenPulls.take), and from the source itself, forwarded by their acknowledgement subject;
 * those are AckSubjectDelivery.
 */
export type DurableDelivery = Pick<
  JsMsg,
  'seq' | 'redelivered' | 'data' | 'headers' | 'ack' | 'nak' | 'term' | 'working'
>;

/** What an acknowledgement subject says of the message it acknowledges. */
export interface AckInfo {
  stream: string;
  consumer: string;
  /** Times delivered, this delivery included. */
  delivered: number;
  /** Stream sequence. */
  seq: number;
}

const POSITIVE = /^[1-9][0-9]{0,15}$/;

/**
 * Reads a JetStream acknowledgement subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<seq>.<dseq>.<ts>.<pending>`,
 * or the same with a domain and an account hash after `ACK` (and a trailing token) as newer servers
 * send it. Undefined for anything else, a status message's missing reply included.
 */
export function ackInfo(subject: string | undefined): AckInfo | undefined {
  if (!subject?.startsWith('$JS.ACK.')) return undefined;
  const t = subject.split('.');
  const at = t.length === 9 ? 2 : t.length === 11 || t.length === 12 ? 4 : -1;
  if (at < 0) return undefined;
  const [stream, consumer, delivered, seq] = t.slice(at, at + 4) as [string, string, string, string];
  if (!stream || !consumer || !POSITIVE.test(delivered) || !POSITIVE.test(seq)) return undefined;
  return { stream, consumer, delivered: Number(delivered), seq: Number(seq) };
}

const ACK = '+ACK';
const TERM = '+TERM';
const WORKING = '+WPI';

/**
 * A durable message known by its acknowledgement subject: acknowledged, given back and terminated by
 * publishing to it, as nats.js does for its own (the server takes an acknowledgement by stream
 * sequence, whichever delivery's subject carries it). `msg`: the core message it came in, when it came
 * in one (read by the fast path, see coreMsg).
 */
export class AckSubjectDelivery implements DurableDelivery {
  readonly seq: number;
  readonly redelivered: boolean;

  constructor(
    private readonly nc: NatsConnection,
    readonly reply: string,
    info: AckInfo,
    readonly data: Uint8Array = new Uint8Array(0),
    readonly headers: MsgHdrs | undefined = undefined,
    readonly msg: Msg | undefined = undefined,
  ) {
    this.seq = info.seq;
    this.redelivered = info.delivered > 1;
  }

  ack(): void {
    this.nc.publish(this.reply, ACK);
  }

  nak(millis?: number): void {
    // The delay in nanoseconds, as nats.js sends it.
    this.nc.publish(this.reply, millis && millis > 0 ? `-NAK {"delay":${Math.round(millis * 1e6)}}` : '-NAK');
  }

  term(): void {
    this.nc.publish(this.reply, TERM);
  }

  working(): void {
    this.nc.publish(this.reply, WORKING);
  }
}

/** The acknowledgement subject of a durable message (nats.js keeps a JsMsg's in its core message). */
export function ackSubjectOf(m: DurableDelivery): string | undefined {
  return m instanceof AckSubjectDelivery ? m.reply : coreMsg(m)?.reply;
}

/**
 * The durable message of consumer `stream`/`consumer` that acknowledgement subject `reply` names
 * (with what came with it: see AckSubjectDelivery); undefined when it names another consumer's, or
 * is not one.
 */
export function consumerDelivery(
  nc: NatsConnection,
  reply: string | undefined,
  stream: string,
  consumer: string,
  m?: Msg,
): AckSubjectDelivery | undefined {
  const info = ackInfo(reply);
  if (!info || info.stream !== stream || info.consumer !== consumer) return undefined;
  return new AckSubjectDelivery(nc, reply!, info, m?.data, m?.headers, m);
}

/**
 * A message that came on a pull inbox taken over from a migration's source, as a durable message of
 * the consumer `stream`/`consumer`, whose messages were published to `subject`; undefined for what is
 * not one: the server's status messages on the inbox (heartbeats, expired pulls), and anything a
 * client published there. The server delivers a stream's message to a pull's inbox under the subject
 * it was published to; a client's message to the inbox has the inbox as its subject.
 */
export function pulledDelivery(
  nc: NatsConnection,
  m: Msg,
  stream: string,
  consumer: string,
  subject: string,
): AckSubjectDelivery | undefined {
  return m.subject === subject ? consumerDelivery(nc, m.reply, stream, consumer, m) : undefined;
}

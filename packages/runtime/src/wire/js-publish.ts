import { createInbox, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { type Clock, DeadlineSweep } from '../clock.js';
import { Timeout } from '../errors.js';
import type { Guard } from '../guard.js';
import type { OutgoingHeaders } from './outgoing-headers.js';
import { publishOne } from './publish.js';

/** What the stream answered: where it stored the message, or why it did not (`error`). */
export interface PubAck {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  /** The server's refusal. */
  error?: { code: number; err_code?: number; description: string };
  /** No stream takes the subject (the server answered no-responders). */
  noStream?: boolean;
}

interface Waiting {
  seq: number;
  resolve: (ack: PubAck) => void;
  reject: (err: Error) => void;
  deadline: number;
  subject: string;
  timeoutMs: number;
}

/** Publishers by connection: one acknowledgement inbox per connection. */
const publishers = new WeakMap<NatsConnection, JetStreamPublisher>();

/** The connection's publisher, made on first use with an inbox under `inboxPrefix`. */
export function jetStreamPublisher(
  nc: NatsConnection,
  inboxPrefix: string,
  clock: Clock,
  guard: Guard,
): JetStreamPublisher {
  let p = publishers.get(nc);
  if (!p) {
    p = new JetStreamPublisher(nc, inboxPrefix, clock, guard);
    publishers.set(nc, p);
  }
  return p;
}

/**
 * Publishes to JetStream and reads the stream's acknowledgement on one wildcard inbox of its own,
 * instead of through nats.js `request()`, which builds two Error objects per call to keep async stack
 * traces (about 40 µs a message on the durable path, most of a caller's time there) and a timer each.
 * One timer serves every publish: it fires at the earliest deadline and sweeps.
 */
export class JetStreamPublisher {
  readonly #nc: NatsConnection;
  readonly #inbox: string;
  readonly #clock: Clock;
  readonly #waiting = new Map<number, Waiting>();
  readonly #deadlines: DeadlineSweep<Waiting>;
  #seq = 0;

  constructor(nc: NatsConnection, inboxPrefix: string, clock: Clock, guard: Guard) {
    this.#nc = nc;
    this.#inbox = createInbox(inboxPrefix);
    this.#clock = clock;
    this.#deadlines = new DeadlineSweep(
      clock,
      () => this.#waiting.values(),
      (w) => {
        this.#waiting.delete(w.seq);
        w.reject(new Timeout(`the stream (publish to ${w.subject})`, w.timeoutMs));
      },
    );
    nc.subscribe(`${this.#inbox}.*`, {
      callback: guard.callback('jetstream ack inbox', (m: Msg) => this.#onAck(m)),
    });
  }

  /** Resolves with the stream's answer; rejects when none comes within `timeoutMs` or the publish fails. */
  publish(subject: string, data: Uint8Array, headers: OutgoingHeaders, timeoutMs: number): Promise<PubAck> {
    const seq = this.#seq++;
    const reply = `${this.#inbox}.${seq.toString(36)}`;
    return new Promise<PubAck>((resolve, reject) => {
      const deadline = this.#clock.now() + timeoutMs;
      this.#waiting.set(seq, { seq, resolve, reject, deadline, subject, timeoutMs });
      this.#deadlines.added(deadline);
      try {
        publishOne(this.#nc, subject, data, { reply, headers });
      } catch (err) {
        this.#waiting.delete(seq);
        reject(err as Error);
      }
    });
  }

  #onAck(m: Msg): void {
    const seq = Number.parseInt(m.subject.slice(this.#inbox.length + 1), 36);
    const w = this.#waiting.get(seq);
    if (!w) return;
    this.#waiting.delete(seq);
    if (m.data.length === 0) {
      // A status message: 503 (no responders) when no stream takes the subject.
      const code = m.headers?.code ?? 0;
      const error = { code, description: m.headers?.description || `status ${code}` };
      w.resolve(code === 503 ? { error, noStream: true } : { error });
      return;
    }
    let ack: PubAck;
    try {
      ack = JSON.parse(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.length).toString('utf8'));
    } catch {
      ack = { error: { code: 0, description: 'the stream answered with something that is not JSON' } };
    }
    if (!ack || typeof ack !== 'object') ack = { error: { code: 0, description: 'an empty answer' } };
    w.resolve(ack);
  }
}

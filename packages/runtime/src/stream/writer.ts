import { type NatsConnection, nuid, type Subscription } from '@nats-io/transport-node';
import type { Clock, Timer } from '../clock.js';
import { PayloadTooLarge, StreamCancelled } from '../errors.js';
import { HEADER_ROOM } from '../wire/chunks.js';
import type { Outcome } from '../wire/outcome.js';
import { encodeFrame, parseReaderFrame, type StreamSpec } from './frames.js';

/**
 * The producer side of a stream, as a handler sees it (`ctx.stream`): `write` sends one item and
 * waits while the reader has `window` items unread, so a slow reader slows the handler and nothing
 * piles up in between.
 */
export interface TurnStream {
  /** Sends one item; resolves once it is sent, rejects with StreamCancelled once the stream is over. */
  write(item: unknown): Promise<void>;
  /** Aborted when the reader cancels, stops reading for `idleMs`, or the caller's deadline passes. */
  readonly signal: AbortSignal;
  /** Items sent so far. */
  readonly written: number;
}

export interface StreamWriterOptions {
  nc: NatsConnection;
  /** Prefix of this connection's own inboxes: the reader's credits and cancel arrive under it. */
  inboxPrefix: string;
  clock: Clock;
  maxPayload: number;
  /** Epoch ms the caller stops waiting. */
  deadline: number;
  /** How long a write may wait for the reader to read before the stream is cancelled. @default 30000 */
  idleMs?: number;
}

export class StreamWriter implements TurnStream {
  readonly #spec: StreamSpec;
  readonly #o: StreamWriterOptions;
  readonly #abort = new AbortController();
  readonly #sub: Subscription;
  readonly #deadlineTimer: Timer | undefined;
  #sent = 0;
  #read = 0;
  #waiting: { resolve: () => void; reject: (e: Error) => void; timer: Timer } | undefined;
  #closed = false;

  constructor(spec: StreamSpec, options: StreamWriterOptions) {
    this.#spec = spec;
    this.#o = options;
    const ctl = `${options.inboxPrefix}.${nuid.next()}`;
    this.#sub = options.nc.subscribe(ctl, {
      callback: (err, m) => {
        if (!err) this.#onControl(m.data);
      },
    });
    options.nc.publish(spec.inbox, encodeFrame({ t: 'open', ctl }));
    const left = options.deadline - options.clock.now();
    if (Number.isFinite(left))
      this.#deadlineTimer = options.clock.after(Math.max(0, left), () => this.#cancel('the deadline passed'));
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get written(): number {
    return this.#sent;
  }

  async write(item: unknown): Promise<void> {
    this.#check();
    if (this.#sent - this.#read >= this.#spec.window) await this.#credit();
    this.#check();
    const data = encodeFrame({ t: 'item', seq: this.#sent, v: item });
    if (data.length > this.#o.maxPayload - HEADER_ROOM)
      throw new PayloadTooLarge(
        data.length,
        this.#o.maxPayload,
        'a stream item is one message: send smaller items',
      );
    this.#o.nc.publish(this.#spec.inbox, data);
    this.#sent++;
  }

  /** Ends the stream with the turn's outcome: the reader learns how many items to expect. */
  close(outcome: Outcome): void {
    if (this.#closed) return;
    this.#closed = true;
    const frame = outcome.ok
      ? ({ t: 'end', count: this.#sent } as const)
      : ({
          t: 'error',
          count: this.#sent,
          code: outcome.code,
          name: outcome.name,
          message: outcome.message,
        } as const);
    try {
      this.#o.nc.publish(this.#spec.inbox, encodeFrame(frame));
    } catch {
      // A closed connection: the reader learns from its ask's failure instead.
    }
    this.#finish('the turn has ended');
  }

  #check(): void {
    if (this.#abort.signal.aborted) throw this.#abort.signal.reason as Error;
    if (this.#closed) throw new StreamCancelled('the turn has ended');
  }

  #credit(): Promise<void> {
    return new Promise((resolve, reject) => {
      const idleMs = this.#o.idleMs ?? 30_000;
      const timer = this.#o.clock.after(idleMs, () =>
        this.#cancel(`the reader read nothing for ${idleMs} ms`),
      );
      this.#waiting = { resolve, reject, timer };
    });
  }

  #onControl(data: Uint8Array): void {
    const f = parseReaderFrame(data);
    if (!f) return;
    if (f.t === 'cancel') {
      this.#cancel('the reader cancelled it');
      return;
    }
    // Cumulative and at most what was sent: a stale, repeated or forged credit cannot open the window wider.
    if (f.read <= this.#read || f.read > this.#sent) return;
    this.#read = f.read;
    const w = this.#waiting;
    if (w && this.#sent - this.#read < this.#spec.window) {
      this.#waiting = undefined;
      w.timer.cancel();
      w.resolve();
    }
  }

  #cancel(reason: string): void {
    if (this.#abort.signal.aborted) return;
    this.#abort.abort(new StreamCancelled(reason));
    const w = this.#waiting;
    this.#waiting = undefined;
    if (w) {
      w.timer.cancel();
      w.reject(this.#abort.signal.reason as Error);
    }
  }

  #finish(reason: string): void {
    this.#cancel(reason);
    this.#deadlineTimer?.cancel();
    this.#sub.unsubscribe();
  }
}

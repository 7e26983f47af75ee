import { type NatsConnection, nuid, type Subscription } from '@nats-io/transport-node';
import type { Clock, Timer } from '../clock.js';
import { InvalidOptions, rebuildError, StreamBroken, StreamCancelled } from '../errors.js';
import { encodeFrame, MAX_WINDOW, parseProducerFrame, type StreamSpec } from './frames.js';

export interface StreamOptions {
  /** Deadline of the whole stream, first item to last. @default 60000 */
  timeoutMs?: number;
  /** Items the actor may send ahead of what this reader has consumed (its buffer's bound). @default 16 */
  window?: number;
  /** Cancels the stream: the actor's `ctx.stream.signal` aborts and iteration throws StreamCancelled. */
  signal?: AbortSignal;
  /** W3C trace context to continue. */
  traceparent?: string;
}

/** How long items may still come after the actor's reply before the stream counts as broken. */
const END_GRACE_MS = 2000;
/**
 * How long the loop waits for an item before it sends its credit again: core NATS drops messages
 * across a reconnect, and an actor whose credit was lost waits with a full window.
 */
const CREDIT_REPEAT_MS = 1000;

/**
 * The reader's side of `ref.stream()`: iterate it for the items in the order the handler wrote them;
 * `result` is the handler's return value. Breaking out of the loop (or `cancel()`) cancels the
 * stream at the actor. Consuming an item is what lets the actor send another, so memory stays bounded
 * by `window` items however slowly the loop runs.
 */
export class ActorStream<T = unknown, R = unknown> implements AsyncIterable<T> {
  /** The handler's reply; rejects as an ask would (and with StreamCancelled after a cancel). */
  readonly result: Promise<R>;
  readonly #nc: NatsConnection;
  readonly #clock: Clock;
  readonly #window: number;
  readonly #sub: Subscription;
  readonly #items = new Map<number, unknown>();
  /** Items handed to the loop; also the credit sent to the actor. */
  #delivered = 0;
  #credited = 0;
  #ctl: string | undefined;
  #cancelRequested = false;
  /** Set once the producer said how many items there are (end or error). */
  #count: number | undefined;
  #error: Error | undefined;
  #done = false;
  #wake: (() => void) | undefined;
  #graceTimer: Timer | undefined;
  #dropped = 0;

  constructor(
    nc: NatsConnection,
    inboxPrefix: string,
    clock: Clock,
    options: StreamOptions,
    ask: (spec: StreamSpec) => Promise<unknown>,
  ) {
    const window = options.window ?? 16;
    if (!Number.isInteger(window) || window < 1 || window > MAX_WINDOW)
      throw new InvalidOptions(`stream window must be an integer 1..${MAX_WINDOW}, got ${window}`);
    this.#nc = nc;
    this.#clock = clock;
    this.#window = window;
    const inbox = `${inboxPrefix}.${nuid.next()}`;
    this.#sub = nc.subscribe(inbox, {
      callback: (err, m) => {
        if (!err) this.#onFrame(m.data);
      },
    });
    this.result = ask({ inbox, window }) as Promise<R>;
    this.result.then(
      () => this.#replied(),
      (err) => this.#replied(err as Error),
    );
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) this.cancel();
      else signal.addEventListener('abort', () => this.cancel(), { once: true });
    }
  }

  /** Frames that were malformed, beyond the window or repeated, dropped unread. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Stops the stream: the actor is told, iteration ends with StreamCancelled. */
  cancel(): void {
    if (this.#cancelRequested || (this.#done && this.#count !== undefined)) return;
    this.#cancelRequested = true;
    this.#sendCancel();
    this.#error = new StreamCancelled('cancelled by the reader');
    this.#close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let finished = false;
    try {
      for (;;) {
        if (this.#cancelRequested) {
          finished = true;
          throw this.#error;
        }
        if (this.#items.has(this.#delivered)) {
          const item = this.#items.get(this.#delivered) as T;
          this.#items.delete(this.#delivered);
          this.#delivered++;
          yield item;
          this.#grant();
          continue;
        }
        if (this.#count !== undefined && this.#delivered >= this.#count) {
          finished = true;
          this.#close();
          if (this.#error) throw this.#error;
          return;
        }
        if (this.#done) {
          finished = true;
          throw this.#error ?? new StreamBroken('the stream ended early');
        }
        const repeat = this.#clock.every(CREDIT_REPEAT_MS, () => this.#repeatCredit());
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        repeat.cancel();
        this.#wake = undefined;
      }
    } finally {
      // The loop broke off (break, return, a throw in its body): the actor stops too.
      if (!finished) this.cancel();
    }
  }

  #onFrame(data: Uint8Array): void {
    const f = parseProducerFrame(data);
    if (f?.t === 'open' && this.#ctl === undefined) {
      this.#ctl = f.ctl;
      // A cancel before the actor said where to send it goes now.
      if (this.#cancelRequested) {
        this.#sendCancel();
        if (this.#done) this.#sub.unsubscribe();
      }
      return;
    }
    if (!f || f.t === 'open' || this.#done) {
      this.#dropped++;
      return;
    }
    if (f.t === 'item') {
      // Only the items the actor may have sent: a forged or repeated one cannot grow the buffer.
      if (f.seq < this.#delivered || f.seq >= this.#delivered + this.#window || this.#items.has(f.seq)) {
        this.#dropped++;
        return;
      }
      this.#items.set(f.seq, f.v);
    } else {
      if (this.#count !== undefined) {
        this.#dropped++;
        return;
      }
      this.#count = f.count;
      if (f.t === 'error') this.#error = rebuildError(f.code, f.name, f.message);
    }
    this.#wake?.();
  }

  #grant(): void {
    if (this.#delivered - this.#credited >= Math.ceil(this.#window / 2)) this.#sendCredit();
  }

  #repeatCredit(): void {
    if (this.#delivered > 0) this.#sendCredit();
  }

  /** Credits the actor with every item delivered so far (cumulative: a repeat changes nothing there). */
  #sendCredit(): void {
    if (this.#ctl === undefined) return;
    this.#credited = this.#delivered;
    this.#publish(this.#ctl, encodeFrame({ t: 'credit', read: this.#delivered }));
  }

  #sendCancel(): void {
    if (this.#ctl !== undefined) this.#publish(this.#ctl, encodeFrame({ t: 'cancel' }));
  }

  #publish(subject: string, data: Uint8Array): void {
    try {
      this.#nc.publish(subject, data);
    } catch {
      // A closed connection: the actor's own deadline ends the stream there.
    }
  }

  /**
   * The reply is in, or the ask failed. Items and the end frame, sent before the reply, may still be
   * on their way: wait a little for stragglers, then end the stream broken if the producer's count of
   * items (or the count itself) is still missing. An ask that failed before the producer said how the
   * stream ends is how it ends.
   */
  #replied(err?: Error): void {
    if (this.#done || this.#complete()) return;
    if (err && this.#count === undefined) {
      this.#error = err;
      this.#close();
      return;
    }
    this.#graceTimer ??= this.#clock.after(END_GRACE_MS, () => {
      if (this.#done || this.#complete()) return;
      this.#error ??= new StreamBroken(
        this.#count === undefined
          ? `the actor replied but its stream's end did not arrive within ${END_GRACE_MS} ms`
          : `item ${this.#delivered + this.#missingFrom()} of the ${this.#count} the actor sent did not arrive within ${END_GRACE_MS} ms of its reply`,
      );
      this.#close();
    });
  }

  /** Every item the producer counted has arrived (some may still be buffered for the loop). */
  #complete(): boolean {
    return this.#count !== undefined && this.#delivered + this.#items.size >= this.#count;
  }

  /** The first missing item, counted from the next the loop takes. */
  #missingFrom(): number {
    let k = 0;
    while (this.#items.has(this.#delivered + k)) k++;
    return k;
  }

  #close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#graceTimer?.cancel();
    // Cancelled before the actor said where to send the cancel: listen for that until its turn ends.
    if (this.#cancelRequested && this.#ctl === undefined) {
      const unsubscribe = () => this.#sub.unsubscribe();
      this.result.then(unsubscribe, unsubscribe);
    } else this.#sub.unsubscribe();
    this.#wake?.();
  }
}

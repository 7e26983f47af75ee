import { StreamCancelled } from '@stitch/runtime';

/** One item an op produced for the caller while the request ran: decode's `{ token }`, detokenize's `{ text }`. */
export interface StreamEvent {
  opId: string;
  item: unknown;
}

/**
 * A request whose streaming ops' items reach the caller as they are made: `for await` over it, then
 * `result` for the whole answer. Reading slowly slows the ops (a bounded buffer in between); breaking
 * out of the loop or `cancel()` cancels the request at every op still working on it.
 */
export interface RequestStream<R> extends AsyncIterable<StreamEvent> {
  /** The whole answer (GraphRunner: a RequestResult). */
  readonly result: Promise<R>;
  cancel(): void;
}

export interface StreamRunOptions {
  /** Cancels the request. */
  signal?: AbortSignal;
  /**
   * Stream the text too (detokenize asked for partial results as tokens arrive); false: the tokens
   * only, detokenize runs once at the end (less work per token). @default true
   */
  text?: boolean;
}

/** Events buffered between the ops and a slow reader; producers wait beyond it. */
const BUFFERED = 64;

/** The runner's side: where it puts events, and the signal that says the caller cancelled. */
export interface EventSink {
  push(event: StreamEvent): Promise<void>;
  readonly signal: AbortSignal;
}

/** A bounded queue of events from the runner to the caller's loop, ending with the request. */
export class EventChannel<R> implements EventSink, RequestStream<R> {
  readonly #abort = new AbortController();
  readonly #events: StreamEvent[] = [];
  /** Producers waiting for room, all woken when some is made: each checks again, in the order they came. */
  readonly #waitingForRoom: (() => void)[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  #error: unknown;
  result!: Promise<R>;

  constructor(options: StreamRunOptions) {
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) this.cancel();
      else signal.addEventListener('abort', () => this.cancel(), { once: true });
    }
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Starts the request; its end (or failure) ends the iteration after the events before it. */
  run(request: (sink: EventSink) => Promise<R>): this {
    this.result = request(this);
    this.result.then(
      () => this.#end(undefined),
      (err) => this.#end(err),
    );
    return this;
  }

  async push(event: StreamEvent): Promise<void> {
    this.#abort.signal.throwIfAborted();
    while (this.#events.length >= BUFFERED) {
      await new Promise<void>((resolve) => {
        this.#waitingForRoom.push(resolve);
      });
      this.#abort.signal.throwIfAborted();
    }
    this.#events.push(event);
    this.#wake?.();
  }

  cancel(): void {
    if (this.#abort.signal.aborted) return;
    this.#abort.abort(new StreamCancelled('the caller cancelled the request'));
    this.#wakeProducers();
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamEvent> {
    let finished = false;
    try {
      for (;;) {
        this.#abort.signal.throwIfAborted();
        const next = this.#events.shift();
        if (next) {
          this.#wakeProducers();
          yield next;
          continue;
        }
        if (this.#ended) {
          finished = true;
          if (this.#error !== undefined) throw this.#error;
          return;
        }
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = undefined;
      }
    } finally {
      if (!finished) this.cancel();
    }
  }

  #wakeProducers(): void {
    for (const resolve of this.#waitingForRoom.splice(0)) resolve();
  }

  #end(err: unknown): void {
    this.#ended = true;
    this.#error = err;
    this.#wake?.();
  }
}

/**
 * Feeds a streamed op's items to one downstream op in PARTIAL_OPS as they arrive: at most one
 * `partial` ask in flight, the next one carrying every item so far; passes on what the op's output
 * grew by. The op's recorded run (asked once the stream ended) is the answer; the last event is the
 * rest of it, so the events together spell exactly that answer.
 */
export class PartialPipe {
  readonly #items: number[] = [];
  #emitted = '';
  #inFlight: Promise<void> | undefined;
  #stale = false;
  /** Partial asks that failed (the recorded run still answers). */
  failures = 0;

  constructor(
    readonly opId: string,
    /** The streaming op whose items feed it. */
    readonly source: string,
    private readonly field: string,
    private readonly ask: (items: number[]) => Promise<Record<string, unknown>>,
    private readonly sink: EventSink,
  ) {}

  feed(item: unknown): void {
    const token = (item as { token?: unknown } | null)?.token;
    if (typeof token !== 'number') return;
    this.#items.push(token);
    if (this.#inFlight) this.#stale = true;
    // A cancelled request's push rejects: the recorded run's failure tells the caller, not this.
    else this.#inFlight = this.#next().catch(() => undefined);
  }

  /** Waits for the partial ask in flight, so that no partial event comes after the final one. */
  async settled(): Promise<void> {
    while (this.#inFlight) await this.#inFlight;
  }

  /** The recorded run's output: what is left of it after the partial events. */
  async finish(out: Record<string, unknown>): Promise<void> {
    await this.settled();
    const text = out[this.field];
    if (typeof text === 'string' && text.startsWith(this.#emitted) && text.length > this.#emitted.length)
      await this.sink.push({ opId: this.opId, item: { text: text.slice(this.#emitted.length) } });
  }

  async #next(): Promise<void> {
    try {
      do {
        this.#stale = false;
        let out: Record<string, unknown>;
        try {
          out = await this.ask([...this.#items]);
        } catch {
          this.failures++;
          continue;
        }
        const full = out[this.field];
        // A character cut in half at the end of a prefix decodes to U+FFFD: held back until complete.
        const text = typeof full === 'string' ? full.replace(/\uFFFD+$/, '') : '';
        if (text.startsWith(this.#emitted) && text.length > this.#emitted.length) {
          const delta = text.slice(this.#emitted.length);
          this.#emitted = text;
          await this.sink.push({ opId: this.opId, item: { text: delta } });
        }
      } while (this.#stale && !this.sink.signal.aborted);
    } finally {
      this.#inFlight = undefined;
    }
  }
}

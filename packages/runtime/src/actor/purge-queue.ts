import type { JetStreamManager } from '@nats-io/jetstream';

/**
 * Purge requests one connection keeps in flight at most. A purge is a JetStream API request, and the
 * server answers those one at a time: a busy actor's chunk purges (three per commit at 1 MiB) sent at
 * once queued every other request behind them — its neighbours' record reads and consumers included —
 * and stalled their migrations by up to 360 ms.
 */
const IN_FLIGHT = 2;

/**
 * Purges waiting, at most. Past it a purge is not made: the chunk stays until a load of its actor
 * sweeps what no record names.
 */
const MAX_WAITING = 100_000;

interface Waiting {
  stream: string;
  subject: string;
  report: (err: unknown) => void;
}

/** Purges of one subject each, IN_FLIGHT at a time, in the order asked. */
export class PurgeQueue {
  #waiting: Waiting[] = [];
  #head = 0;
  #inFlight = 0;
  #notMade = 0;

  constructor(private readonly jsm: JetStreamManager) {}

  /** Purges `subject` from `stream` when its turn comes; `report` hears of a failure. */
  purge(stream: string, subject: string, report: (err: unknown) => void): void {
    if (this.waiting >= MAX_WAITING) {
      if (this.#notMade++ === 0)
        report(new Error(`more than ${MAX_WAITING} purges wait: the next ones are left to a sweep`));
      return;
    }
    this.#waiting.push({ stream, subject, report });
    this.#next();
  }

  /** Purges not sent yet. */
  get waiting(): number {
    return this.#waiting.length - this.#head;
  }

  /** Purges not made because too many waited. */
  get notMade(): number {
    return this.#notMade;
  }

  #next(): void {
    while (this.#inFlight < IN_FLIGHT && this.#head < this.#waiting.length) {
      const { stream, subject, report } = this.#waiting[this.#head++]!;
      // Drop what was sent once it is most of the array, so that it never outgrows MAX_WAITING twice.
      if (this.#head >= 1024 && this.#head * 2 >= this.#waiting.length) {
        this.#waiting = this.#waiting.slice(this.#head);
        this.#head = 0;
      }
      this.#inFlight++;
      this.jsm.streams
        .purge(stream, { filter: subject })
        .catch((err) => report(err))
        .finally(() => {
          this.#inFlight--;
          this.#next();
        });
    }
  }
}

const queues = new WeakMap<JetStreamManager, PurgeQueue>();

/** The purge queue of the connection `jsm` speaks through (one per connection). */
export function purgeQueue(jsm: JetStreamManager): PurgeQueue {
  let q = queues.get(jsm);
  if (!q) {
    q = new PurgeQueue(jsm);
    queues.set(jsm, q);
  }
  return q;
}

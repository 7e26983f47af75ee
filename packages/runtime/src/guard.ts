import type { LogFn } from './log.js';

/** One log line per boundary per this many ms at most: a flood of bad input must not flood the log. */
const LOG_EVERY_MS = 1000;

/**
 * The boundary between the runtime and everything that arrives from outside (subscription callbacks,
 * KV watches, consumers). Nothing thrown past it escapes into nats.js, whose reader closes the whole
 * connection on a throw: it is counted per boundary and logged at most once a second per boundary,
 * with the number of failures since the last line.
 */
export class Guard {
  readonly #log: LogFn;
  readonly #now: () => number;
  readonly #counts = new Map<string, number>();
  readonly #lastLog = new Map<string, { at: number; count: number }>();

  constructor(log: LogFn, now: () => number = Date.now) {
    this.#log = log;
    this.#now = now;
  }

  /** Failures caught so far, by boundary. */
  counts(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }

  /** Counts one failure at `where` and logs it unless `where` logged within the last second. */
  report(where: string, error: unknown, fields?: Record<string, unknown>): void {
    const count = (this.#counts.get(where) ?? 0) + 1;
    this.#counts.set(where, count);
    const now = this.#now();
    const last = this.#lastLog.get(where);
    if (last && now - last.at < LOG_EVERY_MS) return;
    this.#lastLog.set(where, { at: now, count });
    try {
      this.#log('warn', `dropped hostile or broken input at ${where}`, {
        ...fields,
        error: error instanceof Error ? error.message : String(error),
        failures: count,
        sinceLastLog: count - (last?.count ?? 0),
      });
    } catch {
      // A throwing log function must not undo the guard.
    }
  }

  /** Runs `fn`; anything it throws, or a promise it returns rejects with, is reported at `where`. */
  run(where: string, fn: () => unknown, fields?: Record<string, unknown>): void {
    try {
      this.#awaited(where, fn(), fields);
    } catch (err) {
      this.report(where, err, fields);
    }
  }

  /** A nats.js subscription callback that hands each message to `fn` and lets nothing escape. */
  callback<M>(where: string, fn: (m: M) => unknown): (err: Error | null, m: M) => void {
    // No closure per message: this runs for every message an actor or caller receives.
    return (err, m) => {
      if (err) {
        this.report(where, err);
        return;
      }
      try {
        this.#awaited(where, fn(m));
      } catch (error) {
        this.report(where, error);
      }
    };
  }

  /** Reports a rejection of `result` when it is a promise. */
  #awaited(where: string, result: unknown, fields?: Record<string, unknown>): void {
    if (result instanceof Promise) result.catch((err: unknown) => this.report(where, err, fields));
  }

  /**
   * Consumes an async iterator (a KV watch, a consumer) in the background, passing each item to `fn`
   * guarded: one bad item is reported and skipped, the loop goes on. Returns when the iterator ends.
   */
  async each<T>(where: string, items: AsyncIterable<T>, fn: (item: T) => unknown): Promise<void> {
    try {
      for await (const item of items) this.run(where, () => fn(item));
    } catch (err) {
      this.report(where, err);
    }
  }
}

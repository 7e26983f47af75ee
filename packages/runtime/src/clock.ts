/** A pending timer; cancelling twice, or after it fired, does nothing. */
export interface Timer {
  cancel(): void;
}

/**
 * Time as the runtime sees it: every timer of the runtime (supervision backoff, ask deadlines,
 * heartbeats, the membership check, retries) goes through the cluster's clock, so a test can move
 * time on instead of waiting. Timers never keep the process alive on their own.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Calls `fn` once, `ms` from now. */
  after(ms: number, fn: () => void): Timer;
  /** Calls `fn` every `ms` until cancelled. */
  every(ms: number, fn: () => void): Timer;
}

/** The real clock: `Date.now` and unref'd Node timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  every(ms, fn) {
    const t = setInterval(fn, ms);
    t.unref();
    return { cancel: () => clearInterval(t) };
  },
};

/** Resolves after `ms` on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.after(ms, resolve));
}

/**
 * One timer for many waits: it fires at the earliest deadline, ends each wait past its own and
 * re-arms for the earliest left, so that a wait costs no timer of its own.
 */
export class DeadlineSweep<T extends { deadline: number }> {
  readonly #clock: Clock;
  readonly #waits: () => Iterable<T>;
  readonly #expire: (wait: T) => void;
  #timer: Timer | undefined;
  #at = Number.POSITIVE_INFINITY;

  /** `waits`: those under way; `expire` ends one past its deadline (and takes it out of them). */
  constructor(clock: Clock, waits: () => Iterable<T>, expire: (wait: T) => void) {
    this.#clock = clock;
    this.#waits = waits;
    this.#expire = expire;
  }

  /** A wait until `deadline` began. */
  added(deadline: number): void {
    if (deadline < this.#at) this.#arm(deadline);
  }

  /** No wait is under way any more. */
  cancel(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#at = Number.POSITIVE_INFINITY;
  }

  #arm(at: number): void {
    this.#timer?.cancel();
    this.#at = at;
    this.#timer = this.#clock.after(Math.max(0, at - this.#clock.now()), () => this.#sweep());
  }

  #sweep(): void {
    this.#timer = undefined;
    this.#at = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    let next = Number.POSITIVE_INFINITY;
    for (const w of this.#waits()) {
      if (w.deadline <= now) this.#expire(w);
      else if (w.deadline < next) next = w.deadline;
    }
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
  }
}

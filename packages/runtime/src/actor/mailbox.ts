import { type LatencyStats, latencyStats, toMicros } from '../latency-stats.js';

/** Limits of one actor's mailbox. */
export interface MailboxOptions {
  /** Messages queued or running at once; one more is refused with `Overloaded`. @default 1024 */
  capacity?: number;
  /** Messages one sender may have queued or running at once. @default capacity / 4 (at least 1) */
  perCaller?: number;
}

export interface MailboxMetrics {
  depth: number;
  running: number;
  maxDepth: number;
  /** Messages queued since the activation started (arrivals that were not rejected); set-up turns are left out of this and the counters below. */
  accepted: number;
  processed: number;
  rejected: number;
  /**
   * Messages refused before the mailbox because the node shed load (see NodeOptions.shedding): they
   * never reached the queue, so `accepted` leaves them out. Absent from a node of an earlier version.
   */
  shed?: number;
  /** Handler time of every finished turn, summed, ms (its change over a window ÷ the window is the utilisation). */
  busyMs: number;
  /** Handler duration of recent turns, ms. */
  turnMs: LatencyStats;
  /** Time recent messages waited in the queue, ms. */
  waitMs: LatencyStats;
}

export type Rejection = 'full' | 'caller';

interface Item<T> {
  value: T;
  caller: string;
  queuedAt: number;
  /** Counted in the load counters (not a set-up turn). */
  metered: boolean;
}

const SAMPLES = 1024;
/** Size of the per-sender table below which senders with nothing in the mailbox are kept. */
const IDLE_SENDERS_KEPT = 256;

/**
 * Bounded FIFO that runs `concurrency` turns at a time (1 = turn-based). It never grows past its
 * capacity: `offer` refuses at once, so the sender can be told `Overloaded` instead of waiting.
 */
export class Mailbox<T> {
  readonly capacity: number;
  readonly perCaller: number;
  readonly #concurrency: number;
  readonly #run: (value: T) => void | Promise<void>;
  readonly #metered: (value: T) => boolean;
  readonly #queue: Item<T>[] = [];
  #head = 0;
  /** Messages held per sender; a mutable count, so a message costs one lookup and no Map write. */
  readonly #perCaller = new Map<string, { n: number }>();
  #sweepAbove = IDLE_SENDERS_KEPT;
  #running = 0;
  #paused = false;
  #pumping = false;
  #idle: (() => void)[] = [];
  #settled: (() => void)[] = [];
  /** Steps waiting for a turn boundary; while any waits, no turn starts. */
  #atRest: (() => void)[] = [];
  #maxDepth = 0;
  #accepted = 0;
  #processed = 0;
  #rejected = 0;
  #shed = 0;
  #busyMs = 0;
  readonly #turns = new Float64Array(SAMPLES);
  readonly #waits = new Float64Array(SAMPLES);
  #samples = 0;

  constructor(
    limits: Required<MailboxOptions>,
    concurrency: number,
    run: (value: T) => void | Promise<void>,
    metered: (value: T) => boolean = () => true,
  ) {
    this.capacity = limits.capacity;
    this.perCaller = limits.perCaller;
    this.#concurrency = concurrency;
    this.#run = run;
    this.#metered = metered;
  }

  get depth(): number {
    return this.#queue.length - this.#head;
  }

  /** Queues `value`, or says why it cannot. `force` skips the limits (durable mode is bounded upstream). */
  offer(value: T, caller: string, force = false): Rejection | undefined {
    let held = this.#perCaller.get(caller);
    if (!force) {
      if (this.depth + this.#running >= this.capacity) return this.#reject('full');
      if (held && held.n >= this.perCaller) return this.#reject('caller');
    }
    if (!held) {
      held = { n: 0 };
      this.#perCaller.set(caller, held);
    }
    held.n++;
    const metered = this.#metered(value);
    if (metered) this.#accepted++;
    this.#queue.push({ value, caller, queuedAt: performance.now(), metered });
    this.#maxDepth = Math.max(this.#maxDepth, this.depth);
    this.#pump();
    return undefined;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#pump();
  }

  /** The queued (not running) messages, in order, left where they are. */
  *peek(): IterableIterator<T> {
    for (let i = this.#head; i < this.#queue.length; i++) yield this.#queue[i]!.value;
  }

  /** Removes every queued (not running) message and returns them. */
  clear(): T[] {
    const items = this.#queue.slice(this.#head);
    this.#queue.length = 0;
    this.#head = 0;
    for (const item of items) this.#release(item.caller);
    return items.map((i) => i.value);
  }

  /** Removes the queued (not running) messages `pick` chooses, keeping the others in their order. */
  removeWhere(pick: (value: T) => boolean): T[] {
    const kept: Item<T>[] = [];
    const removed: T[] = [];
    for (let i = this.#head; i < this.#queue.length; i++) {
      const item = this.#queue[i]!;
      if (pick(item.value)) {
        removed.push(item.value);
        this.#release(item.caller);
      } else kept.push(item);
    }
    this.#queue.length = 0;
    this.#queue.push(...kept);
    this.#head = 0;
    return removed;
  }

  /**
   * Runs `step` synchronously at a turn boundary: now when no turn is running, else as the last
   * running turn ends, before the next one starts (no turn starts while a step waits). A step that
   * throws is the caller's to catch; it does not stop the mailbox.
   */
  atRest(step: () => void): void {
    if (this.#running === 0) {
      step();
      return;
    }
    this.#atRest.push(step);
  }

  /** Resolves once no turn is running (a paused mailbox then stays at a turn boundary). */
  settled(): Promise<void> {
    if (this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#settled.push(resolve));
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.depth === 0 && this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  metrics(): MailboxMetrics {
    const n = Math.min(this.#samples, SAMPLES);
    return {
      depth: this.depth,
      running: this.#running,
      maxDepth: this.#maxDepth,
      accepted: this.#accepted,
      processed: this.#processed,
      rejected: this.#rejected,
      shed: this.#shed,
      busyMs: toMicros(this.#busyMs),
      turnMs: latencyStats(this.#turns.subarray(0, n)),
      waitMs: latencyStats(this.#waits.subarray(0, n)),
    };
  }

  /** Counts one message the node refused before it reached this mailbox because it sheds load. */
  countShed(): void {
    this.#shed++;
  }

  #reject(why: Rejection): Rejection {
    this.#rejected++;
    return why;
  }

  // A turn whose handler is synchronous completes inside this loop, so a burst of messages read from
  // one socket chunk is answered in the same tick and nats.js writes all the replies in one flush.
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (
        !this.#paused &&
        this.#atRest.length === 0 &&
        this.#running < this.#concurrency &&
        this.depth > 0
      ) {
        const item = this.#queue[this.#head]!;
        this.#head++;
        if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
          this.#queue.splice(0, this.#head);
          this.#head = 0;
        }
        this.#running++;
        this.#turn(item);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #turn(item: Item<T>): void {
    const started = performance.now();
    let pending: void | Promise<void>;
    try {
      pending = this.#run(item.value);
    } catch {
      pending = undefined;
    }
    if (pending) {
      const finish = () => this.#finish(item, started);
      pending.then(finish, finish);
    } else {
      this.#finish(item, started);
    }
  }

  #finish(item: Item<T>, started: number): void {
    if (item.metered) {
      const slot = this.#samples++ % SAMPLES;
      const turnMs = performance.now() - started;
      this.#busyMs += turnMs;
      this.#turns[slot] = turnMs;
      this.#waits[slot] = started - item.queuedAt;
      this.#processed++;
    }
    this.#running--;
    this.#release(item.caller);
    if (this.#running === 0)
      for (const step of this.#atRest.splice(0))
        try {
          step();
        } catch {
          // the step's owner reports its own failures
        }
    this.#pump();
    if (this.#running === 0) for (const wake of this.#settled.splice(0)) wake();
    if (this.depth === 0 && this.#running === 0) for (const wake of this.#idle.splice(0)) wake();
  }

  // A sender's entry stays at 0 instead of being deleted: a Map that gains and loses a key per
  // message is rehashed all the time (see pending-table.ts for what that costs). Idle senders are
  // dropped in one sweep once the table passes #sweepAbove, which then sits at twice what the sweep
  // left, so many busy senders do not make every release sweep.
  #release(caller: string): void {
    const held = this.#perCaller.get(caller);
    if (held) held.n--;
    if (this.#perCaller.size > this.#sweepAbove) {
      for (const [c, h] of this.#perCaller) if (h.n <= 0) this.#perCaller.delete(c);
      this.#sweepAbove = Math.max(IDLE_SENDERS_KEPT, 2 * this.#perCaller.size);
    }
  }
}

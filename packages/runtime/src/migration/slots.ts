import type { Clock, Timer } from '../clock.js';
import { InvalidOptions, Overloaded } from '../errors.js';

export interface MigrationSlotLimits {
  /** Migrations into the node at once. */
  max: number;
  /** Begins waiting for a place, at most; one past them is refused at once. */
  maxWaiting: number;
  /**
   * How long a begin waits for a place before it is refused: shorter than a source's step timeout,
   * so that the source hears the refusal rather than a timeout.
   */
  waitMs: number;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: Timer;
}

/**
 * The places for migrations into a node. A begin past them waits its turn, first come first served,
 * instead of being refused: many moves into one node at once (a drain, a coordinator's re-plan, a
 * library caller's loop of `migrate`) then queue rather than fail. The queue is bounded in length and
 * time, and a waiting begin is keyed by its migration so that the source's abort takes it out.
 */
export class MigrationSlots {
  #taken = 0;
  readonly #waiting = new Map<string, Waiter>();

  constructor(
    private readonly limits: MigrationSlotLimits,
    private readonly clock: Clock,
  ) {}

  /** Begins waiting for a place now. */
  get waiting(): number {
    return this.#waiting.size;
  }

  isWaiting(migration: string): boolean {
    return this.#waiting.has(migration);
  }

  /** Takes a place when one is free and nobody waits for one (give it back with `give`). */
  tryTake(): boolean {
    if (this.#taken >= this.limits.max || this.#waiting.size > 0) return false;
    this.#taken++;
    return true;
  }

  /** Waits for a place for `migration` (give it back with `give`); rejects with Overloaded. */
  wait(migration: string): Promise<void> {
    const { max, maxWaiting, waitMs } = this.limits;
    if (this.#waiting.size >= maxWaiting)
      return Promise.reject(
        new Overloaded(`this node takes ${max} migrations at once and ${maxWaiting} waiting for a place`),
      );
    return new Promise((resolve, reject) => {
      const timer = this.clock.after(waitMs, () => {
        this.#waiting.delete(migration);
        reject(
          new Overloaded(`this node takes ${max} migrations at once and none ended within ${waitMs} ms`),
        );
      });
      this.#waiting.set(migration, { resolve, reject, timer });
    });
  }

  /** Gives a place back: it passes straight to the first waiter, so that a newcomer cannot overtake it. */
  give(): void {
    for (const [migration, next] of this.#waiting) {
      this.#waiting.delete(migration);
      next.timer.cancel();
      next.resolve();
      return;
    }
    this.#taken--;
  }

  /** The source aborted `migration` while it waited: it leaves the queue. */
  cancel(migration: string): void {
    this.#leave(
      migration,
      new InvalidOptions(`migration ${migration} was aborted while it waited for a place`),
    );
  }

  /** The node is closing: every waiting begin is refused. */
  close(): void {
    for (const migration of [...this.#waiting.keys()])
      this.#leave(migration, new InvalidOptions('this node is closing: it takes no migrations'));
  }

  #leave(migration: string, err: Error): void {
    const w = this.#waiting.get(migration);
    if (!w) return;
    this.#waiting.delete(migration);
    w.timer.cancel();
    w.reject(err);
  }
}

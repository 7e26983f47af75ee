import type { NatsConnection } from '@nats-io/transport-node';
import type { Clock, Timer } from '../clock.js';
import type { Guard } from '../guard.js';

/**
 * A cluster connection's reconnects (to its server or another of the cluster): counted, and told to
 * listeners. Core NATS is at most once, so what was sent to or by this connection while it was away
 * may be gone: a waiting durable ask is sent again, a node sends its recent durable answers again.
 * It also knows since when the connection is down, for a close not to wait on a server that is gone.
 */
export class Reconnects {
  #count = 0;
  /** Clock time the connection went down; undefined while it is up. */
  #downSince: number | undefined;
  readonly #listeners = new Set<() => void>();

  constructor(
    nc: NatsConnection,
    guard: Guard,
    private readonly clock: Clock,
  ) {
    void guard.each('connection status', nc.status(), (s) => {
      if (s.type === 'disconnect') this.#downSince ??= this.clock.now();
      if (s.type !== 'reconnect') return;
      this.#downSince = undefined;
      this.#count++;
      for (const listener of this.#listeners) guard.run('reconnect listener', listener);
    });
  }

  get count(): number {
    return this.#count;
  }

  /** Calls `listener` after each reconnect until the returned function is called. */
  on(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * `reached` resolves once the connection has been down `ms` in a row (at once if it has been
   * already); `cancel` stops watching (`reached` then never resolves).
   */
  downFor(ms: number): { reached: Promise<void>; cancel(): void } {
    let timer: Timer | undefined;
    const reached = new Promise<void>((resolve) => {
      const check = () => {
        if (this.#downSince === undefined || this.clock.now() - this.#downSince < ms) return;
        timer?.cancel();
        resolve();
      };
      timer = this.clock.every(Math.min(Math.max(ms, 10), 250), check);
      check();
    });
    return { reached, cancel: () => timer?.cancel() };
  }
}

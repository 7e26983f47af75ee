import type { NatsConnection } from '@nats-io/transport-node';
import type { Guard } from '../guard.js';

/**
 * A cluster connection's reconnects (to its server or another of the cluster): counted, and told to
 * listeners. Core NATS is at most once, so what was sent to or by this connection while it was away
 * may be gone: a waiting durable ask is sent again, a node sends its recent durable answers again.
 */
export class Reconnects {
  #count = 0;
  readonly #listeners = new Set<() => void>();

  constructor(nc: NatsConnection, guard: Guard) {
    void guard.each('connection status', nc.status(), (s) => {
      if (s.type !== 'reconnect') return;
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
}

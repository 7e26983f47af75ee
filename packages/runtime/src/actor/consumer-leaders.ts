import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Guard } from '../guard.js';

// On a cluster JetStream elects a new leader for a durable consumer when the server leading it stops
// or steps down. A pull waiting on the old leader is then never answered, and nats.js notices only
// when two idle heartbeats are missed (seconds after the election). The server announces each
// election on an advisory subject, so an actor whose pull was lost can pull again at once.

/** Advisories of one stream's consumers getting a new leader, handed to whoever watches that consumer. */
export class ConsumerLeaders {
  readonly #listeners = new Map<string, () => void>();
  readonly #sub: Subscription;

  constructor(nc: NatsConnection, stream: string, guard: Guard) {
    const prefix = `$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.${stream}.`;
    this.#sub = nc.subscribe(`${prefix}*`, {
      callback: guard.callback('consumer leader advisory', (m: Msg) => {
        // The subject names the consumer (one nobody here watches is ignored); the payload adds
        // nothing a watcher needs.
        this.#listeners.get(m.subject.slice(prefix.length))?.();
      }),
    });
  }

  /**
   * Calls `listener` each time consumer `name` gets a new leader, until the returned function is
   * called. One listener per consumer: an actor has one activation, and a later watch replaces it.
   */
  watch(name: string, listener: () => void): () => void {
    this.#listeners.set(name, listener);
    return () => {
      if (this.#listeners.get(name) === listener) this.#listeners.delete(name);
    };
  }

  close(): Promise<void> {
    this.#listeners.clear();
    return this.#sub.drain().catch(() => undefined);
  }
}

import { nuid } from '@nats-io/transport-node';
import type { AskOptions, RefTransport, TellOptions } from '../actor/definition.js';
import { type Clock, sleep } from '../clock.js';
import { ClusterClosed, NoResponders, Timeout } from '../errors.js';
import type { ActorStream, StreamOptions } from '../stream/reader.js';
import type { Activator } from './activator.js';
import type { Directory } from './directory.js';
import type { ActorSender } from './sender.js';

/**
 * The transport of refs from `cluster.get`: virtual actors in the style of Orleans grains. A fast ask
 * that finds no activation (no-responders: nothing received it, so resending cannot apply it twice)
 * activates the actor and is sent again. Tells and durable asks activate first when the directory
 * knows no activation; a durable ask that times out activates (taking over from a dead owner) and asks
 * again with the same idempotency key, which the stream and the actor deduplicate.
 */
/** Sends of one fast ask that may meet no-responders, each after an activation (and a growing pause). */
const ACTIVATION_ATTEMPTS = 5;

export class VirtualTransport implements RefTransport {
  readonly #sender: ActorSender;
  readonly #activator: Activator;
  readonly #directory: Directory;
  readonly #clock: Clock;
  readonly #isClosed: () => boolean;

  constructor(
    sender: ActorSender,
    activator: Activator,
    directory: Directory,
    clock: Clock,
    isClosed: () => boolean,
  ) {
    this.#sender = sender;
    this.#activator = activator;
    this.#directory = directory;
    this.#clock = clock;
    this.#isClosed = isClosed;
  }

  async ask(type: string, id: string, msg: unknown, options: AskOptions): Promise<unknown> {
    if (this.#isClosed()) throw new ClusterClosed();
    if (options.mode === 'durable') return this.#askDurable(type, id, msg, options);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#sender.ask(type, id, msg, options);
      } catch (err) {
        if (!(err instanceof NoResponders) || err.remote || attempt >= ACTIVATION_ATTEMPTS) throw err;
      }
      // Not active, or active elsewhere but not subscribed yet (another caller's activation still starting).
      if (attempt > 1) await sleep(this.#clock, 10 * 2 ** attempt);
      await this.#activator.activate(type, id);
    }
  }

  stream(type: string, id: string, msg: unknown, options: StreamOptions): ActorStream {
    return this.#sender.stream(msg, options, (m, o) => this.ask(type, id, m, o));
  }

  async tell(type: string, id: string, msg: unknown, options: TellOptions): Promise<void> {
    if (this.#isClosed()) throw new ClusterClosed();
    await this.#ensureActive(type, id);
    return this.#sender.tell(type, id, msg, options);
  }

  async #askDurable(type: string, id: string, msg: unknown, options: AskOptions): Promise<unknown> {
    await this.#ensureActive(type, id);
    const keyed = options.idempotencyKey ? options : { ...options, idempotencyKey: nuid.next() };
    try {
      return await this.#sender.ask(type, id, msg, keyed);
    } catch (err) {
      if (!(err instanceof Timeout) || err.remote) throw err;
      await this.#activator.activate(type, id);
      return this.#sender.ask(type, id, msg, keyed);
    }
  }

  async #ensureActive(type: string, id: string): Promise<void> {
    const key = this.#sender.route(type, id).key;
    if (!(await this.#directory.locate(key))) await this.#activator.activate(type, id);
  }
}

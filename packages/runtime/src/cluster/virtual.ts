import { nuid, TimeoutError } from '@nats-io/transport-node';
import type { AskOptions, RefTransport, TellOptions } from '../actor/definition.js';
import { type Clock, sleep } from '../clock.js';
import { ClusterClosed, NoResponders, Timeout } from '../errors.js';
import type { ActorStream, StreamOptions } from '../stream/reader.js';
import type { Activator } from './activator.js';
import type { Directory, Location } from './directory.js';
import type { ActorSender } from './sender.js';

/** Sends of one fast ask that may meet no-responders, each after an activation (and a growing pause). */
const ACTIVATION_ATTEMPTS = 5;
/**
 * How long a durable ask waits for its answer before it asks whether the actor's node still hosts it,
 * and again after every answer that it does. A durable answer takes a few ms on one server and
 * 5–15 ms on a 3-server cluster; under load or during a migration it can take longer, and then the
 * question costs one small request per actor and period, however many asks wait on it.
 */
const HOLDER_CHECK_MS = 100;
/** Actors whose last holder check is remembered; past this the memory starts over, so it stays small. */
const MAX_HOLDER_CHECKS = 10_000;

/** nats.js's timeout of a JetStream API call (its default; the runtime does not change it). */
const JS_API_TIMEOUT_MS = 5000;

/** Whether the node named in a directory entry still runs that activation (see isHeldElsewhere). */
export type HolderCheck = (key: string, held: Location) => Promise<boolean>;

/**
 * The transport of refs from `cluster.get`: virtual actors in the style of Orleans grains. A fast ask
 * that finds no activation (no-responders: nothing received it, so resending cannot apply it twice)
 * activates the actor and is sent again. Tells and durable asks activate first when the directory
 * knows no activation. A durable ask whose answer is late asks the holder whether it still hosts the
 * actor: a node that is gone (the server answers no-responders the moment its connection drops, long
 * before its heartbeat expires) is taken over at once, and the new activation answers the message
 * from the stream. A durable ask that times out activates (taking over from a silent owner) and asks
 * again with the same idempotency key, which the stream and the actor deduplicate.
 */

export class VirtualTransport implements RefTransport {
  readonly #sender: ActorSender;
  readonly #activator: Activator;
  readonly #directory: Directory;
  readonly #clock: Clock;
  readonly #isClosed: () => boolean;
  readonly #isHeld: HolderCheck;
  readonly #reconnects: () => number;
  /** An ask's timeout when it names none (ConnectOptions.askTimeoutMs); durable tells wait as long. */
  readonly #askTimeoutMs: number;
  /** The holder check of each actor in flight or just answered, shared by every ask waiting on it. */
  readonly #holderChecks = new Map<string, { at: number; held: Promise<boolean> }>();
  #takeOvers = 0;
  #asksAgain = 0;
  /** Asks sent again after their actor was activated (not active, or its node gone). */
  #afterActivation = 0;

  constructor(
    sender: ActorSender,
    activator: Activator,
    directory: Directory,
    clock: Clock,
    isClosed: () => boolean,
    isHeld: HolderCheck,
    reconnects: () => number,
    askTimeoutMs: number,
  ) {
    this.#sender = sender;
    this.#activator = activator;
    this.#directory = directory;
    this.#clock = clock;
    this.#isClosed = isClosed;
    this.#isHeld = isHeld;
    this.#reconnects = reconnects;
    this.#askTimeoutMs = askTimeoutMs;
  }

  /** Activations started because a durable ask found its actor's node gone (before its timeout). */
  get takeOvers(): number {
    return this.#takeOvers;
  }

  /** Durable asks sent again (same key) because this connection reconnected while they waited. */
  get asksAgain(): number {
    return this.#asksAgain;
  }

  /** Every ask sent again: after a reconnect (asksAgain), or once its actor was activated. */
  get sentAgain(): number {
    return this.#asksAgain + this.#afterActivation;
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
      await this.#activateWithin(type, id, options.timeoutMs ?? this.#askTimeoutMs);
      this.#afterActivation++;
    }
  }

  stream(type: string, id: string, msg: unknown, options: StreamOptions): ActorStream {
    return this.#sender.stream(msg, options, (m, o) => this.ask(type, id, m, o));
  }

  async tell(type: string, id: string, msg: unknown, options: TellOptions): Promise<void> {
    if (this.#isClosed()) throw new ClusterClosed();
    await this.#ensureActive(type, id, this.#askTimeoutMs);
    return this.#sender.tell(type, id, msg, options);
  }

  /**
   * A durable ask: the actor activated first when the directory knows no activation; on a timeout,
   * or no-responders for the outcome of a repeat, activated (taking over) and asked again once with
   * the same key.
   */
  async #askDurable(type: string, id: string, msg: unknown, options: AskOptions): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.#askTimeoutMs;
    await this.#ensureActive(type, id, timeoutMs);
    const keyed = options.idempotencyKey ? options : { ...options, idempotencyKey: nuid.next() };
    const send = () => this.#sender.ask(type, id, msg, keyed);
    try {
      return await this.#watched(type, id, send);
    } catch (err) {
      // No-responders: the stream dropped a repeat of the key and the actor asked for its outcome is
      // not active (its node is gone). Either way the message is in the stream or answered once.
      if (!(err instanceof Timeout || err instanceof NoResponders) || err.remote) throw err;
      if (err instanceof NoResponders) this.#directory.forget(this.#sender.route(type, id).key);
      await this.#activateWithin(type, id, timeoutMs);
      this.#afterActivation++;
      return send();
    }
  }

  /**
   * Sends a durable ask and, while it waits, every HOLDER_CHECK_MS: when this connection has
   * reconnected since, an answer sent meanwhile found no one listening, so the ask is sent again with
   * the same key (the stream drops the repeat, the actor answers from its record once committed);
   * when the actor's holder no longer runs it, activates it elsewhere once (the message is in the
   * stream: the new activation reads it and answers the reply subject the ask waits on). The first
   * answer wins; whatever goes wrong here leaves the ask to its timeout, as without the checks.
   */
  #watched(type: string, id: string, send: () => Promise<unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let pending = true;
      const answered = (value: unknown) => {
        pending = false;
        resolve(value);
      };
      send().then(answered, (err: unknown) => {
        pending = false;
        reject(err);
      });
      const key = this.#sender.route(type, id).key;
      let reconnects = this.#reconnects();
      let takenOver = false;
      const watch = async () => {
        while (pending && !this.#isClosed()) {
          await sleep(this.#clock, HOLDER_CHECK_MS);
          if (!pending) return;
          if (this.#reconnects() !== reconnects) {
            reconnects = this.#reconnects();
            this.#asksAgain++;
            send().then(
              (v) => pending && answered(v),
              () => undefined,
            );
            continue;
          }
          if (takenOver) continue;
          const held = await this.#directory.locate(key);
          if (!held || (await this.#holderRuns(key, held))) continue;
          if (!pending) return;
          this.#directory.forget(key);
          this.#takeOvers++;
          takenOver = true;
          await this.#activate(type, id);
        }
      };
      watch().catch(() => undefined);
    });
  }

  /** One check per actor at a time, its answer reused for HOLDER_CHECK_MS by every ask waiting. */
  #holderRuns(key: string, held: Location): Promise<boolean> {
    const last = this.#holderChecks.get(key);
    if (last && this.#clock.now() - last.at < HOLDER_CHECK_MS) return last.held;
    if (this.#holderChecks.size >= MAX_HOLDER_CHECKS) this.#holderChecks.clear();
    // A check that fails says nothing about the holder: it counts as running, as a silent node does.
    const check = this.#isHeld(key, held).catch(() => true);
    // Dated when answered: until then every ask shares the check in flight (a silent node takes 1 s).
    const entry = { at: Number.POSITIVE_INFINITY, held: check };
    this.#holderChecks.set(key, entry);
    void check.then(() => {
      entry.at = this.#clock.now();
    });
    return check;
  }

  async #ensureActive(type: string, id: string, timeoutMs: number): Promise<void> {
    const key = this.#sender.route(type, id).key;
    if (!(await bucketCall(() => this.#directory.locate(key))))
      await this.#activateWithin(type, id, timeoutMs);
  }

  #activate(type: string, id: string): Promise<unknown> {
    return bucketCall(() => this.#activator.activate(type, id));
  }

  /**
   * Activates the actor for a caller that waits at most `timeoutMs` (its ask's timeout): past it the
   * caller gets Timeout, to retry with the same idempotency key, while the activation goes on, shared
   * with the asks that come next (a node that does not answer holds one for 10 s).
   */
  #activateWithin(type: string, id: string, timeoutMs: number): Promise<unknown> {
    const activation = this.#activate(type, id);
    return new Promise((resolve, reject) => {
      const timer = this.#clock.after(timeoutMs, () =>
        reject(new Timeout(`the activation of actor ${type}/${id}`, timeoutMs)),
      );
      activation.then(
        (v) => {
          timer.cancel();
          resolve(v);
        },
        (err: unknown) => {
          timer.cancel();
          reject(err);
        },
      );
    });
  }
}

/**
 * The directory and the node records are KV buckets: a read of one whose leader is being elected (a
 * server lost) times out inside nats.js. Callers get the runtime's Timeout, which they retry with the
 * same idempotency key, not nats.js's error.
 */
async function bucketCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof TimeoutError)
      throw new Timeout("the cluster's directory or node records", JS_API_TIMEOUT_MS);
    throw err;
  }
}

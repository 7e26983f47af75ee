import { checkToken } from '../cluster/names.js';
import { InvalidOptions } from '../errors.js';
import type { ReleaseSlot } from '../node/slots.js';
import type { ReminderOptions } from '../reminders/record.js';
import type { ActorStream, StreamOptions } from '../stream/reader.js';
import type { TurnStream } from '../stream/writer.js';
import type { MailboxMetrics, MailboxOptions } from './mailbox.js';
import { type DurableOptions, type RestartPolicy, resolveActorOptions } from './options.js';
import type { PersistMetrics, PersistPolicy } from './persister.js';
import type { ActorRefData, DeliveryMode } from './ref-data.js';

export type { ActorRefData, DeliveryMode } from './ref-data.js';

/** What a handler knows about the message it is running and the actor it runs in. */
export interface ActorContext {
  readonly self: ActorRef;
  /** The node hosting this activation. */
  readonly nodeId: string;
  readonly traceparent: string;
  readonly sender: string;
  readonly idempotencyKey: string | undefined;
  /** Epoch ms after which the caller stops waiting (Infinity for `tell`). */
  readonly deadline: number;
  /** A live ref from ref data received in a message. */
  ref<D extends AnyActorDefinition = AnyActorDefinition>(data: ActorRefData): ActorRef<D>;
  /**
   * Waits for a free execution slot of this node's device `device` (`cpu`, `cuda:0`, or a modelled
   * device's catalog id) and holds it until the returned function is called: the work of every
   * actor on one device shares its slots, so a busy device queues work instead of running it all
   * at once. Rejects with InvalidOptions for a device the node does not have.
   */
  acquireSlot(device: string): Promise<ReleaseSlot>;
  /**
   * The stream of this turn when the caller asked with `ref.stream()`, else undefined: `write` sends
   * an item as soon as it is made (waiting while the reader is `window` items behind), and
   * `signal` aborts when the reader cancels or its deadline passes — stop the work then.
   */
  readonly stream: TurnStream | undefined;
  /**
   * Stores reminder `name` of this actor (replacing one of that name): see Cluster.setReminder. The
   * reminder outlives the activation; its message comes back as an ask with the idempotency key
   * `reminder:<name>:<due epoch ms>`.
   */
  setReminder(name: string, options: ReminderOptions): Promise<void>;
  /** Removes this actor's reminder `name` (none is no error). */
  cancelReminder(name: string): Promise<void>;
}

// biome-ignore lint/suspicious/noExplicitAny: handler message types are inferred per handler
export type Handler<S> = (state: S, msg: any, ctx: ActorContext) => unknown;

export interface ActorDefinition<S, H extends Record<string, Handler<S>>> {
  /** Registered name of the type; nodes spawn actors by it. */
  type: string;
  /** Initial state of a fresh activation. */
  init?: (id: string) => S | Promise<S>;
  handlers: H;
  /** Serializable picture of the state; taken after every successful turn (see snapshotOnDemand) and persisted in durable mode. */
  snapshot?: (state: S) => unknown;
  /**
   * Take the snapshot only when something needs it, not after every turn: for a large state (an LLM's
   * KV cache) whose encoding would cost more than the turn. A live migration takes one, a stop takes
   * one, and each durable commit takes one at a turn boundary for all the durable turns it commits
   * (one encode per commit, not per message). Such an actor cannot `persist`. After a crash it
   * restarts from the last snapshot taken for its record: durable messages applied since go back to
   * the stream and are applied again; fast-mode effects since are lost. @default false
   */
  snapshotOnDemand?: boolean;
  /** State from a snapshot (restart after a crash, activation on another node). Throwing counts as a crash. */
  restore?: (snapshot: unknown, id: string) => S | Promise<S>;
  /**
   * Runs once for each state an activation lets go of: after a stop (its snapshot saved), once a
   * migration moved the actor away (or a target's move did not commit), when a crash's restart
   * replaces it, and when the actor fails past its restart limit. Release there what the state holds
   * outside the JavaScript heap (a thread, a file handle, a connection): the garbage collector does
   * not see it. A throw or rejection is logged and ignored.
   */
  deactivate?: (state: S) => void | Promise<void>;
  /**
   * Live migration by changes instead of whole images: the image is copied once, then only what
   * changed — in rounds while the actor serves, and once more at the pause — so the pause costs the
   * size of the last change, not of the state. Needs snapshot and restore.
   */
  delta?: DeltaHooks<S>;
  /** Turns run at once; above 1 the actor must be stateless-concurrent. @default 1 */
  concurrency?: number;
  /**
   * Turns of this type that run at once on one node, over all its activations there (Dapr's and
   * Orleans' per-type limit): for actors that share what a node has little of (a rate-limited API, a
   * licence, memory bandwidth). A turn beyond it waits for one of them to end, first come first
   * served; the wait counts with device-slot waits (`slotWaitMs`), not as the actor's own work. A turn
   * that asks an actor of its own type on the same node can wait for itself while the others do.
   * @default unbounded
   */
  concurrencyPerNode?: number;
  /**
   * Handlers that set the actor up rather than serve it (load a model, compile kernels, open a
   * connection): the mailbox's load counters (`accepted`, `processed`, `busyMs`, turn and wait
   * times) leave their turns out, so that an autoscaler reading them as demand does not take a
   * seconds-long set-up for load; and a node that sheds load still takes them (see Load shedding).
   * Each must name a handler. @default []
   */
  setupHandlers?: readonly string[];
  mailbox?: MailboxOptions;
  restart?: RestartPolicy;
  durable?: DurableOptions;
  /**
   * Fast mode: also save the snapshot while the actor runs, at most `everyMs` after a change or every
   * `everyMessages` messages, so that a killed node loses at most that much. Needs `snapshot`.
   */
  persist?: PersistPolicy;
}

/**
 * How an actor with a large state (an LLM's KV cache) says what changed, so that a live migration
 * sends changes instead of comparing whole images. Each hook runs on the actor's state between the
 * runtime's own steps, never concurrently with itself.
 */
export interface DeltaHooks<S> {
  /** Names the state as it is now, cheaply (a KV cache's length, a version counter). */
  mark(state: S): unknown;
  /**
   * What changed since `mark` (a value `mark` returned on this activation), serializable like a
   * snapshot; undefined when the actor cannot tell any more, and the runtime compares whole images.
   */
  since(state: S, mark: unknown): unknown;
  /**
   * On the target: the state restored from the copied image with `change` applied. The image's large
   * typed arrays (64 KiB and more) are read as they are sent, not copied at the mark, so they may
   * already hold some of the change: `apply` sets what changed rather than adding to it.
   */
  apply(state: S, change: unknown): S;
}

// biome-ignore lint/suspicious/noExplicitAny: a definition of any state and handlers
export type AnyActorDefinition = ActorDefinition<any, Record<string, Handler<any>>>;

type HandlersOf<D> = D extends ActorDefinition<infer _S, infer H> ? H : never;
type Payload<F> = F extends (state: never, msg: infer M, ...rest: never[]) => unknown
  ? unknown extends M
    ? Record<never, never>
    : M
  : never;

/** The union of messages a definition accepts: `{ type: <handler name>, ...payload }`. */
export type MessageOf<D> = {
  [K in keyof HandlersOf<D> & string]: { type: K } & Payload<HandlersOf<D>[K]>;
}[keyof HandlersOf<D> & string];

/** `M` with every key that `Shape` lacks mapped to `never`, so extra or misspelt fields fail to compile. */
type Exactly<M, Shape> = M & Record<Exclude<keyof M, keyof Shape>, never>;

/**
 * The message of handler `M['type']`, accepting exactly that handler's fields; any message for a ref
 * whose definition is not known (`ActorRef<AnyActorDefinition>`).
 */
export type ExactMessage<D, M extends MessageOf<D>> = string extends keyof HandlersOf<D>
  ? M
  : Exactly<M, Extract<MessageOf<D>, { type: M['type'] }>>;

/** The reply of the handler named `K`. */
export type ReplyOf<D, K> = K extends keyof HandlersOf<D> ? Awaited<ReturnType<HandlersOf<D>[K]>> : unknown;

/** Defines an actor type; validates it once, here, rather than on every spawn. */
export function defineActor<S, H extends Record<string, Handler<S>>>(
  def: ActorDefinition<S, H>,
): ActorDefinition<S, H> {
  checkToken('actor type', def.type);
  if (typeof def.handlers !== 'object' || def.handlers === null || Object.keys(def.handlers).length === 0) {
    throw new InvalidOptions(`actor "${def.type}": handlers must be an object with at least one function`);
  }
  for (const [name, fn] of Object.entries(def.handlers)) {
    if (typeof fn !== 'function')
      throw new InvalidOptions(`actor "${def.type}": handlers.${name} must be a function`);
    if (name.startsWith('$'))
      throw new InvalidOptions(`actor "${def.type}": handler names starting with $ are reserved`);
  }
  resolveActorOptions(def.type, def);
  if (def.setupHandlers !== undefined && !Array.isArray(def.setupHandlers))
    throw new InvalidOptions(`actor "${def.type}": setupHandlers must be an array of handler names`);
  for (const name of def.setupHandlers ?? [])
    if (typeof name !== 'string' || !Object.hasOwn(def.handlers, name))
      throw new InvalidOptions(
        `actor "${def.type}": setupHandlers names "${name}", which is not one of its handlers`,
      );
  if ((def.snapshot === undefined) !== (def.restore === undefined)) {
    throw new InvalidOptions(`actor "${def.type}": define both snapshot and restore, or neither`);
  }
  if (def.snapshotOnDemand === true && (def.snapshot === undefined || def.persist !== undefined))
    throw new InvalidOptions(
      `actor "${def.type}": snapshotOnDemand needs snapshot and restore, and cannot persist (persist saves after turns)`,
    );
  if (
    def.delta !== undefined &&
    (def.snapshot === undefined ||
      !['mark', 'since', 'apply'].every((k) => typeof def.delta?.[k as 'mark'] === 'function'))
  )
    throw new InvalidOptions(
      `actor "${def.type}": delta needs snapshot and restore, and the functions mark, since and apply`,
    );
  if (def.persist !== undefined && def.snapshot === undefined)
    throw new InvalidOptions(`actor "${def.type}": persist saves snapshots; define snapshot and restore`);
  return def;
}

export interface AskOptions {
  /** @default 5000 */
  timeoutMs?: number;
  /** Same key ⇒ same effect: the actor applies it once and answers repeats from its record. */
  idempotencyKey?: string;
  /** @default 'fast' */
  mode?: DeliveryMode;
  /** Fast mode: retries after Timeout/NoResponders, with the same idempotency key. @default 0 */
  retries?: number;
  /** W3C trace context to continue; a fresh one when absent. */
  traceparent?: string;
}

export type TellOptions = Omit<AskOptions, 'retries' | 'timeoutMs'>;

/** What a ref sends through; implemented by the cluster connection. */
export interface RefTransport {
  ask(type: string, id: string, msg: unknown, options: AskOptions): Promise<unknown>;
  tell(type: string, id: string, msg: unknown, options: TellOptions): Promise<void>;
  stream(type: string, id: string, msg: unknown, options: StreamOptions): ActorStream;
}

export interface ActorInspection {
  type: string;
  id: string;
  nodeId: string;
  epoch: number;
  status: 'starting' | 'running' | 'restarting' | 'stopped' | 'failed';
  restarts: number;
  /**
   * Durable messages delivered, redelivered and skipped as already applied; `repulls`: pulls started
   * again because the consumer got a new leader; `unconfirmed`: committed messages the record lists by
   * stream sequence, their keys dropped and their acknowledgement not yet confirmed by an ack floor;
   * `floorReads`: reads of that floor (these three absent from older nodes).
   */
  durable: {
    delivered: number;
    redelivered: number;
    duplicatesSkipped: number;
    repulls?: number;
    unconfirmed?: number;
    floorReads?: number;
  };
  /**
   * Time the turns waited for a device slot (`ctx.acquireSlot`), summed, ms: part of the mailbox's
   * busyMs that was the device's queue, not the actor's own work. Absent from older nodes.
   */
  slotWaitMs?: number;
  mailbox: MailboxMetrics;
  /**
   * Messages a migration's target holds until the hand-off ends (earlier ones of their senders may
   * still be at the source); 0 outside a migration. Absent from older nodes.
   */
  held?: number;
  /** Fast-mode persistence (`persist` on the definition); absent without it. */
  persist?: PersistMetrics;
}

/**
 * Location-transparent handle of an actor. Only `type` and `id` are enumerable, so a ref put in a
 * message arrives as `{ type, id }`; turn it back into a live ref with `ctx.ref()` / `cluster.ref()`.
 */
export class ActorRef<D extends AnyActorDefinition = AnyActorDefinition> implements ActorRefData {
  readonly type: string;
  readonly id: string;
  readonly #transport: RefTransport;

  constructor(transport: RefTransport, data: ActorRefData) {
    this.type = checkToken('actor type', data.type);
    this.id = checkToken('actor id', data.id);
    this.#transport = transport;
  }

  /** Sends `msg` and resolves with the handler's reply; never throws, every failure is a rejection. */
  ask<M extends MessageOf<D>>(
    msg: ExactMessage<D, M>,
    options: AskOptions = {},
  ): Promise<ReplyOf<D, M['type']>> {
    return this.#send(msg, options) as Promise<ReplyOf<D, M['type']>>;
  }

  /** Fire and forget (fast), or stored until acknowledged by the actor's stream (durable). */
  tell<M extends MessageOf<D>>(msg: ExactMessage<D, M>, options: TellOptions = {}): Promise<void> {
    try {
      return this.#transport.tell(this.type, this.id, msg, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Sends `msg` in fast mode and returns the handler's stream: `for await` over it gets the items the
   * handler writes to `ctx.stream` as they are made, `result` its reply. Consuming items is what lets
   * the handler write more (back-pressure); breaking out of the loop or `cancel()` cancels it at the
   * actor. Not retried and not idempotent: a stream's items are not recorded.
   */
  stream<T = unknown, M extends MessageOf<D> = MessageOf<D>>(
    msg: ExactMessage<D, M>,
    options: StreamOptions = {},
  ): ActorStream<T, ReplyOf<D, M['type']>> {
    return this.#transport.stream(this.type, this.id, msg, options) as ActorStream<T, ReplyOf<D, M['type']>>;
  }

  /** Mailbox depth, turn latency, restarts and durable counters of the live activation. */
  inspect(options: { timeoutMs?: number } = {}): Promise<ActorInspection> {
    return this.#send({ type: '$inspect' }, options) as Promise<ActorInspection>;
  }

  #send(msg: unknown, options: AskOptions): Promise<unknown> {
    try {
      return this.#transport.ask(this.type, this.id, msg, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  toJSON(): ActorRefData {
    return { type: this.type, id: this.id };
  }
}

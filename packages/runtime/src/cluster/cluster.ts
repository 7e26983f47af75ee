import { hostname } from 'node:os';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { type NatsConnection, nuid } from '@nats-io/transport-node';
import {
  type ActorRef,
  type ActorRefData,
  type AnyActorDefinition,
  type AskOptions,
  ActorRef as Ref,
  type TellOptions,
} from '../actor/definition.js';
import { encodeRequests, type RequestItem, requestBytesAtMost } from '../wire/batch.js';
import { bucketKeys } from './bucket-keys.js';
import { HEADER_ROOM } from '../wire/chunks.js';
import { Coalescer } from '../wire/coalesce.js';
import { encode } from '../wire/codec.js';
import { publishDirect } from '../wire/nats-internals.js';
import { Directory, type Location } from './directory.js';
import type { EmbeddedNats } from './embedded-nats.js';
import { type Envelope, envelopeBlock, envelopeHeaders, H, newTraceparent } from '../wire/envelope.js';
import {
  ClusterClosed,
  InvalidOptions,
  NoNodeAvailable,
  NoResponders,
  PayloadTooLarge,
  Timeout,
} from '../errors.js';
import { type MembershipEvent, MembershipMonitor } from './membership.js';
import type { Names } from './names.js';
import { type CapabilityRecord, Node, type NodeOptions } from '../node/node.js';
import { OutgoingHeaders } from '../wire/outgoing-headers.js';
import { type Pending, Replies } from './replies.js';
import { type LogFn, publish, publishOne, type WireLimits } from '../wire/publish.js';

/** A fast-mode ask (with the reply it waits for) or tell (with `sent`) waiting for the end of the tick. */
interface Outgoing extends RequestItem {
  bytes: number;
  pending: Pending | undefined;
  sent: ((err?: Error) => void) | undefined;
}

interface Route {
  subject: string;
  target: string;
}

/** Actors whose routes are cached; past this the cache starts over, so it stays small. */
const MAX_ROUTES = 10_000;

/** What a connection is made of; built by `connectCluster`. */
export interface Parts {
  name: string;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  names: Names;
  nodesKv: KV;
  directoryKv: KV;
  stateKv: KV;
  limits: WireLimits;
  deadAfterMs: number;
  log: LogFn;
  embedded: EmbeddedNats | undefined;
}

/** A connection to one stitch cluster: sends to actors, spawns them, and can host a node. */
export class Cluster {
  readonly name: string;
  /** Unique sender id of this connection (the envelope's `Stitch-Sender`). */
  readonly clientId: string;
  readonly directory: Directory;
  readonly parts: Parts;
  /** URL of the server; the embedded one when `nats` was not given. */
  readonly url: string;
  #node: Node | undefined;
  readonly #types = new Map<string, AnyActorDefinition>();
  readonly #replies: Replies;
  /** Fast-mode asks and tells to actors, coalesced per actor subject (see batch.ts). */
  readonly #outbox: Coalescer<Outgoing>;
  readonly #routes = new Map<string, Map<string, Route>>();
  #routeCount = 0;
  #closed = false;
  #monitor: MembershipMonitor | undefined;

  constructor(parts: Parts) {
    this.parts = parts;
    this.name = parts.name;
    this.clientId = `${hostname()}-${process.pid}-${nuid.next().slice(-8)}`;
    this.url = parts.embedded?.url ?? String(parts.nc.getServer());
    this.directory = new Directory(parts.directoryKv, (node) => this.isNodeAlive(node));
    this.#replies = new Replies(parts.nc);
    this.#outbox = new Coalescer(parts.limits.maxPayload - HEADER_ROOM, (subject, items) =>
      this.#sendActor(subject, items),
    );
  }

  /** The node this connection hosts, if `startNode` was called. */
  get node(): Node | undefined {
    return this.#node;
  }

  /** A live ref from ref data (e.g. a ref received inside a message). */
  ref<D extends AnyActorDefinition = AnyActorDefinition>(data: ActorRefData): ActorRef<D> {
    return new Ref<D>(this, data);
  }

  /** Makes an actor type spawnable by name on this connection's node. */
  register(def: AnyActorDefinition): void {
    this.#types.set(def.type, def);
  }

  actorType(type: string): AnyActorDefinition | undefined {
    return this.#types.get(type);
  }

  get actorTypes(): string[] {
    return [...this.#types.keys()];
  }

  /** Starts this process's node actor: capability record, heartbeat, hosting of actors. */
  async startNode(options: NodeOptions = {}): Promise<Node> {
    if (this.#node)
      throw new InvalidOptions('this cluster connection already runs a node; call startNode once');
    for (const def of options.actors ?? []) this.register(def);
    this.#node = new Node(this, options);
    await this.#node.start();
    return this.#node;
  }

  /**
   * Activates an actor: on `node` if given, else on this connection's node, else on the least loaded
   * live node that registered the type. Returns its ref.
   */
  async spawn<D extends AnyActorDefinition>(
    def: D | string,
    options: { id?: string; node?: string } = {},
  ): Promise<ActorRef<D>> {
    this.#open();
    const type = typeof def === 'string' ? def : def.type;
    if (typeof def !== 'string') this.register(def);
    const id = options.id ?? nuid.next();
    const target = options.node ?? this.#node?.id ?? (await this.#pickNode(type));
    let where: Location;
    if (this.#node && target === this.#node.id) {
      where = (await this.#node.spawn(type, id)).claim;
    } else {
      const subject = this.parts.names.nodeControl(target);
      where = (await this.#request(
        subject,
        { op: 'spawn', type, id },
        { timeoutMs: 10_000 },
        `node ${target}`,
      )) as Location;
    }
    // Read your own write: locate() right after spawn sees this activation, not a trailing watch event.
    this.directory.remember(this.parts.names.key(type, id), where);
    return this.ref<D>({ type, id });
  }

  /** Stops an actor wherever it runs (its last snapshot is persisted). */
  async stop(ref: ActorRefData): Promise<void> {
    const where = await this.locate(ref);
    if (!where) return;
    if (this.#node && where.node === this.#node.id) return this.#node.stopActor(ref.type, ref.id);
    const subject = this.parts.names.nodeControl(where.node);
    await this.#request(
      subject,
      { op: 'stop', type: ref.type, id: ref.id },
      { timeoutMs: 10_000 },
      `node ${where.node}`,
    );
  }

  /** Node and epoch of the actor's live activation (cached; a KV watch keeps the cache current). */
  locate(ref: ActorRefData): Promise<Location | undefined> {
    return this.directory.locate(this.parts.names.key(ref.type, ref.id));
  }

  /** Capability records of the nodes whose heartbeat is current. */
  async nodes(): Promise<CapabilityRecord[]> {
    const kv = this.parts.nodesKv;
    const keys = await bucketKeys(this.parts.jsm, this.parts.names.nodesBucket);
    const entries = await Promise.all(keys.map((key) => kv.get(key)));
    const now = Date.now();
    return entries
      .filter((e) => e?.operation === 'PUT' && now - e.created.getTime() < this.parts.deadAfterMs)
      .map((e) => e!.json<CapabilityRecord>());
  }

  async isNodeAlive(nodeId: string): Promise<boolean> {
    if (this.#node?.id === nodeId) return true;
    const e = await this.parts.nodesKv.get(nodeId).catch(() => null);
    return !!e && e.operation === 'PUT' && Date.now() - e.created.getTime() < this.parts.deadAfterMs;
  }

  /**
   * Calls `listener` for each membership event (`join`, `leave`, `dead`), once per event. Also runs a
   * monitor in this process so that a node's death is noticed even where no other node watches.
   */
  async onMembership(listener: (event: MembershipEvent) => void): Promise<() => void> {
    this.#open();
    const seen = new Set<string>();
    const sub = this.parts.nc.subscribe(this.parts.names.membership, {
      callback: (err, m) => {
        if (err) return;
        const ev = m.json<MembershipEvent>();
        const key = `${ev.kind}:${ev.nodeId}:${ev.revision}`;
        if (seen.has(key)) return;
        seen.add(key);
        listener(ev);
      },
    });
    if (!this.#monitor) {
      this.#monitor = new MembershipMonitor(this.parts.nodesKv, this.parts.deadAfterMs, (ev) =>
        this.parts.nc.publish(this.parts.names.membership, JSON.stringify(ev)),
      );
      await this.#monitor.start();
    }
    await this.parts.nc.flush();
    return () => sub.unsubscribe();
  }

  /** RefTransport: request/reply in fast mode, JetStream publish plus reply in durable mode. */
  ask(type: string, id: string, msg: unknown, options: AskOptions): Promise<unknown> {
    this.#open();
    if (options.mode === 'durable') return this.#askDurable(type, id, msg, options);
    const retries = options.retries ?? 0;
    const opts =
      retries > 0 && !options.idempotencyKey ? { ...options, idempotencyKey: nuid.next() } : options;
    const { subject, target } = this.#route(type, id);
    if (retries === 0) return this.#askActor(subject, msg, opts, target);
    return this.#withRetries(() => this.#askActor(subject, msg, opts, target), retries);
  }

  async tell(type: string, id: string, msg: unknown, options: TellOptions): Promise<void> {
    this.#open();
    const env = this.#envelope(options, Number.POSITIVE_INFINITY);
    const data = encode(msg);
    if (options.mode === 'durable') {
      await this.#publishDurable(type, id, data, env, undefined);
      return;
    }
    // Resolves once published (at the end of this tick), so a publish error still reaches the caller.
    await new Promise<void>((resolve, reject) =>
      this.#enqueue(this.#route(type, id).subject, {
        reply: undefined,
        traceparent: env.traceparent,
        deadline: env.deadline,
        key: env.idempotencyKey,
        body: data,
        bytes: 0,
        pending: undefined,
        sent: (err) => (err ? reject(err) : resolve()),
      }),
    );
  }

  /** Stops the node (draining its actors), then drains the connection and stops an embedded server. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#node?.close();
    this.#monitor?.stop();
    this.directory.stopWatch();
    // Drain delivers what is in flight; a server that stopped answering must not hang close() forever.
    const drained = this.parts.nc.drain().catch(() => undefined);
    const timer = new Promise<void>((r) => setTimeout(r, 5000).unref());
    await Promise.race([drained, timer]);
    await this.parts.nc.close().catch(() => undefined);
    this.#replies.rejectAll(new ClusterClosed());
    await this.parts.embedded?.stop();
  }

  /**
   * The subject and error label of an actor, the same string objects on every ask: the outbox is
   * keyed by subject, and a string built afresh per ask is hashed afresh per ask.
   */
  #route(type: string, id: string): Route {
    const known = this.#routes.get(type)?.get(id);
    if (known) return known;
    if (this.#routeCount++ >= MAX_ROUTES) {
      this.#routes.clear();
      this.#routeCount = 1;
    }
    let byId = this.#routes.get(type);
    if (!byId) {
      byId = new Map();
      this.#routes.set(type, byId);
    }
    const route = { subject: this.parts.names.actor(type, id), target: `actor ${type}/${id}` };
    byId.set(id, route);
    return route;
  }

  #open(): void {
    if (this.#closed) throw new ClusterClosed();
  }

  #envelope(options: TellOptions, deadline: number): Envelope {
    return {
      traceparent: options.traceparent ?? newTraceparent(),
      sender: this.clientId,
      deadline,
      ...(options.idempotencyKey !== undefined ? { idempotencyKey: options.idempotencyKey } : {}),
    };
  }

  #request(subject: string, msg: unknown, options: AskOptions, target: string): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const env = this.#envelope(options, Date.now() + timeoutMs);
    const data = encode(msg);
    return this.#replies.wait(target, timeoutMs, (reply) => {
      publish(this.parts.nc, subject, data, { reply, headers: envelopeHeaders(env) }, this.parts.limits);
    });
  }

  /** A fast-mode ask to an actor: like #request, but coalesced with this tick's other sends to it. */
  #askActor(subject: string, msg: unknown, options: AskOptions, target: string): Promise<unknown> {
    // Encoded now, so a message the caller changes after ask() returns is sent as it was.
    const body = encode(msg);
    const pending = this.#replies.create(target, options.timeoutMs ?? 5000);
    this.#enqueue(subject, {
      reply: pending.reply,
      traceparent: options.traceparent ?? newTraceparent(),
      deadline: pending.deadline,
      key: options.idempotencyKey,
      body,
      bytes: 0,
      pending,
      sent: undefined,
    });
    return pending.promise;
  }

  #enqueue(subject: string, item: Outgoing): void {
    item.bytes = requestBytesAtMost(item);
    this.#outbox.add(subject, item);
  }

  /** Publishes one tick's sends to an actor: alone in the single-message format, else as one batch. */
  #sendActor(subject: string, items: Outgoing[]): void {
    try {
      if (items.length === 1) {
        const i = items[0]!;
        const env: Envelope = { traceparent: i.traceparent, sender: this.clientId, deadline: i.deadline };
        if (i.key !== undefined) env.idempotencyKey = i.key;
        if (!publishDirect(this.parts.nc, subject, i.body, i.reply, envelopeBlock(env))) {
          // nats.js's way: chunking above max_payload, nats.js's errors on a closed connection.
          const headers = envelopeHeaders(env);
          const opts = i.reply ? { headers, reply: i.reply } : { headers };
          publish(this.parts.nc, subject, i.body, opts, this.parts.limits);
        }
      } else {
        const h = new OutgoingHeaders();
        h.set(H.batch, String(items.length));
        h.set(H.sender, this.clientId);
        const asks: Pending[] = [];
        for (const i of items) if (i.pending) asks.push(i.pending);
        if (asks.length > 0) this.#replies.group(asks);
        const opts = { headers: h, ...(asks[0] ? { reply: asks[0].reply } : {}) };
        publishOne(this.parts.nc, subject, encodeRequests(items), opts);
      }
    } catch (err) {
      for (const i of items) {
        if (i.pending) this.#replies.fail(i.pending, err as Error);
        i.sent?.(err as Error);
      }
      return;
    }
    for (const i of items) i.sent?.();
  }

  async #askDurable(type: string, id: string, msg: unknown, options: AskOptions): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const key = options.idempotencyKey ?? nuid.next();
    const env = this.#envelope({ ...options, idempotencyKey: key }, Date.now() + timeoutMs);
    const data = encode(msg);
    const pending = this.#replies.create(`actor ${type}/${id} (durable)`, timeoutMs);
    let duplicate: boolean;
    try {
      duplicate = await this.#publishDurable(type, id, data, env, pending.reply);
    } catch (err) {
      this.#replies.forget(pending);
      throw err;
    }
    if (!duplicate) return pending.promise;
    // The stream dropped the publish as a repeat of the key: ask the actor for the recorded outcome.
    this.#replies.forget(pending);
    const { subject, target } = this.#route(type, id);
    return this.#askActor(subject, { type: '$outcome', key }, { timeoutMs }, target);
  }

  /** Returns true when the stream reports the publish as a duplicate within its window. */
  async #publishDurable(
    type: string,
    id: string,
    data: Uint8Array,
    env: Envelope,
    reply: string | undefined,
  ): Promise<boolean> {
    const { maxPayload } = this.parts.limits;
    if (data.length > maxPayload - 4096) {
      throw new PayloadTooLarge(
        data.length,
        maxPayload,
        'durable mode does not chunk; put the data in the object store and send its name',
      );
    }
    const key = env.idempotencyKey ?? nuid.next();
    const h = envelopeHeaders({ ...env, idempotencyKey: key });
    if (reply) h.set(H.replyTo, reply);
    // The stream drops a repeat of the same Nats-Msg-Id within its duplicate window.
    const ack = await this.parts.js.publish(this.parts.names.durable(type, id), data, {
      msgID: key,
      headers: h,
    });
    return ack.duplicate;
  }

  async #withRetries(attempt: () => Promise<unknown>, retries: number): Promise<unknown> {
    for (let i = 0; ; i++) {
      try {
        return await attempt();
      } catch (err) {
        const retriable = err instanceof Timeout || err instanceof NoResponders;
        if (!retriable || i >= retries) throw err;
        await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** i) * (0.5 + Math.random())));
      }
    }
  }

  async #pickNode(type: string): Promise<string> {
    const candidates = (await this.nodes()).filter((r) => r.healthy && r.actorTypes.includes(type));
    candidates.sort((a, b) => a.load.actors + a.load.queued - (b.load.actors + b.load.queued));
    const best = candidates[0];
    if (!best) throw new NoNodeAvailable(`no live, healthy node registers actor type "${type}"`);
    return best.nodeId;
  }
}

import { hostname } from 'node:os';
import { type KV, Kvm } from '@nats-io/kv';
import { type ObjectStore, Objm } from '@nats-io/obj';
import { type Msg, nuid } from '@nats-io/transport-node';
import {
  ActorRef,
  type ActorRefData,
  type AnyActorDefinition,
  type AskOptions,
  type RefTransport,
  type TellOptions,
} from '../actor/definition.js';
import { BadMessage, ClusterClosed, InvalidOptions } from '../errors.js';
import type { MigrationReport } from '../migration/source.js';
import { type CapabilityRecord, isCapabilityRecord } from '../node/capabilities.js';
import { isHeldElsewhere, queryNode } from '../node/holder.js';
import { isNodeInspection, type NodeInspection } from '../node/inspection.js';
import { Node, remoteDrainMs } from '../node/node.js';
import { type NodeOptions, resolveNodeOptions } from '../node/options.js';
import type { ReminderInfo, ReminderOptions } from '../reminders/record.js';
import { ReminderScheduler } from '../reminders/scheduler.js';
import { ReminderStore } from '../reminders/store.js';
import type { ActorStream, StreamOptions } from '../stream/reader.js';
import { decode } from '../wire/codec.js';
import { H } from '../wire/envelope.js';
import { Activator, type NodeRecord } from './activator.js';
import { bucketKeys } from './bucket-keys.js';
import { Directory, type Location } from './directory.js';
import { type MembershipEvent, MembershipMonitor, parseMembershipEvent } from './membership.js';
import { checkToken } from './names.js';
import type { ResolvedConnectOptions } from './options.js';
import type { ClusterParts } from './parts.js';
import { Reconnects } from './reconnects.js';
import { Replies } from './replies.js';
import { ActorSender } from './sender.js';
import { createKv, ensureReplicas } from './setup.js';
import { VirtualTransport } from './virtual.js';
import { whileNodeAnswers } from './while-node-answers.js';

/** Counters of what this connection could not deliver, or delivered only by activating elsewhere. */
export interface ClusterMetrics {
  /** Fast-mode tells sent to an actor that had no activation in the directory (they are dropped). */
  tellsWithoutActivation: number;
  /**
   * Virtual actors activated anew because a durable ask waiting on them found their node gone (the
   * server's no-responders), before the ask timed out.
   */
  takeOversOfGoneNodes: number;
  /**
   * Durable asks sent again with the same key because this connection reconnected while they waited
   * (an answer sent meanwhile reached no one).
   */
  durableAsksAgainAfterReconnect: number;
  /**
   * Messages this connection sent again on its callers' behalf: asks after a reconnect (above) or once
   * their actor was activated (it had none, or its node was gone), and durable publishes whose
   * stream's answer did not come in time or that no stream took (same message id: stored once).
   */
  sentAgain: number;
  /** Inbound messages and bucket entries dropped as malformed or failing, by where they arrived. */
  inboundErrors: Record<string, number>;
}

/** Membership events remembered to drop repeats; older ones are forgotten first. */
const SEEN_EVENTS = 4096;
/** A drained node answers when its drain ends: this covers the way there and back and its record's write. */
const DRAIN_ANSWER_MARGIN_MS = 5000;

/** A connection to one stitch cluster: sends to actors, activates them, and can host a node. */
export class Cluster implements RefTransport {
  readonly name: string;
  /** Unique sender id of this connection (the envelope's `Stitch-Sender`). */
  readonly clientId: string;
  readonly directory: Directory;
  /** URL of the server; the embedded one when `nats` was not given. */
  readonly url: string;
  readonly #parts: ClusterParts;
  #fence: { name: string; epoch: number } | undefined;
  #node: Node | undefined;
  readonly #types = new Map<string, AnyActorDefinition>();
  readonly #replies: Replies;
  readonly #sender: ActorSender;
  readonly #activator: Activator;
  readonly #virtual: VirtualTransport;
  readonly #metrics = { tellsWithoutActivation: 0 };
  #lastDropLog = 0;
  #closed = false;
  readonly #reconnects: Reconnects;
  readonly #closeOfflineMs: number;
  #monitor: MembershipMonitor | undefined;
  readonly #reminders: ReminderStore;

  constructor(parts: ClusterParts, options: ResolvedConnectOptions) {
    this.#parts = parts;
    this.#reminders = new ReminderStore(parts.remindersKv, parts.jsm, parts.names, parts.name, parts.clock);
    this.name = parts.name;
    this.clientId = `${hostname()}-${process.pid}-${nuid.next().slice(-8)}`;
    this.url = parts.embedded?.url ?? String(parts.nc.getServer());
    this.directory = new Directory(parts.directoryKv, parts.guard);
    this.#reconnects = new Reconnects(parts.nc, parts.guard, parts.clock);
    this.#closeOfflineMs = options.closeOfflineMs;
    this.#replies = new Replies(parts, (p) => {
      if (p.actorKey !== undefined) this.directory.forget(p.actorKey);
    });
    this.#sender = new ActorSender(parts, this.clientId, this.#replies, options.askTimeoutMs);
    this.#activator = new Activator({
      names: parts.names,
      directory: this.directory,
      placement: options.activationPlacement,
      nodes: () => this.#nodeRecords(),
      freshMs: parts.deadAfterMs / 2,
      now: () => parts.clock.now(),
      reconnects: () => this.#reconnects.count,
      localNode: () => this.#node,
      request: (subject, msg, timeoutMs, target) =>
        this.#sender.request(subject, this.#fenced(msg), timeoutMs, target),
    });
    this.#virtual = new VirtualTransport(
      this.#sender,
      this.#activator,
      this.directory,
      parts.clock,
      () => this.#closed,
      (key, held) =>
        held.node === this.#node?.id
          ? Promise.resolve(this.#node.hosts(key))
          : isHeldElsewhere(parts, key, held),
      () => this.#reconnects.count,
      options.askTimeoutMs,
    );
  }

  /** The node this connection hosts, if `startNode` was called. */
  get node(): Node | undefined {
    return this.#node;
  }

  /** A live ref from ref data (e.g. a ref received inside a message); it never activates anything. */
  ref<D extends AnyActorDefinition = AnyActorDefinition>(data: ActorRefData): ActorRef<D> {
    return new ActorRef<D>(this, data);
  }

  /**
   * A virtual-actor ref: the first message activates the actor (on the node `activationPlacement`
   * picks), and a message that finds its owner gone activates it again from its last stored snapshot.
   * No spawn, locate or AlreadyActive handling is needed.
   */
  get<D extends AnyActorDefinition>(def: D | string, id: string): ActorRef<D> {
    const type = typeof def === 'string' ? def : def.type;
    return new ActorRef<D>(this.#virtual, { type, id });
  }

  /** Makes an actor type activatable by name on this connection's node. */
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
    this.#open();
    if (this.#node)
      throw new InvalidOptions('this cluster connection already runs a node; call startNode once');
    const resolved = resolveNodeOptions(options, this.#parts.deadAfterMs);
    for (const def of resolved.actors) this.register(def);
    const types = () => this.actorTypes;
    const p = this.#parts;
    const reminderScheduler =
      p.remindersKv &&
      new ReminderScheduler({
        remindersKv: p.remindersKv,
        nodesKv: p.nodesKv,
        nodeId: resolved.id,
        deadAfterMs: p.deadAfterMs,
        clock: p.clock,
        guard: p.guard,
        log: p.log,
        // A virtual ref: a reminder activates its actor wherever placement says, like any message.
        send: (r, idempotencyKey) =>
          this.get(r.type, r.id).ask(decode(r.message) as never, { idempotencyKey, mode: r.mode }),
      });
    const node = new Node(
      {
        parts: this.#parts,
        directory: this.directory,
        reconnects: this.#reconnects,
        ref: (data) => this.ref(data),
        actorType: (type) => this.actorType(type),
        get actorTypes() {
          return types();
        },
        reminders: this.#reminders,
        reminderScheduler,
      },
      resolved,
    );
    this.#node = node;
    await node.start();
    return node;
  }

  /**
   * Stores reminder `name` of the actor (replacing one of that name): its message is asked of the
   * actor `dueMs` from now, and every `periodMs` after when given, whether or not the actor is active
   * then (the ask activates it) and whichever node is up; see ReminderScheduler for who sends it.
   * Rejects with InvalidOptions for bad options, ClusterNotInitialized where the cluster has no
   * reminders bucket.
   */
  async setReminder(ref: ActorRefData, name: string, options: ReminderOptions): Promise<void> {
    this.#open();
    await this.#reminders.set(ref, name, options);
  }

  /** Removes reminder `name` of the actor (none is no error). */
  async cancelReminder(ref: ActorRefData, name: string): Promise<void> {
    this.#open();
    await this.#reminders.cancel(ref, name);
  }

  /** The actor's reminders, by name, each with when it is next due. */
  async reminders(ref: ActorRefData): Promise<ReminderInfo[]> {
    this.#open();
    return this.#reminders.list(ref);
  }

  /**
   * Activates an actor: on `node` if given, else on this connection's node, else where the
   * activation placement says. Returns its ref; `cluster.get` does the same on first use.
   */
  async spawn<D extends AnyActorDefinition>(
    def: D | string,
    options: { id?: string; node?: string } = {},
  ): Promise<ActorRef<D>> {
    this.#open();
    const type = typeof def === 'string' ? def : def.type;
    if (typeof def !== 'string') this.register(def);
    const id = options.id ?? nuid.next();
    await this.#activator.spawn(type, id, options.node ?? this.#node?.id);
    return this.ref<D>({ type, id });
  }

  /**
   * From now on every node command this connection sends (activations, stops) carries the fencing
   * epoch `epoch` of `name`; a node that has seen a newer epoch of that name refuses them with
   * StaleFence. A coordinator sets this when it wins the leader lease, so a deposed one cannot move
   * operators any more. Epochs only go up.
   */
  fence(name: string, epoch: number): void {
    checkToken('fence name', name);
    if (!Number.isSafeInteger(epoch) || epoch < 1)
      throw new InvalidOptions('a fencing epoch is an integer ≥ 1');
    if (this.#fence && this.#fence.name === name && epoch < this.#fence.epoch)
      throw new InvalidOptions(`fencing epochs only go up (${this.#fence.epoch} → ${epoch})`);
    this.#fence = { name, epoch };
  }

  /**
   * Sends this connection's fencing epoch to every live node (a control `fence` op), so that each
   * refuses the previous commander at once, not only after this one has commanded it. Resolves with
   * the nodes that did not confirm (gone, or refusing: a newer epoch exists).
   */
  async announceFence(timeoutMs = 2000): Promise<string[]> {
    this.#open();
    if (!this.#fence)
      throw new InvalidOptions('announceFence needs a fence: call cluster.fence(name, epoch) first');
    const nodes = await this.nodes();
    const failed = await Promise.all(
      nodes.map((n) =>
        this.#command(n.nodeId, { op: 'fence' }, timeoutMs).then(
          () => undefined,
          () => n.nodeId,
        ),
      ),
    );
    return failed.filter((n): n is string => n !== undefined);
  }

  /**
   * Drains node `nodeId` from here, as its own SIGTERM would (Node.drain): it takes no new actors from
   * now on and asks for its actors to be moved off it live (a coordinator that manages them does);
   * resolves with the number still there when none is left, none has left for a while (nobody moves
   * them), or `timeoutMs` (default 10 s, at most 600 s) has passed. The node keeps running, draining,
   * until it is stopped. Needs a principal allowed on the node's control subject (a coordinator, the admin).
   */
  async drainNode(nodeId: string, options: { timeoutMs?: number } = {}): Promise<{ left: number }> {
    this.#open();
    const id = checkToken('node id', nodeId);
    const timeoutMs = remoteDrainMs(options.timeoutMs ?? 10_000);
    if (this.#node && id === this.#node.id) return { left: await this.#node.drain(timeoutMs) };
    const answer = (await this.#command(
      id,
      { op: 'drain', timeoutMs },
      timeoutMs + DRAIN_ANSWER_MARGIN_MS,
    )) as { left?: unknown } | null;
    const left = answer?.left;
    if (typeof left !== 'number' || !Number.isSafeInteger(left) || left < 0)
      throw new InvalidOptions(`node ${id} answered its drain with something other than { left }`);
    return { left };
  }

  /**
   * Ends node `nodeId`'s drain (Node.undrain): it takes new actors again and announces itself as
   * joined, so that a coordinator may place operators there again. Resolves with whether it was
   * draining. Needs the same permission as drainNode.
   */
  async undrainNode(nodeId: string, options: { timeoutMs?: number } = {}): Promise<{ undrained: boolean }> {
    this.#open();
    const id = checkToken('node id', nodeId);
    if (this.#node && id === this.#node.id) return { undrained: await this.#node.undrain() };
    const answer = (await this.#command(id, { op: 'undrain' }, options.timeoutMs ?? 5000)) as {
      undrained?: unknown;
    } | null;
    if (typeof answer?.undrained !== 'boolean')
      throw new InvalidOptions(`node ${id} answered its undrain with something other than { undrained }`);
    return { undrained: answer.undrained };
  }

  /**
   * Tells draining node `nodeId` that this commander moves its actors off it: its drain then waits up
   * to `waitMs` (at most 60 s) between moves rather than end as idle after `drain()`'s idleMs, so that
   * a plan being solved, or a standby's take-over, still finds the node there to move them live.
   */
  async takeDrain(nodeId: string, waitMs: number, options: { timeoutMs?: number } = {}): Promise<void> {
    this.#open();
    const id = checkToken('node id', nodeId);
    if (this.#node && id === this.#node.id) return this.#node.takeDrain(waitMs);
    await this.#command(id, { op: 'take-drain', waitMs }, options.timeoutMs ?? 5000);
  }

  #fenced(msg: unknown): unknown {
    return this.#fence ? { ...(msg as object), fence: this.#fence } : msg;
  }

  /** A command `msg` to node `nodeId` on its control subject, carrying this commander's fence. */
  #command(nodeId: string, msg: object, timeoutMs: number): Promise<unknown> {
    return this.#sender.request(
      this.#parts.names.nodeControl(nodeId),
      this.#fenced(msg),
      timeoutMs,
      `node ${nodeId}`,
    );
  }

  /**
   * Stops an actor wherever it runs (its last snapshot is persisted). A command the server refuses
   * (no permission) is dropped without an answer: it fails after `timeoutMs`.
   */
  async stop(ref: ActorRefData, options: { timeoutMs?: number } = {}): Promise<void> {
    this.#open();
    const where = await this.locate(ref);
    if (!where) return;
    if (this.#node && where.node === this.#node.id) return this.#node.stopActor(ref.type, ref.id);
    await this.#command(where.node, { op: 'stop', type: ref.type, id: ref.id }, options.timeoutMs ?? 10_000);
  }

  /**
   * Moves an actor to node `to` while it keeps serving: callers see neither an error nor a retry, and
   * each sender's messages run once, in order (see the README's "Live migration"). Rejects with
   * MigrationFailed when the move did not happen; the actor then still runs where it was. Rejects with
   * NoResponders when the source node went away meanwhile (locate() then says where the actor is).
   */
  async migrate(
    ref: ActorRefData,
    to: string,
    options: { timeoutMs?: number } = {},
  ): Promise<MigrationReport> {
    this.#open();
    const where = await this.directory.current(this.#parts.names.key(ref.type, ref.id));
    if (!where) throw new InvalidOptions(`actor ${ref.type}/${ref.id} is not active; spawn it first`);
    if (this.#node && where.node === this.#node.id) return this.#node.migrate(ref.type, ref.id, to);
    const answer = this.#command(
      where.node,
      { op: 'migrate', type: ref.type, id: ref.id, to },
      options.timeoutMs ?? 60_000,
    );
    return (await whileNodeAnswers(
      answer,
      () => this.nodeAnswers(where.node),
      this.#parts.clock,
      `node ${where.node} (it went away while it moved ${ref.type}/${ref.id} to ${to}: locate() says where the actor runs now)`,
    )) as MigrationReport;
  }

  /** Node and epoch of the actor's live activation (cached; a KV watch keeps the cache current). */
  locate(ref: ActorRefData): Promise<Location | undefined> {
    return this.directory.locate(this.#parts.names.key(ref.type, ref.id));
  }

  /** Capability records of the nodes whose heartbeat is current. */
  async nodes(): Promise<CapabilityRecord[]> {
    return (await this.#nodeRecords()).map((n) => n.record);
  }

  /** The nodes whose heartbeat is current: each one's record, and how long ago it was written. */
  async #nodeRecords(): Promise<NodeRecord[]> {
    const kv = this.#parts.nodesKv;
    const keys = await bucketKeys(this.#parts.jsm, this.#parts.names.nodesBucket);
    const entries = await Promise.all(keys.map((key) => kv.get(key).catch(() => null)));
    const now = this.#parts.clock.now();
    const records: NodeRecord[] = [];
    for (const e of entries) {
      const ageMs = now - (e?.created.getTime() ?? 0);
      if (e?.operation !== 'PUT' || ageMs >= this.#parts.deadAfterMs) continue;
      try {
        const r: unknown = e.json();
        if (isCapabilityRecord(r, e.key)) records.push({ record: r, ageMs });
      } catch {
        // Not a record a node wrote (not even JSON); it cannot place anything.
      }
    }
    return records;
  }

  /**
   * Whether node `nodeId` still answers on its query subject. The server says at once when nothing
   * subscribes there (the node's connection is gone): false. An answer, or none within `timeoutMs`
   * (a busy node), is true: only the server's no-responders counts as gone. Asked every second
   * during a migration: the question is the cheapest a node answers (not an inspection of its actors).
   */
  async nodeAnswers(nodeId: string, timeoutMs = 1000): Promise<boolean> {
    this.#open();
    if (this.#node?.id === nodeId) return true;
    const id = checkToken('node id', nodeId);
    return (await queryNode(this.#parts, id, { op: 'draining' }, timeoutMs)) !== 'gone';
  }

  /**
   * What node `nodeId` hosts now, each actor with its mailbox counters (arrivals, turns, busy time,
   * queue): what a control loop samples to see per-actor load. undefined when the node is gone, does
   * not answer within `timeoutMs`, or answers something that is not an inspection.
   */
  async inspectNode(nodeId: string, timeoutMs = 1000): Promise<NodeInspection | undefined> {
    this.#open();
    if (this.#node?.id === nodeId) return this.#node.inspect();
    const id = checkToken('node id', nodeId);
    const reply = await queryNode(this.#parts, id, { op: 'inspect' }, timeoutMs);
    if (reply === 'gone' || reply === 'silent' || reply.headers?.get(H.errorCode)) return undefined;
    try {
      const v = decode(reply.data);
      return isNodeInspection(v, id) ? v : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Whether node `nodeId` says it is draining (Node.drain): what a `drain` membership event claims,
   * asked of the node itself, since anyone allowed on the membership subject could send one.
   */
  async isNodeDraining(nodeId: string, timeoutMs = 1000): Promise<boolean> {
    this.#open();
    const id = checkToken('node id', nodeId);
    const reply = await queryNode(this.#parts, id, { op: 'draining' }, timeoutMs);
    if (reply === 'gone' || reply === 'silent' || reply.headers?.get(H.errorCode)) return false;
    try {
      return decode(reply.data) === true;
    } catch {
      return false;
    }
  }

  async isNodeAlive(nodeId: string): Promise<boolean> {
    if (this.#node?.id === nodeId) return true;
    const e = await this.#parts.nodesKv.get(nodeId).catch(() => null);
    const age = this.#parts.clock.now() - (e?.created.getTime() ?? 0);
    return !!e && e.operation === 'PUT' && age < this.#parts.deadAfterMs;
  }

  /**
   * Calls `listener` for each membership event (`join`, `leave`, `dead`), once per event. Also runs a
   * monitor in this process so that a node's death is noticed even where no other node watches.
   */
  async onMembership(listener: (event: MembershipEvent) => void): Promise<() => void> {
    this.#open();
    const { nc, names, guard } = this.#parts;
    const seen = new Set<string>();
    const sub = nc.subscribe(names.membership, {
      callback: guard.callback('membership subject', (m: Msg) => {
        const ev = parseMembershipEvent(m.data);
        if (!ev) throw new BadMessage('not a membership event');
        const key = `${ev.kind}:${ev.nodeId}:${ev.revision}`;
        if (seen.has(key)) return;
        seen.add(key);
        if (seen.size > SEEN_EVENTS) seen.delete(seen.values().next().value!);
        guard.run('membership listener', () => listener(ev));
      }),
    });
    if (!this.#monitor) {
      this.#monitor = new MembershipMonitor(
        this.#parts.nodesKv,
        this.#parts.deadAfterMs,
        this.#parts.clock,
        (ev) => nc.publish(names.membership, JSON.stringify(ev)),
        guard,
      );
      await this.#monitor.start();
    }
    await nc.flush();
    return () => sub.unsubscribe();
  }

  /**
   * A key-value bucket of this cluster's server, for application data next to the actors (the
   * coordinator's deployments, an agent's memory). `create` makes it when missing, with `ttlMs`
   * (entries expire: a bucket-wide TTL) and `maxBytes` (the oldest entries go past it) when given.
   */
  async kv(
    bucket: string,
    options: { create?: boolean; history?: number; ttlMs?: number; maxBytes?: number } = {},
  ): Promise<KV> {
    this.#open();
    const { nc, jsm, replicas, log } = this.#parts;
    const kvm = new Kvm(nc);
    if (!options.create) return kvm.open(bucket);
    const limits = {
      ...(options.ttlMs !== undefined ? { ttl: options.ttlMs } : {}),
      ...(options.maxBytes !== undefined ? { max_bytes: options.maxBytes } : {}),
    };
    return createKv(kvm, jsm, bucket, { history: options.history ?? 1, replicas, ...limits }, log);
  }

  /**
   * Keys stored in the cluster's KV bucket `bucket` now, in one request. Use this instead of nats.js
   * `kv.keys()`, which can wait forever when a key is written while it lists (a leader lease, a TTL).
   */
  async kvKeys(bucket: string): Promise<string[]> {
    this.#open();
    return bucketKeys(this.#parts.jsm, bucket);
  }

  /**
   * A JetStream object store of this cluster's server, for large blobs next to the actors (published
   * kernel artifacts). `create` makes it when missing, holding at most `maxBytes` (a put past them is
   * refused: an object store discards nothing old); an existing store keeps its own bound.
   */
  async objectStore(
    bucket: string,
    options: { create?: boolean; maxBytes?: number } = {},
  ): Promise<ObjectStore> {
    this.#open();
    const objm = new Objm(this.#parts.nc);
    if (!options.create) return objm.open(bucket);
    const { jsm, replicas, log } = this.#parts;
    const store = await objm.create(bucket, {
      replicas,
      ...(options.maxBytes !== undefined ? { max_bytes: options.maxBytes } : {}),
    });
    await ensureReplicas(jsm, `OBJ_${bucket}`, replicas, log);
    return store;
  }

  metrics(): ClusterMetrics {
    return {
      ...this.#metrics,
      takeOversOfGoneNodes: this.#virtual.takeOvers,
      durableAsksAgainAfterReconnect: this.#virtual.asksAgain,
      sentAgain: this.#virtual.sentAgain + this.#sender.publishesAgain,
      inboundErrors: this.#parts.guard.counts(),
    };
  }

  /** RefTransport of plain refs: request/reply in fast mode, JetStream publish plus reply in durable mode. */
  ask(type: string, id: string, msg: unknown, options: AskOptions): Promise<unknown> {
    if (this.#closed) return Promise.reject(new ClusterClosed());
    return this.#sender.ask(type, id, msg, options);
  }

  tell(type: string, id: string, msg: unknown, options: TellOptions): Promise<void> {
    if (this.#closed) return Promise.reject(new ClusterClosed());
    if (options.mode !== 'durable') this.#checkActivation(type, id);
    return this.#sender.tell(type, id, msg, options);
  }

  stream(type: string, id: string, msg: unknown, options: StreamOptions): ActorStream {
    return this.#sender.stream(msg, options, (m, o) => this.ask(type, id, m, o));
  }

  /** Stops the node (draining its actors), then drains the connection and stops an embedded server. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // With the server gone each step of the node's close waits out its request's timeout: once the
    // connection has been down closeOfflineMs, the close goes on without them (closing the connection
    // rejects what they still wait for).
    const offline = this.#reconnects.downFor(this.#closeOfflineMs);
    const nodeClosed = this.#node?.close();
    // Left behind, it fails once the connection closes: not an unhandled rejection.
    nodeClosed?.catch(() => undefined);
    await Promise.race([nodeClosed, offline.reached]);
    this.#monitor?.stop();
    this.directory.stopWatch();
    // Drain delivers what is in flight; a server that stopped answering must not hang close() forever.
    const drained = this.#parts.nc.drain().catch(() => undefined);
    const timer = new Promise<void>((r) => setTimeout(r, 5000).unref());
    await Promise.race([drained, timer, offline.reached]);
    offline.cancel();
    await this.#parts.nc.close().catch(() => undefined);
    this.#replies.rejectAll(new ClusterClosed());
    await this.#parts.embedded?.stop();
  }

  /** Counts and logs (at most once a second) a fast tell to an actor the directory has no entry for. */
  #checkActivation(type: string, id: string): void {
    const key = this.#sender.route(type, id).key;
    if (this.directory.cached(key)) return;
    void this.directory.locate(key).then(
      (where) => {
        if (where) return;
        this.#metrics.tellsWithoutActivation++;
        const now = this.#parts.clock.now();
        if (now - this.#lastDropLog < 1000) return;
        this.#lastDropLog = now;
        this.#parts.log('warn', 'tell to an actor with no activation is dropped', {
          actor: key,
          dropped: this.#metrics.tellsWithoutActivation,
          hint: 'spawn it first, or send through cluster.get(), which activates on first use',
        });
      },
      () => undefined,
    );
  }

  #open(): void {
    if (this.#closed) throw new ClusterClosed();
  }
}

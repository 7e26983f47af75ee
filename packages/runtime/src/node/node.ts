import { freemem, hostname, loadavg, totalmem } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { type Msg, type NatsConnection, nuid, type Subscription } from '@nats-io/transport-node';
import { Activation } from '../actor/activation.js';
import { ConsumerLeaders } from '../actor/consumer-leaders.js';
import type { ActorRef, ActorRefData } from '../actor/definition.js';
import type { Host } from '../actor/host.js';
import { RecentReplies } from '../actor/recent-replies.js';
import { type Clock, sleep, type Timer } from '../clock.js';
import type { Directory, Location } from '../cluster/directory.js';
import type { MembershipEvent } from '../cluster/membership.js';
import { checkToken, type Names } from '../cluster/names.js';
import { AlreadyActive, InvalidOptions, MigrationFailed, Overloaded } from '../errors.js';
import type { Guard } from '../guard.js';
import type { LogFn } from '../log.js';
import { IncomingMigrations, type Prepared } from '../migration/incoming.js';
import { type PullInbox, parseHandoff, shippedRecord } from '../migration/protocol.js';
import type { MigrationReport } from '../migration/source.js';
import { decode } from '../wire/codec.js';
import type { WireLimits } from '../wire/publish.js';
import type { Calibration, CapabilityRecord, Device } from './capabilities.js';
import type { NodeContext } from './context.js';
import { Fences } from './fences.js';
import { isHeldElsewhere } from './holder.js';
import type { NodeInspection } from './inspection.js';
import { LoadShedder } from './load-shedder.js';
import { MigrationCounts } from './migration-counts.js';
import { DEFAULT_CLUSTER_MIGRATION_GRACE_MS, type ResolvedNodeOptions } from './options.js';
import { answerRequest } from './requests.js';
import { type DeviceSlots, Slots, slotsForDevice } from './slots.js';

/** Migrations into one node at once, at most; begins past them wait for a place (see MigrationSlots). */
const MAX_INCOMING_MIGRATIONS = 8;
const MAX_WAITING_MIGRATIONS = 64;
/** Half a source's step timeout (MIGRATION_STEP_MS): the source hears the refusal, not a timeout. */
const MIGRATION_PLACE_WAIT_MS = 5000;
/** A migration whose source sends nothing for this long is dropped by its target. */
const MIGRATION_IDLE_MS = 30_000;
/**
 * A source quiet this long before its commit (a pause waits for a long turn) is asked after: one
 * that died mid-copy frees its place at the target this soon rather than at MIGRATION_IDLE_MS.
 */
const MIGRATION_SOURCE_CHECK_MS = 2000;
/** After a commit, a target whose source went quiet releases the messages it held this soon. */
const MIGRATION_RELEASE_MS = 3000;
/** How long drain() waits for a node's actors to be moved off it, by default. */
const DRAIN_MS = 10_000;
const DRAIN_POLL_MS = 20;
/** drain() gives up when no actor has left for this long, and none is on its way out. */
const DRAIN_IDLE_MS = 1000;
/** Longest wait between moves a commander may ask of a drain (see `take-drain`). */
const MAX_DRAIN_WAIT_MS = 60_000;
/** Longest drain another process may ask of a node (`cluster.drainNode`). */
const MAX_REMOTE_DRAIN_MS = 600_000;

/** `v` when it is a whole number of ms from `min` to `max`, else InvalidOptions naming `what`. */
function msWithin(v: unknown, min: number, max: number, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    throw new InvalidOptions(`${what} must be an integer from ${min} to ${max}`);
  return v;
}

/** The timeout of a drain another process asks for (`cluster.drainNode`, the `drain` command). */
export const remoteDrainMs = (v: unknown): number => msWithin(v, 1, MAX_REMOTE_DRAIN_MS, 'drain timeoutMs');
/**
 * close() waits at most this long for the migrations out still running (each step of one is bounded
 * by MIGRATION_STEP_MS), so that each answers its commander before the connection closes.
 */
const CLOSE_MIGRATIONS_MS = 10_000;
/** How long a migration's source waits for each answer of its target. */
const MIGRATION_STEP_MS = 10_000;

/** The node actor: hosts activations, advertises capabilities and load, answers activation and control requests. */
export class Node implements Host {
  readonly id: string;
  /** Differs between two processes that run a node with the same id. */
  readonly incarnation = nuid.next();
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly names: Names;
  readonly stateKv: KV;
  readonly directory: Directory;
  readonly limits: WireLimits;
  readonly log: LogFn;
  readonly guard: Guard;
  readonly clock: Clock;
  readonly inboxPrefix: string;
  /** See Host.pullPrefix: set by start(). */
  pullPrefix: string | undefined;
  readonly durableReplies: RecentReplies;
  readonly #ctx: NodeContext;
  #unwatchReconnects: (() => void) | undefined;
  readonly #options: ResolvedNodeOptions;
  readonly #activations = new Map<string, Activation>();
  readonly #starting = new Map<string, Promise<Activation>>();
  readonly #lag = monitorEventLoopDelay({ resolution: 10 });
  readonly shedding: LoadShedder;
  readonly #startedAt = Date.now();
  #devices: Device[] = [];
  get reminders() {
    return this.#ctx.reminders;
  }
  /** Execution slots per device name (see slotsForDevice), made from the devices at start. */
  readonly #slots = new Map<string, DeviceSlots>();
  /** One per registered actor type that bounds its turns (its definition's concurrencyPerNode). */
  readonly #typeSlots = new Map<string, Slots>();
  #probeError: string | undefined;
  #calibrated: (Calibration & { measuredAt: number }) | undefined;
  readonly #subs: Subscription[] = [];
  /** The query subscription (in #subs): it answers until the moves under way at a close are done. */
  #querySub: Subscription | undefined;
  #consumerLeaders: ConsumerLeaders | undefined;
  readonly #fences = new Fences();
  readonly #incoming: IncomingMigrations;
  #heartbeat: Timer | undefined;
  #lastBeat = performance.now();
  #closed = false;
  #draining = false;
  /** Set while the reminder scheduler runs: the record says so, and the other nodes count this one in. */
  #firesReminders = false;
  /** A commander took this node's drain on: the drain waits this long without a move (see drain()). */
  #drainWaitMs = 0;
  #drainTakenAt = 0;
  /** Migrations out of this node still running (an activation leaves before its forwarding ends). */
  readonly #migratingOut = new Set<Promise<unknown>>();
  readonly #migrations = new MigrationCounts();

  constructor(ctx: NodeContext, options: ResolvedNodeOptions) {
    const p = ctx.parts;
    this.#ctx = ctx;
    this.#options = options;
    this.id = options.id;
    this.nc = p.nc;
    this.js = p.js;
    this.jsm = p.jsm;
    this.names = p.names;
    this.stateKv = p.stateKv;
    this.limits = p.limits;
    this.log = p.log;
    this.guard = p.guard;
    this.clock = p.clock;
    this.inboxPrefix = p.inboxPrefix;
    this.directory = ctx.directory;
    this.durableReplies = new RecentReplies(this.clock);
    this.shedding = new LoadShedder(options.shedding);
    this.#incoming = new IncomingMigrations(
      {
        slots: {
          max: MAX_INCOMING_MIGRATIONS,
          maxWaiting: MAX_WAITING_MIGRATIONS,
          waitMs: MIGRATION_PLACE_WAIT_MS,
        },
        maxStateBytes: options.maxMigrationBytes,
        idleMs: MIGRATION_IDLE_MS,
        sourceCheckMs: MIGRATION_SOURCE_CHECK_MS,
        onSourceGone: (type, id, why) =>
          this.log('warn', 'a migration into this node was dropped: its source is gone', {
            actor: this.names.key(type, id),
            why,
          }),
        releaseMs: MIGRATION_RELEASE_MS,
        pullPrefix: () => this.pullPrefix ?? this.inboxPrefix,
      },
      this.clock,
      (type, id, watchPulls) => this.#prepareAdoption(type, id, watchPulls),
    );
  }

  get nodeId(): string {
    return this.id;
  }

  /** The execution slots of this node's device `device` (`cpu`, `cuda:0`, or a modelled device's catalog id). */
  deviceSlots(device: string): DeviceSlots | undefined {
    return this.#slots.get(device);
  }

  typeSlots(type: string, slots: number): Slots {
    const kept = this.#typeSlots.get(type);
    if (kept) return kept;
    const made = new Slots(slots);
    this.#typeSlots.set(type, made);
    return made;
  }

  ref(data: ActorRefData): ActorRef {
    return this.#ctx.ref(data);
  }

  forget(activation: { readonly key: string }): void {
    if (this.#activations.get(activation.key) === activation) this.#activations.delete(activation.key);
  }

  /**
   * Whether this node's connection may subscribe under the cluster's pull prefix (Names.pulls): an
   * auth config generated before it existed does not allow it, and a consumer pulling there would be
   * refused. The server answers a subscription it refuses before the flush's ping.
   */
  async #mayReadPulls(): Promise<boolean> {
    let refused = false;
    const sub = this.nc.subscribe(`${this.names.pulls}.${nuid.next()}`, {
      callback: (err) => {
        if (err) refused = true;
      },
    });
    await this.nc.flush();
    if (!refused) {
      sub.unsubscribe();
      return true;
    }
    this.log(
      'info',
      'this node may not subscribe to durable pull inboxes; a durable move makes the consumer again',
      {
        node: this.id,
        subject: `${this.names.pulls}.>`,
      },
    );
    return false;
  }

  watchConsumerLeader(name: string, listener: () => void): () => void {
    return this.#consumerLeaders?.watch(name, listener) ?? (() => undefined);
  }

  async start(): Promise<void> {
    this.pullPrefix = (await this.#mayReadPulls()) ? this.names.pulls : undefined;
    this.#devices = await this.#probe();
    for (const d of this.#devices) {
      const slots = slotsForDevice(d);
      if (!this.#slots.has(slots.device)) this.#slots.set(slots.device, slots);
    }
    this.#lag.enable();
    this.shedding.start();
    this.#consumerLeaders = new ConsumerLeaders(this.nc, this.names.stream, this.guard);
    this.#unwatchReconnects = this.#ctx.reconnects.on(() => {
      const n = this.durableReplies.replay();
      if (n > 0)
        this.log('info', 'durable answers sent again after a reconnect', { node: this.id, answers: n });
    });
    this.#serve(this.names.nodeControl(this.id), (m) => this.#onControl(m));
    this.#querySub = this.#serve(this.names.nodeQuery(this.id), (m) => this.#onQuery(m));
    this.#serve(this.names.activate(this.id), (m) => this.#onActivate(m));
    this.#serve(this.names.nodeHandoff(this.id), (m) => this.#onHandoff(m));
    const scheduler = this.#ctx.reminderScheduler;
    if (scheduler) {
      await scheduler.start();
      this.#firesReminders = true;
    }
    const revision = await this.#beat();
    this.#emit({ kind: 'join', nodeId: this.id, revision, at: this.clock.now() });
    this.#heartbeat = this.clock.every(this.#options.heartbeatMs, () => {
      this.#beat().catch((err) =>
        this.log('warn', 'heartbeat failed', { node: this.id, error: String(err) }),
      );
    });
    void this.#calibrate();
  }

  /** Activates `type`/`id` here after claiming it in the directory. Activating a live actor again is a no-op. */
  async spawn(type: string, id: string): Promise<Activation> {
    const def = this.#ctx.actorType(type);
    if (!def) {
      throw new InvalidOptions(
        `node ${this.id} has no actor type "${type}"; pass it in startNode({ actors }) or register() it`,
      );
    }
    const key = this.names.key(type, checkToken('actor id', id));
    const live = this.#activations.get(key) ?? this.#starting.get(key);
    if (live) return live;
    if (this.#draining) throw new Overloaded(`node ${this.id} is draining: it takes no new actors`);
    const max = this.#options.maxActors;
    if (this.#activations.size + this.#starting.size >= max)
      throw new Overloaded(`node ${this.id} already hosts its maximum of ${max} actors (maxActors)`);
    const starting = (async () => {
      // Our own id in the entry is a ghost: this process holds no activation of it (checked above).
      const claim = await this.directory.claim(key, this.id, (held) =>
        held.node === this.id ? Promise.resolve(false) : isHeldElsewhere(this, key, held),
      );
      const activation = new Activation(this, def, id, claim);
      try {
        await activation.start();
      } catch (err) {
        await this.directory.release(key, claim);
        throw err;
      }
      this.#activations.set(key, activation);
      return activation;
    })();
    this.#starting.set(key, starting);
    try {
      return await starting;
    } finally {
      this.#starting.delete(key);
    }
  }

  /**
   * Moves actor `type`/`id` from this node to node `to` while it keeps serving (see
   * migrateActivation); rejects with MigrationFailed, the actor still here, when a step before the
   * directory moved fails.
   */
  async migrate(
    type: string,
    id: string,
    to: string,
    timeoutMs = MIGRATION_STEP_MS,
  ): Promise<MigrationReport> {
    const key = this.names.key(type, id);
    const a = this.#activations.get(key);
    if (!a) throw new InvalidOptions(`node ${this.id} does not host ${key}`);
    if (to === this.id) throw new InvalidOptions(`${key} already runs on node ${to}`);
    if (this.#closed)
      throw new InvalidOptions(`node ${this.id} is closing: ${key} stops here instead of moving`);
    const moving = this.#migrateOut(a, key, to, timeoutMs);
    this.#migratingOut.add(moving);
    try {
      return await moving;
    } finally {
      this.#migratingOut.delete(moving);
    }
  }

  async #migrateOut(a: Activation, key: string, to: string, timeoutMs: number): Promise<MigrationReport> {
    try {
      const report = await a.migrateTo(checkToken('node id', to), {
        nc: this.nc,
        nodeId: this.id,
        handoffSubject: (n) => this.names.nodeHandoff(n),
        maxPayload: this.limits.maxPayload,
        maxPauseChangeBytes: this.#options.maxPauseChangeBytes,
        graceMs: this.#migrationGraceMs(),
        timeoutMs,
        log: (msg, fields) => this.log('warn', msg, fields),
      });
      this.#migrations.movedOut(report);
      this.log('info', 'actor migrated', migrationFields(report));
      return report;
    } catch (err) {
      if (err instanceof MigrationFailed) {
        this.#migrations.failedOut();
        this.log('warn', 'migration failed; the actor still runs here', {
          actor: key,
          to,
          error: err.message,
        });
      }
      throw err;
    }
  }

  /** Whether this node runs (or is starting) the actor stored under directory key `key`. */
  hosts(key: string): boolean {
    return this.#activations.has(key) || this.#starting.has(key);
  }

  async stopActor(type: string, id: string): Promise<void> {
    await this.#activations.get(this.names.key(type, id))?.stop('stopped on request');
  }

  inspect(): NodeInspection {
    return {
      nodeId: this.id,
      actors: [...this.#activations.values()].map((a) => a.inspect()),
      migrations: {
        ...this.#migrations.metrics(),
        underWay: this.#migratingOut.size,
        arriving: this.#incoming.size,
        waiting: this.#incoming.waiting,
      },
      shedding: this.shedding.inspect(),
      typeSlots: Object.fromEntries([...this.#typeSlots].map(([type, s]) => [type, s.inUse()])),
      ...(this.#firesReminders && this.#ctx.reminderScheduler
        ? { reminders: this.#ctx.reminderScheduler.counts() }
        : {}),
    };
  }

  /** Builds the current capability record (also what each heartbeat writes). */
  record(): CapabilityRecord {
    const actors = [...this.#activations.values()].map((a) => a.inspect().mailbox);
    const sinceBeat = performance.now() - this.#lastBeat;
    // A timer that fired late by more than the histogram saw means the loop was blocked meanwhile.
    const max = Math.max(this.#lag.max / 1e6, sinceBeat - this.#options.heartbeatMs);
    const p99 = this.#lag.percentile(99) / 1e6;
    return {
      nodeId: this.id,
      incarnation: this.incarnation,
      host: hostname(),
      pid: process.pid,
      startedAt: this.#startedAt,
      heartbeatAt: this.clock.now(),
      devices: this.#devices,
      memory: { totalBytes: totalmem(), freeBytes: freemem(), rssBytes: process.memoryUsage.rss() },
      labels: this.#options.labels,
      actorTypes: this.#ctx.actorTypes,
      load: {
        actors: actors.length,
        queued: actors.reduce((s, m) => s + m.depth, 0),
        running: actors.reduce((s, m) => s + m.running, 0),
        loadAvg1: loadavg()[0] ?? 0,
        devices: [...this.#slots.values()].map((s) => s.load()),
      },
      eventLoopLagMs: { p99: round(p99), max: round(max) },
      healthy: max < this.#options.stallMs,
      ...(this.#draining ? { draining: true as const } : {}),
      ...(this.shedding.reason !== undefined ? { shedding: true as const } : {}),
      ...(this.#firesReminders ? { reminders: true as const } : {}),
      ...(this.#calibrated ? { calibrated: this.#calibrated } : {}),
      ...(this.#probeError ? { probeError: this.#probeError } : {}),
    };
  }

  /**
   * Asks for this node's actors to be moved off it while it still serves (a `drain` membership
   * event; a coordinator that manages them moves them live, see Coordinator) and refuses new
   * activations meanwhile. Resolves with the number of actors still here when they are all gone,
   * when none has left for `idleMs` (nobody is moving them: no coordinator manages them), or when
   * `timeoutMs` has passed; close() then stops what is left. A commander that takes the drain on
   * (`cluster.takeDrain`) makes it wait longer without a move: as long as its plan, or a standby's
   * take-over should it die, may take.
   */
  async drain(timeoutMs = DRAIN_MS, idleMs = DRAIN_IDLE_MS): Promise<number> {
    if (this.#closed) return this.#activations.size;
    this.#draining = true;
    // The record says so before the event goes out: whoever plans on the event places nothing here.
    const revision = await this.#beat().catch(() => 0);
    this.#emit({ kind: 'drain', nodeId: this.id, revision, at: this.clock.now() });
    const until = performance.now() + timeoutMs;
    // A moved activation is gone before its source has forwarded what it queued: wait for that too.
    const here = () => this.#activations.size + this.#starting.size + this.#migratingOut.size;
    let left = here();
    let movedAt = performance.now();
    const idle = () =>
      performance.now() - Math.max(movedAt, this.#drainTakenAt) >= Math.max(idleMs, this.#drainWaitMs);
    // Undrained meanwhile (undrain): the node keeps its actors, and the wait ends.
    while (left > 0 && this.#draining && performance.now() < until && !idle()) {
      await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
      const now = here();
      // A move on its way out is someone moving this node's actors: not idle, however long it takes.
      if (now < left || this.#migratingOut.size > 0) movedAt = performance.now();
      left = now;
    }
    return this.#activations.size;
  }

  /**
   * Ends a drain: the node takes new actors again, its record no longer says `draining`, and it
   * publishes `join` (it is back: a coordinator may place operators on it again). False when it was
   * not draining, or is closing.
   */
  async undrain(): Promise<boolean> {
    if (!this.#draining || this.#closed) return false;
    this.#draining = false;
    this.#drainWaitMs = 0;
    const revision = await this.#beat().catch(() => 0);
    this.#emit({ kind: 'join', nodeId: this.id, revision, at: this.clock.now() });
    return true;
  }

  /** Stops every actor (each drains its mailbox and persists its snapshot), then leaves the cluster. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#heartbeat?.cancel();
    this.#unwatchReconnects?.();
    if (this.#firesReminders) {
      // The others take this node's reminders over now, not once its record is gone at the end.
      this.#ctx.reminderScheduler?.stop();
      this.#firesReminders = false;
      await this.#beat().catch(() => undefined);
    }
    const drain = (s: Subscription) => s.drain().catch(() => undefined);
    await Promise.all(this.#subs.filter((s) => s !== this.#querySub).map(drain));
    // A move under way finishes (or fails, its actor still here) and answers its commander first: cut
    // off by the close, the commander would wait out its request (60 s) for an answer that never comes.
    // Meanwhile the node still answers queries: its commander takes a node that does not for gone.
    if (this.#migratingOut.size > 0)
      await Promise.race([Promise.allSettled(this.#migratingOut), sleep(this.clock, CLOSE_MIGRATIONS_MS)]);
    if (this.#querySub) await drain(this.#querySub);
    await this.#consumerLeaders?.close();
    this.#incoming.close();
    await Promise.all([...this.#activations.values()].map((a) => a.stop('node closing')));
    const kv = this.#ctx.parts.nodesKv;
    const e = await kv.get(this.id).catch(() => null);
    await kv.delete(this.id).catch(() => undefined);
    this.#emit({ kind: 'leave', nodeId: this.id, revision: e?.revision ?? 0, at: this.clock.now() });
    this.#lag.disable();
    this.shedding.stop();
    await this.nc.flush().catch(() => undefined);
  }

  /** See NodeOptions.migrationGraceMs. */
  #migrationGraceMs(): number {
    return this.#options.migrationGraceMs ?? (this.nc.info?.cluster ? DEFAULT_CLUSTER_MIGRATION_GRACE_MS : 0);
  }

  async #onHandoff(m: Msg): Promise<unknown> {
    const req = parseHandoff(decode(m.data));
    if (this.#options.faults.handoff === req.op)
      throw new InvalidOptions(`fault injected at the handoff step ${req.op}`);
    return this.#incoming.handle(req);
  }

  #checkAdoptable(type: string, id: string): void {
    if (this.#draining) throw new Overloaded(`node ${this.id} is draining: it takes no new actors`);
    if (!this.#ctx.actorType(type)) throw new InvalidOptions(`node ${this.id} has no actor type "${type}"`);
    const key = this.names.key(type, id);
    if (this.hosts(key)) throw new AlreadyActive(key, this.id);
    if (this.#activations.size + this.#starting.size + this.#incoming.size >= this.#options.maxActors)
      throw new Overloaded(`node ${this.id} already hosts its maximum of ${this.#options.maxActors} actors`);
  }

  /**
   * A migration into this node: the persisted record is read at `begin`, while the source still
   * serves; the commit then builds the state (a failure leaves the directory as it was), moves the
   * directory entry (compare-and-set against the source's revision) and opens the inboxes, held.
   */
  async #prepareAdoption(type: string, id: string, watchPulls: PullInbox[] | undefined): Promise<Prepared> {
    this.#checkAdoptable(type, id);
    const key = this.names.key(type, id);
    const a = new Activation(this, this.#ctx.actorType(type)!, id, { node: this.id, epoch: 0, revision: 0 });
    a.adopting();
    // Not awaited: the commit subscribes to whatever is not read by then. What came in the last grace
    // period before the commit is kept for it (a source only sends them with a grace period of its own).
    const keepMs = this.#migrationGraceMs() || DEFAULT_CLUSTER_MIGRATION_GRACE_MS;
    if (watchPulls) a.watchPulls(watchPulls, keepMs).catch(() => undefined);
    try {
      await a.loadRecord();
    } catch (err) {
      a.unwatchPulls();
      throw err;
    }
    const syncRecord: Prepared['syncRecord'] = async (recordRevision, record) => {
      if (recordRevision !== a.recordRevision) await a.loadRecord(recordRevision, record);
    };
    const commit: Prepared['commit'] = async (from, state) => {
      this.#checkAdoptable(type, id);
      // Made while the record and the state are loaded, so that the server has done most of it by
      // the compare-and-set. Only an actor with durable messages gains from it: for others it slows
      // the compare-and-set (2–5 ms instead of 1–2 on a loaded 2-core machine) and the consumer is
      // made once it holds.
      // With the source's pulls handed over, the consumer is read as it is: they are read here from
      // before the directory moves (see Activation.takePulls).
      const consumer = from.pulls || from.durable === false ? undefined : a.prepareConsumer();
      if (!from.pulls) a.unwatchPulls();
      const taking = from.pulls && a.takePulls(from.pulls);
      let readSince: number | undefined;
      let directoryMs = 0;
      try {
        await syncRecord(from.recordRevision, shippedRecord(from));
        if (state.staged) a.adoptStaged();
        else await a.restore(state.image);
        readSince = await taking;
        const handingOver = performance.now();
        Object.assign(a.claim, await this.directory.handOver(key, from, this.id));
        directoryMs = performance.now() - handingOver;
      } catch (err) {
        // The source resumes and creates its consumer again: after this one's delete, not before it.
        await consumer;
        if (taking) {
          await taking.catch(() => undefined);
          await a.dropPulls();
        }
        throw err;
      }
      await a.open(true, from.durable === false, from.ran, from.committed);
      this.#activations.set(key, a);
      this.#migrations.movedIn();
      return {
        epoch: a.claim.epoch,
        adopted: a.adopted(from.merge === true),
        ...(readSince !== undefined ? { pullsHeldMs: this.clock.now() - readSince } : {}),
        directoryMs,
      };
    };
    // The staged state is let go of when the migration ends without a commit: also when it ends while
    // a commit runs (a source that gave up waiting) and that commit then fails, never when it succeeds.
    let inCommit = false;
    let discarded = false;
    return {
      stage: (image) => a.restore(image),
      apply: (change) => a.applyChange(change),
      recordImage: () => a.recordImage(),
      syncRecord,
      sourceGone: async () => {
        const at = await this.directory.locate(key);
        if (!at || at.node === this.id) return undefined;
        return (await isHeldElsewhere(this, key, at))
          ? undefined
          : `node ${at.node} no longer runs ${key} (gone, or restarted)`;
      },
      discard: () => {
        a.unwatchPulls();
        discarded = true;
        if (!inCommit) void a.dropState();
      },
      commit: (from, state) => {
        inCommit = true;
        const committing = commit(from, state).catch((err: unknown) => {
          inCommit = false;
          if (discarded) void a.dropState();
          throw err;
        });
        const started = committing.then(() => a);
        started.catch(() => undefined);
        this.#starting.set(key, started);
        return committing.finally(() => this.#starting.delete(key));
      },
    };
  }

  #serve(subject: string, handle: (m: Msg) => Promise<unknown>): Subscription {
    const sub = this.nc.subscribe(subject, {
      callback: this.guard.callback('node subject', (m: Msg) => answerRequest(this.nc, m, () => handle(m))),
    });
    this.#subs.push(sub);
    return sub;
  }

  async #beat(): Promise<number> {
    const rec = this.record();
    this.#lag.reset();
    this.#lastBeat = performance.now();
    return this.#ctx.parts.nodesKv.put(this.id, JSON.stringify(rec));
  }

  #emit(ev: MembershipEvent): void {
    this.nc.publish(this.names.membership, JSON.stringify(ev));
  }

  /** `{ type, id }` → the activation's location; the claim decides between racing activations. */
  async #onActivate(m: Msg): Promise<Location & { type: string; id: string }> {
    const req = decode(m.data) as { type?: unknown; id?: unknown; fence?: unknown } | null;
    this.#fences.refuseStale(req?.fence);
    const type = checkToken('actor type', req?.type);
    const a = await this.spawn(type, checkToken('actor id', req?.id));
    return { type, id: a.id, node: this.id, epoch: a.claim.epoch };
  }

  /**
   * Commands (`stop`), on a subject that only coordinators and operators may publish to when the
   * server has per-principal permissions: another node cannot stop this node's actors.
   */
  async #onControl(m: Msg): Promise<unknown> {
    const req = decode(m.data) as { op?: unknown; type?: unknown; id?: unknown; fence?: unknown } | null;
    this.#fences.advance(req?.fence);
    if (req?.op === 'inspect') return this.inspect();
    // A new commander announces its epoch, so that an older one is refused from now on.
    if (req?.op === 'fence') return null;
    if (req?.op === 'take-drain') {
      this.takeDrain((req as { waitMs?: unknown }).waitMs);
      return null;
    }
    if (req?.op === 'drain') {
      const ms = remoteDrainMs((req as { timeoutMs?: unknown }).timeoutMs);
      this.log('info', 'draining: another process asked for it', { node: this.id, timeoutMs: ms });
      const left = await this.drain(ms);
      this.log('info', 'drain ended', { node: this.id, left, draining: this.#draining });
      return { left };
    }
    if (req?.op === 'undrain') {
      const undrained = await this.undrain();
      if (undrained) this.log('info', 'undrained: another process asked for it', { node: this.id });
      return { undrained };
    }
    const type = checkToken('actor type', req?.type);
    const id = checkToken('actor id', req?.id);
    if (req?.op === 'stop') return this.stopActor(type, id).then(() => null);
    if (req?.op === 'migrate')
      return this.migrate(type, id, checkToken('node id', (req as { to?: unknown }).to));
    throw new InvalidOptions(
      `unknown node control op ${JSON.stringify(req?.op)}; use stop, migrate, inspect, fence, drain, undrain or take-drain`,
    );
  }

  /** A commander moves this node's actors off it: its drain waits up to `waitMs` between moves. */
  takeDrain(waitMs: unknown): void {
    this.#drainWaitMs = msWithin(waitMs, 0, MAX_DRAIN_WAIT_MS, 'take-drain waitMs');
    this.#drainTakenAt = performance.now();
  }

  /** Questions other nodes ask (`inspect`, and `hosts`: is an actor active here), changing nothing. */
  async #onQuery(m: Msg): Promise<unknown> {
    const req = decode(m.data) as { op?: unknown; type?: unknown; id?: unknown } | null;
    if (req?.op === 'inspect') return this.inspect();
    if (req?.op === 'draining') return this.#draining;
    if (req?.op === 'hosts')
      return this.hosts(this.names.key(checkToken('actor type', req?.type), checkToken('actor id', req?.id)));
    throw new InvalidOptions(
      `unknown node query op ${JSON.stringify(req?.op)}; use hosts, draining or inspect`,
    );
  }

  async #probe(): Promise<Device[]> {
    const devices: Device[] = [];
    try {
      devices.push(...(await this.#options.probe()));
    } catch (err) {
      this.#probeError = (err as Error).message;
      this.log('warn', 'hardware probe failed; the node advertises only its virtual devices', {
        error: this.#probeError,
      });
    }
    for (const v of this.#options.virtual) {
      devices.push({
        kind: `virtual:${v.catalogId}`,
        catalogId: v.catalogId,
        modelled: true,
        slots: v.slots,
      });
    }
    return devices;
  }

  async #calibrate(): Promise<void> {
    const cpu = this.#devices.find((d) => d.kind === 'cpu');
    const calibrate = this.#options.calibrate;
    if (!calibrate || !cpu || cpu.kind !== 'cpu') return;
    try {
      const result = await calibrate(cpu);
      this.#calibrated = { ...result, measuredAt: this.clock.now() };
    } catch (err) {
      this.log('warn', 'calibration failed; the capability record has no calibrated figures', {
        error: String(err),
      });
    }
  }
}

/** A migration's report as log fields: its phases in ms, to the hundredth. */
function migrationFields(r: MigrationReport): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r))
    fields[k] = typeof v === 'number' && k.endsWith('Ms') ? round(v) : v;
  return fields;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

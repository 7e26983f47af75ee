import type { ConsumerInfo } from '@nats-io/jetstream';
import type { Msg, Subscription } from '@nats-io/transport-node';
import { sleep, type Timer } from '../clock.js';
import type { Claim } from '../cluster/directory.js';
import { ActorStopped, InvalidOptions, Overloaded, RuntimeErrorCode } from '../errors.js';
import type { RecordImage, ShippedRecord } from '../migration/image.js';
import type { Adopted } from '../migration/incoming.js';
import { migrateActivation } from '../migration/outgoing.js';
import type { ForwardedMessage, PullInbox } from '../migration/protocol.js';
import type { MigratableChanges, MigrationContext, MigrationReport } from '../migration/source.js';
import type { ReleaseSlot, Slots } from '../node/slots.js';
import { parseStreamSpec } from '../stream/frames.js';
import { StreamWriter } from '../stream/writer.js';
import { tracesTurn, traceTurn } from '../tracing.js';
import { decode, encode } from '../wire/codec.js';
import type { Envelope } from '../wire/envelope.js';
import { decodeSnapshot, encodeImage } from '../wire/image.js';
import { inboxPrefixOf } from '../wire/nats-internals.js';
import { failure, type Outcome } from '../wire/outcome.js';
import type { ActorInspection, ActorRef, AnyActorDefinition } from './definition.js';
import { ackSubjectOf, type DurableDelivery } from './durable-delivery.js';
import { type ConsumerStart, committedKeptMs, DurableInbox } from './durable-inbox.js';
import { DurableIntake } from './durable-intake.js';
import { HeldMessages } from './held-messages.js';
import type { Host } from './host.js';
import { FastInbound } from './inbound.js';
import { forwardedFrom, forwardedOf, type Incoming, incomingOf } from './incoming.js';
import { Mailbox, type Rejection } from './mailbox.js';
import { type ResolvedActorOptions, resolveActorOptions } from './options.js';
import { Persister } from './persister.js';
import { RecentOutcomes } from './recent-outcomes.js';
import { ReplySender } from './reply-sender.js';
import { SenderCounts } from './sender-counts.js';
import { FrozenSnapshot } from './snapshot-chunks.js';
import { StateRecord } from './state.js';
import { RestartBudget } from './supervisor.js';
import { TurnContext } from './turn-context.js';

type Status = ActorInspection['status'];

/** A message the source of a migration could not hand to its target: its caller may send it again. */
const movedAway = (key: string) =>
  new Overloaded(`${key} moved to another node while this message waited; send it again`);

/** The queue group of every actor subject (see Activation.open). */
const ACTOR_QUEUE = 'a';

/** One live actor on this node: its mailbox, its subscriptions, its state and its supervisor. */
export class Activation {
  readonly key: string;
  #status: Status = 'starting';
  /** The supervisor's restart, due after its backoff; a stop cancels it. */
  #restart: Timer | undefined;
  /** From a crash until the restart replaces it: the state a handler left midway, never snapshotted. */
  #crashedState = false;
  #state: unknown;
  #sub: Subscription | undefined;
  readonly #options: ResolvedActorOptions;
  readonly #budget: RestartBudget;
  readonly #mailbox: Mailbox<Incoming>;
  readonly #inbound: FastInbound;
  readonly #recent = new RecentOutcomes();
  readonly #record: StateRecord;
  readonly #persister: Persister | undefined;
  readonly #durable: DurableInbox;
  readonly #intake: DurableIntake;
  /** Time this activation's turns spent waiting for a device slot (ctx.acquireSlot), summed, ms. */
  #slotWaitMs = 0;
  /** The node's bound on this type's turns (concurrencyPerNode); undefined: none. */
  readonly #typeSlots: Slots | undefined;
  readonly #self: ActorRef;
  readonly #replies: ReplySender;
  /** After a migration's commit: messages that reached this (target) activation directly, held while earlier ones of their senders may still be at the source. */
  #held: HeldMessages<Incoming> | undefined;
  /** Handlers that set the actor up (ActorDefinition.setupHandlers). */
  readonly #setup: ReadonlySet<string>;
  /** Per sender, the count of the last fast-mode message run here (handed over by a migration). */
  readonly #ran = new SenderCounts();
  /** A migration's target that starts its durable consumer at the release (see open). */
  #consumeAtRelease = false;
  /** A migration's target: the consumer made afresh while the directory moved (prepareConsumer). */
  #freshConsumer: Promise<ConsumerInfo | undefined> | undefined;
  /** Moved here from an activation that had durable messages. */
  #hadDurable = false;
  /** A migration's source, paused, whose pulls the target takes over (see #pauseForMigration). */
  #handingOver = false;
  /** A migration's source, paused: hears of each fast-mode message queued (sent early). */
  #onQueued: (() => void) | undefined;
  #migrating = false;
  /** Counts replacements of the state object (restore, restart): a delta mark names one of them. */
  #generation = 0;
  /** On demand: snapshot captures that came while the actor was restarting, run once it runs again. */
  #afterRestart: (() => void)[] = [];

  constructor(
    readonly host: Host,
    readonly def: AnyActorDefinition,
    readonly id: string,
    readonly claim: Claim,
  ) {
    this.key = host.names.key(def.type, id);
    this.#options = resolveActorOptions(def.type, def);
    this.#budget = new RestartBudget(this.#options.restart);
    const perNode = this.#options.concurrencyPerNode;
    this.#typeSlots = perNode === undefined ? undefined : host.typeSlots(def.type, perNode);
    this.#self = host.ref({ type: def.type, id });
    const setup = new Set(def.setupHandlers ?? []);
    this.#setup = setup;
    this.#mailbox = new Mailbox(
      this.#options.mailbox,
      this.#options.concurrency,
      (item) => this.#turn(item),
      setup.size > 0 ? (item) => !setup.has(item.msg.type) : undefined,
    );
    this.#record = StateRecord.of(
      host,
      this.key,
      this.#options.durable.dedupKeys,
      committedKeptMs(this.#options.durable.ackWaitMs),
    );
    this.#persister =
      this.#options.persist && def.snapshot
        ? new Persister(
            this.#options.persist,
            host.clock,
            () => this.#record.save(),
            (err) => this.#persistFailed(err),
          )
        : undefined;
    this.#replies = new ReplySender(host, this.key);
    this.#inbound = new FastInbound(
      def,
      this.key,
      {
        accept: (msg, env, reply, inbox) => this.#accept(msg, env, reply, inbox),
        bad: (reply, err, inbox) => this.#answerBad(reply, err, inbox),
      },
      host.limits,
    );
    this.#durable = new DurableInbox(
      host,
      this.key,
      this.#record,
      this.#replies,
      () => void this.stop('a newer activation owns this actor'),
      this.#options.durable.ackWaitMs,
    );
    this.#intake = new DurableIntake(
      {
        host,
        def,
        id,
        key: this.key,
        stopped: () => this.#status === 'stopped',
        bad: (reply, err) => this.#answerBad(reply, err, undefined),
      },
      this.#durable,
      this.#mailbox,
    );
    if (def.snapshotOnDemand === true) this.#record.capture = (done) => this.#capture(done);
  }

  /**
   * On demand: the snapshot a write records is taken at a turn boundary, once per write — not after
   * every turn — with the keys applied by then (the write fixes it in the same step, see
   * StateRecord); a crash rolls back to it (see #crash).
   */
  #capture(done: (err?: unknown) => void): void {
    this.#mailbox.atRest(() => {
      if (this.#status === 'restarting') {
        this.#afterRestart.push(() => this.#capture(done));
        return;
      }
      if (this.#status === 'failed') {
        done(new ActorStopped(this.key, 'restart limit reached'));
        return;
      }
      // Stopped before its restart: the record keeps the last snapshot, which the restart would
      // have restored.
      if (this.#crashedState) {
        done();
        return;
      }
      try {
        // Read where the state's large arrays are: the write copies only the chunks that changed.
        this.#record.snapshot = encodeImage(this.def.snapshot!(this.#state));
      } catch (err) {
        this.host.guard.report('actor snapshot', err, { actor: this.key });
        this.#crash(err);
        done(err);
        return;
      }
      done();
    });
  }

  get status(): Status {
    return this.#status;
  }

  /**
   * Starts a fresh activation: restores the last persisted snapshot (fenced: see StateRecord.fence)
   * and opens its inboxes.
   */
  async start(): Promise<void> {
    await this.loadRecord();
    await this.#record.fence();
    await this.restore(undefined);
    await this.open(false);
  }

  /**
   * Reads the persisted record (snapshot, durable outcomes, revision), at `atLeast` or later; or loads
   * `shipped`, the record written at `atLeast` as its writer sent it (see StateRecord.shipment).
   */
  loadRecord(atLeast = 0, shipped?: ShippedRecord): Promise<void> {
    return this.#record.load(atLeast, shipped);
  }

  /** A migration's target: see StateRecord.noSweep. */
  adopting(): void {
    this.#record.noSweep();
  }

  /** Revision of the persisted record as this activation last read or wrote it. */
  get recordRevision(): number {
    return this.#record.revision;
  }

  /**
   * The snapshot of the record at recordRevision when it is stored in chunks that this activation
   * holds: after a read, and after a write of an actor that snapshots on demand (one that snapshots
   * after every turn keeps its last turn's encoding instead).
   */
  recordImage(): RecordImage | undefined {
    const snap = this.#record.snapshot;
    return snap instanceof FrozenSnapshot ? snap : undefined;
  }

  /** Builds the state: from `image` (a migration's snapshot) when given, else the record's snapshot, else `init`. */
  async restore(image: Uint8Array | undefined): Promise<void> {
    const old = this.#state;
    if (this.def.snapshotOnDemand === true && image !== undefined) {
      // The snapshot a crash rolls back to stays the record's, as read with its keys: the image holds
      // fast-mode effects the record does not. The state may view the image's bytes: nothing keeps them.
      this.#state = await this.def.restore!(decodeSnapshot(image), this.id);
    } else {
      if (image) this.#record.snapshot = image;
      this.#state = await this.#fresh();
    }
    this.#generation++;
    if (old !== undefined) void this.#deactivate(old);
  }

  /** A migration's target: applies one encoded change (delta hooks) to the state restored so far. */
  applyChange(change: Uint8Array): void {
    const { delta } = this.def;
    if (!delta)
      throw new InvalidOptions(
        `actor type "${this.def.type}" has no delta hooks on this node; a migration sends it whole images`,
      );
    this.#state = delta.apply(this.#state, decode(change));
  }

  /**
   * A migration's target, after changes were applied: the snapshot a restart would use is the state's
   * own (taken now, as after a turn) — on demand, the record's still (see restore).
   */
  adoptStaged(): void {
    if (this.def.snapshotOnDemand !== true) this.#snapshotNow();
  }

  /**
   * Subscribes to the actor's subject and starts its durable consumer. The subject is a queue group,
   * so that while a migration has both activations subscribed each message reaches one of them;
   * `hold` (a migration's target) keeps what arrives until `adopted().release()`, but for messages that
   * follow one `ran` says the source ran (see HeldMessages); with
   * `consumeAtRelease` (an actor that has had no durable messages) its consumer is made at the
   * release, not now: making one is the server's work beside the hand-off's last round trips, which it
   * slowed by ≈ 1 ms on a loaded 2-core machine, and a durable message that comes meanwhile waits in
   * the stream.
   */
  async open(
    hold: boolean,
    consumeAtRelease = false,
    ran: [string, number][] = [],
    committed: [number, number][] = [],
  ): Promise<void> {
    this.#status = 'running';
    this.#durable.adoptCommitted(committed);
    if (hold) {
      this.#ran.adopt(ran);
      this.#held = new HeldMessages(ran, (item) => this.#mailbox.offer(item, item.env.sender, true));
    }
    this.#sub = this.host.nc.subscribe(this.host.names.actor(this.def.type, this.id), {
      queue: ACTOR_QUEUE,
      callback: this.host.guard.callback('actor subject', (m: Msg) => this.#inbound.receive(m)),
    });
    if (hold) {
      // A migration's target owns the actor already (the directory moved): fast-mode callers wait on
      // nothing but the subscription, and a consumer that cannot start now is tried again.
      if (consumeAtRelease) this.#consumeAtRelease = true;
      else if (this.#intake.holding) this.#consumeDurable('reuse').catch((err) => this.#retryConsume(err, 0));
      else this.#consumeFresh();
      return;
    }
    try {
      // This activation follows one that may have died with messages sent to it and not acknowledged.
      await this.#consumeDurable('adopt');
    } catch (err) {
      this.#status = 'stopped';
      this.#sub.unsubscribe();
      await this.#durable.close();
      await this.dropState();
      throw err;
    }
  }

  /** A migration's target starts its consumer afresh; one that cannot start now is tried again. */
  #consumeFresh(): void {
    this.#consumeDurable('fresh').catch((err) => this.#retryConsume(err, 0));
  }

  async #consumeDurable(start: ConsumerStart = 'reuse'): Promise<void> {
    const created = (start === 'fresh' && this.#freshConsumer) || this.#createConsumer(start);
    this.#freshConsumer = undefined;
    await this.#durable.consume(
      this.def.type,
      this.id,
      this.#options.durable.ackWaitMs,
      this.#consumerCapacity(),
      (m) => this.#intake.delivered(m),
      created,
      this.#options.durable.pullExpiresMs,
      // A consumer that cannot be read right now (its new leader not elected yet) is tried again.
      async () => {
        if (this.#status === 'running') await this.#consumeDurable().catch((e) => this.#retryConsume(e, 0));
      },
    );
  }

  /** Half the mailbox at most, so fast-mode callers still find room while a backlog drains. */
  #consumerCapacity(): number {
    return Math.max(1, Math.floor(this.#mailbox.capacity / 2));
  }

  #createConsumer(start: ConsumerStart): Promise<ConsumerInfo | undefined> {
    const { ackWaitMs } = this.#options.durable;
    return this.#durable.create(this.def.type, this.id, ackWaitMs, this.#consumerCapacity(), start);
  }

  /**
   * A migration's target, for an actor that has had durable messages, as the directory moves to it:
   * makes the actor's consumer afresh meanwhile, so that once it owns the actor, reading durable
   * messages takes one round trip, not four. Never rejects.
   */
  prepareConsumer(): Promise<unknown> {
    this.#hadDurable = true;
    this.#freshConsumer = this.#createConsumer('fresh');
    return this.#freshConsumer;
  }

  /**
   * A migration's target, before the directory moves to it: reads the pull inboxes its source hands
   * over (see TakenPulls.take), instead of making the consumer afresh, and holds the durable
   * messages that come until the release.
   */
  takePulls(pulls: PullInbox[]): Promise<number> {
    this.#hadDurable = true;
    this.#intake.hold();
    return this.#durable.pulls.take(this.def.type, this.id, pulls, (m) => this.#intake.delivered(m));
  }

  /** A migration's target at `begin`: subscribes to the source's pull inboxes ahead of the commit (see TakenPulls.watch). */
  watchPulls(pulls: PullInbox[], keepMs: number): Promise<void> {
    return this.#durable.pulls.watch(this.def.type, this.id, pulls, keepMs);
  }

  /** The pull inboxes watched at `begin` are not taken over: the move ended, or its commit hands none over. */
  unwatchPulls(): void {
    this.#durable.pulls.unwatch();
  }

  /** The commit failed: the pull inboxes taken over go back to the source alone (see takePulls). */
  dropPulls(): Promise<void> {
    this.#intake.dropHeld();
    return this.#durable.close();
  }

  /**
   * Tries again soon, then less often: on a cluster a consumer made afresh by a migration's target can
   * be missing for a moment (its add still being applied).
   */
  #retryConsume(err: unknown, attempt: number): void {
    // The first tries are a move's consumer still being made; later ones say the server refuses it.
    this.host.log(attempt < 3 ? 'info' : 'warn', 'durable consumer not readable yet; trying again', {
      actor: this.key,
      error: err instanceof Error ? err.message : String(err),
      attempt,
    });
    this.host.clock.after(Math.min(1000, 25 * 2 ** attempt), () => {
      if (this.#status !== 'running') return;
      this.#consumeDurable().catch((e) => this.#retryConsume(e, attempt + 1));
    });
  }

  /**
   * The target's side of a committed migration: forwarded messages first, then what it held. Until the
   * source stops receiving, one sender's messages can reach either side: a forwarded message goes
   * after what this side holds from its sender with a lower count (Stitch-Seq). On one server those
   * have always arrived by then: the server sent them here before the source, which got the later
   * one, could forward it (one server's writes to a connection keep their order). Across a cluster's
   * routes they may not have (`merge`): then forwarded messages are held too, unless they follow one
   * known to have run, and what is held runs in each sender's order at the release.
   */
  adopted(merge: boolean): Adopted {
    return {
      forwarded: (items) => {
        for (const f of items) {
          if (f.j !== undefined) {
            this.#intake.forwarded(f, f.j);
            continue;
          }
          const item = this.#forwardedItem(f);
          if (!item) continue;
          const held = this.#held;
          if (merge && held && !held.follows(item)) {
            held.hold(item);
            continue;
          }
          if (!merge && f.q !== undefined) held?.before(f.s, f.q);
          // The source accepted it within its limits; refusing it now would turn a move into a caller error.
          this.#mailbox.offer(item, f.s, true);
          held?.passed(item);
        }
      },
      releaseDurable: () => this.#intake.release(),
      release: () => {
        const held = this.#held?.release() ?? [];
        this.#held = undefined;
        for (const item of held) this.#mailbox.offer(item, item.env.sender, true);
        this.#intake.release();
        if (!this.#consumeAtRelease) return;
        this.#consumeAtRelease = false;
        if (this.#status === 'running') this.#consumeFresh();
      },
    };
  }

  /** Moves this activation to node `to` while it serves (see migrateActivation). */
  migrateTo(
    to: string,
    ctx: Omit<MigrationContext, 'currentClaim' | 'fenceClaim'>,
  ): Promise<MigrationReport> {
    if (this.#status !== 'running' || this.#migrating)
      throw new InvalidOptions(
        `${this.key} is ${this.#migrating ? 'migrating already' : this.#status}; only a running actor migrates`,
      );
    this.#migrating = true;
    const dir = this.host.directory;
    const migrating = migrateActivation(
      {
        ...ctx,
        currentClaim: async () => {
          const now = await dir.current(this.key);
          return now && now.node === this.claim.node && now.epoch === this.claim.epoch ? now : undefined;
        },
        fenceClaim: async (claim) => {
          const revision = await dir.rewrite(this.key, claim);
          if (revision === undefined) return false;
          this.claim.revision = revision;
          return true;
        },
      },
      {
        key: this.key,
        type: this.def.type,
        id: this.id,
        image: () => {
          // On demand: taken now, mid-turn during the pre-copy too (the delta at the pause corrects it),
          // read where the state's arrays are, and not kept as the snapshot a restart rolls back to.
          if (this.def.snapshotOnDemand === true) return encodeImage(this.def.snapshot!(this.#state));
          return this.def.snapshot ? this.#snapshotBytes() : undefined;
        },
        changes: this.def.delta ? this.#changes(this.def.delta) : undefined,
        recordImage: () => this.recordImage(),
        recordRevision: () => this.#record.revision,
        recordMark: () => this.#record.mark(),
        shippedRecord: (since, maxBytes) => this.#record.shipment(since, maxBytes),
        hadDurable: () => this.#hadDurable || this.#intake.counters.delivered > 0,
        pullInboxes: () => this.#durable.pullInboxes(this.#options.durable.pullExpiresMs),
        // Moved again before the last move's hand-off ended: what it holds may follow messages still
        // at that source, so the next target learns nothing from here.
        ran: () => (this.#held ? [] : this.#ran.handOver(this.#queuedEnvelopes())),
        committedForMove: () => this.#durable.committedForMove(this.def.type, this.id),
        pause: (pullPrefix) => this.#pauseForMigration(pullPrefix),
        resume: () => this.#resumeAfterMigration(),
        // They stay queued (paused: nothing runs, and the queue only grows at its tail).
        queued: (from, maxBytes) => forwardedFrom(this.#mailbox.peek(), from, maxBytes),
        onQueued: (listener) => {
          this.#onQueued = listener;
        },
        stopPulling: (graceMs, maxBytes) => this.#stopPulling(graceMs, maxBytes),
        stopReceiving: (graceMs, waitedMs) => this.#stopReceiving(graceMs, waitedMs),
        takeQueued: (maxBytes, skip) => this.#takeQueued(maxBytes, skip),
        dropQueued: (count) => {
          let left = count;
          if (left > 0) this.#mailbox.removeWhere((item) => item.durable === undefined && left-- > 0);
        },
        bounce: (items) => {
          for (const f of items) {
            // A durable one goes back to the stream: the target reads the consumer's pulls.
            const m = f.j === undefined ? undefined : this.#intake.delivery(f.j);
            if (m) this.#intake.returnToStream(m);
            else if (f.r) this.#replies.send(f.r, failure(movedAway(this.key)));
          }
        },
        retire: () => {
          this.#status = 'stopped';
          this.host.forget(this);
          // The target owns the state now: whatever still holds this activation for a while (a grace
          // timer, a reply in flight) must not hold megabytes of it.
          void this.dropState();
          this.#record.snapshot = undefined;
        },
      },
      to,
    );
    return migrating.finally(() => {
      this.#migrating = false;
    });
  }

  /**
   * The delta hooks as a migration uses them. A mark carries the state's generation: after a restart
   * the actor's marks name a state that is gone, and the migration compares whole images instead.
   */
  #changes(delta: NonNullable<AnyActorDefinition['delta']>): MigratableChanges {
    type Mark = { generation: number; mark: unknown };
    const markNow = (): Mark => ({ generation: this.#generation, mark: delta.mark(this.#state) });
    return {
      // Image and mark at one instant (an every-turn snapshot may be older than the state by a turn in
      // flight); the image's large arrays are read as they are sent, which the changes since correct.
      begin: () => ({ image: encodeImage(this.def.snapshot!(this.#state)), mark: markNow() }),
      since: (m) => {
        const { generation, mark } = m as Mark;
        if (generation !== this.#generation) return undefined;
        const change = delta.since(this.#state, mark);
        return change === undefined ? undefined : { change: encode(change), mark: markNow() };
      },
    };
  }

  /** The record's snapshot as bytes; `copy`: bytes nothing else holds, even when it is one array already. */
  #snapshotBytes(copy = false): Uint8Array | undefined {
    const snap = this.#record.snapshot;
    if (snap instanceof Uint8Array && !copy) return snap;
    return snap && new Uint8Array(snap.subarray(0, snap.length));
  }

  #snapshotNow(): void {
    if (this.def.snapshot) this.#record.encodeSnapshot(this.def.snapshot(this.#state));
  }

  /**
   * Stops at a turn boundary with every durable effect committed and no save in flight. With
   * `pullPrefix` (a target that takes over pulls on inboxes under it) the consumer's pulls are
   * handed over when they can be (resolves with them): what they bring still comes, and durable
   * messages not run stay queued, to be forwarded with their acknowledgement subjects. Otherwise the
   * consumer closes and those go back to the stream, for the next owner, which makes it afresh.
   */
  async #pauseForMigration(pullPrefix?: string): Promise<PullInbox[] | undefined> {
    this.#mailbox.pause();
    await this.#mailbox.settled();
    const handed =
      pullPrefix === undefined
        ? undefined
        : this.#durable.holdPulls(pullPrefix, this.#options.durable.pullExpiresMs);
    this.#handingOver = handed !== undefined;
    if (!handed) {
      await this.#durable.close();
      for (const item of this.#intake.takeUnrun()) this.#intake.returnToStream(item.durable!);
    }
    await this.#durable.flush();
    await this.#persister?.close();
    return handed;
  }

  async #resumeAfterMigration(): Promise<void> {
    this.#status = 'running';
    this.#mailbox.resume();
    if (this.#handingOver) {
      this.#handingOver = false;
      this.#durable.releasePulls();
      return;
    }
    await this.#consumeDurable().catch((err) => this.#retryConsume(err, 0));
  }

  /**
   * Stops receiving, `graceMs` from now: the subscription drains (messages the server sent before it
   * took the unsubscribe are still delivered, until a flush confirms it) and they queue as while paused.
   */
  async #stopReceiving(graceMs: number, waitedMs: number): Promise<void> {
    const sub = this.#sub;
    if (!sub) return;
    // The second wait covers what a caller's server still routed to the source's server after the
    // source left: that server sends it on to the target, which holds it until `done` (see
    // NodeOptions.migrationGraceMs). No grace (one server) waits for no timer: a timer of 0 ms still
    // waits a turn of the event loop, ≥ 1 ms, and under load both waited 1–2 ms each in the pause.
    if (graceMs > waitedMs) await sleep(this.host.clock, graceMs - waitedMs);
    await sub.drain().catch(() => undefined);
    if (graceMs > 0) await sleep(this.host.clock, graceMs);
  }

  /**
   * After the directory moved, when the pause handed the consumer's pulls over: `graceMs` from now
   * (on a cluster, for the target's interest in them to reach the consumer's leader; the target has
   * read them since before the commit) stops reading them, and takes the durable messages not run, in
   * order, with their acknowledgement subjects, as forwarded messages. One over `maxBytes` goes back
   * to the stream (the target reads the pulls).
   */
  async #stopPulling(graceMs: number, maxBytes: number): Promise<ForwardedMessage[]> {
    if (!this.#handingOver) return [];
    if (graceMs > 0) await sleep(this.host.clock, graceMs);
    await this.#durable.close();
    const out: ForwardedMessage[] = [];
    for (const item of this.#intake.takeUnrun()) {
      const j = ackSubjectOf(item.durable!);
      const f = j === undefined ? undefined : forwardedOf(item);
      if (f && f.b.length <= maxBytes) out.push({ ...f, j });
      else this.#intake.returnToStream(item.durable!);
    }
    return out;
  }

  /**
   * Takes every message not run, but for the first `skip` fast-mode ones (the target has them):
   * durable ones back to the stream, fast-mode ones to forward.
   */
  #takeQueued(maxBytes: number, skip: number): ForwardedMessage[] {
    const out: ForwardedMessage[] = [];
    for (const item of [...this.#mailbox.clear(), ...this.#intake.takeHeld()]) {
      // None after the pulls were handed over (see #stopPulling); else back to the stream.
      if (item.durable) {
        this.#intake.returnToStream(item.durable);
        continue;
      }
      if (skip > 0) {
        skip--;
        continue;
      }
      const f = forwardedOf(item);
      if (f.b.length > maxBytes) {
        if (item.reply) this.#replies.send(item.reply, failure(movedAway(this.key)));
        continue;
      }
      out.push(f);
    }
    return out;
  }

  /** The envelopes of the fast-mode messages queued (paused: they go on to a migration's target). */
  *#queuedEnvelopes(): Iterable<Envelope> {
    for (const item of this.#mailbox.peek()) if (!item.durable) yield item.env;
  }

  /** A forwarded message as queued here; undefined (its caller answered) when it does not check. */
  #forwardedItem(f: ForwardedMessage): Incoming | undefined {
    try {
      return incomingOf(this.def, this.key, f);
    } catch (err) {
      this.#answerBad(f.r, err, undefined);
      return undefined;
    }
  }

  inspect(): ActorInspection {
    return {
      type: this.def.type,
      id: this.id,
      nodeId: this.host.nodeId,
      epoch: this.claim.epoch,
      status: this.#status,
      restarts: this.#budget.restarts,
      durable: {
        ...this.#intake.counters,
        repulls: this.#durable.repulls,
        unconfirmed: this.#record.unconfirmed.count,
        floorReads: this.#durable.floorReads,
      },
      slotWaitMs: Math.round(this.#slotWaitMs * 1000) / 1000,
      mailbox: this.#mailbox.metrics(),
      held: this.#held?.size ?? 0,
      ...(this.#persister ? { persist: this.#persister.metrics() } : {}),
    };
  }

  /** Stops taking messages, finishes the queue, persists the last snapshot and releases the directory entry. */
  async stop(reason: string): Promise<void> {
    if (this.#status === 'stopped' || this.#status === 'failed') return;
    this.#restart?.cancel();
    this.#consumeAtRelease = false;
    if (this.#held) this.adopted(false).release();
    await this.#sub?.drain().catch(() => undefined);
    await this.#durable.close();
    if (this.#status === 'running') await this.#mailbox.idle();
    this.#status = 'stopped';
    // Snapshots waiting for a restart that will not come now (see #capture).
    for (const step of this.#afterRestart.splice(0)) step();
    await this.#durable.settled();
    await this.#persister?.close();
    // On demand, the save takes the snapshot now (see #capture).
    if (this.def.snapshot) await this.#record.save().catch(() => undefined);
    await this.dropState();
    this.#rejectQueued(reason);
    await this.host.directory.release(this.key, this.claim).catch(() => undefined);
    this.host.forget(this);
  }

  /**
   * The state from the record's snapshot, else `init`. Decoded from a copy: a decoded state may view
   * the bytes it came from, and the snapshot must stay as taken for the next restart to start from.
   */
  async #fresh(): Promise<unknown> {
    const snap = this.#record.snapshot;
    if (snap && this.def.restore)
      return this.def.restore(decodeSnapshot(this.#snapshotBytes(true)!), this.id);
    return this.def.init ? this.def.init(this.id) : undefined;
  }

  /** Queues one message, or answers it at once when it is a system message or refused. */
  #accept(msg: { type: string }, env: Envelope, reply: string | undefined, inbox: string | undefined): void {
    const item: Incoming = { msg, env, reply, durable: undefined, key: env.idempotencyKey, inbox };
    if (msg.type === '$inspect' || msg.type === '$outcome') {
      if (!reply) return;
      if (msg.type === '$inspect')
        this.#replies.send(reply, { ok: true, data: encode(this.inspect()) }, inbox);
      else this.#durable.outcome(String((msg as { key?: unknown }).key), reply, inbox, env.deadline);
      // Answered here and now: the sender's next message need not wait for it after a move, unless
      // an earlier one of the sender may still be at a migration's source.
      if (this.#held && !this.#held.follows(item)) return;
      this.#ran.ran(env);
      this.#held?.passed(item);
      return;
    }
    const held = this.#held;
    // Not while a move's hand-off holds messages: a refusal there could leave a later one waiting.
    // Nor a set-up message (a coordinator's configure): refused, the actor could not serve even once
    // the node is calm again, and nobody would send it again.
    const shedding = held || this.#setup.has(msg.type) ? undefined : this.host.shedding?.refusal();
    if (shedding !== undefined) {
      this.#mailbox.countShed();
      if (reply)
        this.#replies.send(
          reply,
          failure(new Overloaded(`node ${this.host.nodeId} is shedding load: ${shedding}`)),
          inbox,
        );
      return;
    }
    let refused: Rejection | undefined;
    if (held && !held.follows(item)) {
      if (held.size < this.#mailbox.capacity) {
        held.hold(item);
        return;
      }
      refused = 'full';
    } else {
      refused = this.#mailbox.offer(item, env.sender);
      // Refused, it is answered at once: what follows it need not wait for it either.
      held?.passed(item);
    }
    if (!refused) this.#onQueued?.();
    if (refused && reply) {
      const detail =
        refused === 'full'
          ? `${this.key}'s mailbox is full (${this.#mailbox.capacity} messages)`
          : `sender ${env.sender} already has ${this.#mailbox.perCaller} messages in ${this.key}'s mailbox`;
      this.#replies.send(reply, failure(new Overloaded(detail)), inbox);
    }
  }

  /** Called by a turn's context when it got a device slot after waiting `ms` for it. */
  waitedForSlot(ms: number): void {
    this.#slotWaitMs += ms;
  }

  #answerBad(reply: string | undefined, err: unknown, inbox: string | undefined): void {
    this.host.guard.report('actor message', err, { actor: this.key });
    if (reply) this.#replies.send(reply, failure(err), inbox);
  }

  #turn(item: Incoming): void | Promise<void> {
    if (item.durable) return this.#durableTurn(item, item.durable);
    this.#ran.ran(item.env);
    const cached = item.key === undefined ? undefined : this.#recent.get(item.key);
    if (cached) {
      if (item.reply) this.#replies.send(item.reply, cached, item.inbox);
      return;
    }
    if (item.env.deadline < this.host.clock.now() && item.reply) return; // the caller has given up
    const out = this.#apply(item);
    if (out instanceof Promise) return out.then((o) => this.#answer(item, o));
    this.#answer(item, out);
  }

  /** A periodic save failed: superseded (a newer activation owns the actor) stops this one; else retry later. */
  #persistFailed(err: unknown): void {
    if (this.#record.superseded) {
      void this.stop('a newer activation owns this actor');
      return;
    }
    this.host.guard.report('actor persist', err, { actor: this.key });
  }

  #answer(item: Incoming, out: Outcome): void {
    this.#persister?.changed();
    if (item.key !== undefined) {
      this.#recent.remember(item.key, out);
    }
    if (item.reply) this.#replies.send(item.reply, out, item.inbox);
    else if (!out.ok) this.host.log('warn', 'tell failed', { actor: this.key, error: out.message });
  }

  #durableTurn(item: Incoming, m: DurableDelivery): void | Promise<void> {
    this.#durable.queued--;
    const done = this.#record.outcome(item.key!);
    if (done) {
      // Redelivery of an effect already applied (kill -9 before the ack, an ack the server lost, a
      // failed commit): answered and acked once a commit holds it, like the first delivery.
      this.#intake.counters.duplicatesSkipped++;
      this.#durable.applied({ m, reply: item.reply, out: done, key: item.env.idempotencyKey, repeat: true });
      return;
    }
    // #settled has recorded the outcome with the snapshot that holds its effect.
    const out = this.#apply(item);
    const applied = (o: Outcome) =>
      this.#durable.applied({ m, reply: item.reply, out: o, key: item.env.idempotencyKey });
    if (out instanceof Promise) return out.then(applied);
    applied(out);
  }

  #apply(item: Incoming): Outcome | Promise<Outcome> {
    const slots = this.#typeSlots;
    if (!slots) return this.#traced(item);
    // A free slot is taken at once, so a synchronous handler still answers in the same tick.
    const now = slots.tryAcquire();
    if (now) return this.#holding(now, () => this.#traced(item));
    const t0 = performance.now();
    return slots.acquire().then((release) => {
      this.waitedForSlot(performance.now() - t0);
      return this.#holding(release, () => this.#traced(item));
    });
  }

  /** Runs `turn` holding a slot, given back once its outcome is there (or it threw). */
  #holding(release: ReleaseSlot, turn: () => Outcome | Promise<Outcome>): Outcome | Promise<Outcome> {
    let out: Outcome | Promise<Outcome>;
    try {
      out = turn();
    } catch (err) {
      release();
      throw err;
    }
    if (out instanceof Promise) return out.finally(release);
    release();
    return out;
  }

  #traced(item: Incoming): Outcome | Promise<Outcome> {
    if (!tracesTurn(item.env.traceparent)) return this.#run(item);
    const info = {
      type: this.def.type,
      id: this.id,
      nodeId: this.host.nodeId,
      durable: item.durable !== undefined,
      message: item.msg.type,
    };
    return traceTurn(info, item.env, () => this.#run(item));
  }

  /** Runs the handler; synchronous handlers give a synchronous outcome (no microtask hop per message). */
  #run(item: Incoming): Outcome | Promise<Outcome> {
    if (item.msg.$stream !== undefined) return this.#runStreaming(item);
    return this.#runHandler(item, undefined);
  }

  /** A turn asked with `ref.stream()`: items go to the reader while it runs, its end follows the outcome. */
  #runStreaming(item: Incoming): Outcome | Promise<Outcome> {
    let stream: StreamWriter;
    try {
      if (item.durable) throw new InvalidOptions('streams are fast mode only; ask with ref.stream()');
      const spec = parseStreamSpec(item.msg.$stream);
      delete item.msg.$stream;
      stream = new StreamWriter(spec, {
        nc: this.host.nc,
        inboxPrefix: this.host.inboxPrefix ?? inboxPrefixOf(this.host.nc) ?? '_INBOX',
        clock: this.host.clock,
        maxPayload: this.host.limits.maxPayload,
        deadline: item.env.deadline,
      });
    } catch (error) {
      return this.#settled(item, failure(error));
    }
    const out = this.#runHandler(item, stream);
    if (out instanceof Promise)
      return out.then((o) => {
        stream.close(o);
        return o;
      });
    stream.close(out);
    return out;
  }

  #runHandler(item: Incoming, stream: StreamWriter | undefined): Outcome | Promise<Outcome> {
    const handler = this.def.handlers[item.msg.type]!;
    try {
      const ctx = new TurnContext(this.host, this.#self, item.env, this, stream);
      const result = handler(this.#state, item.msg, ctx);
      if (result instanceof Promise)
        return result.then(
          (r) => this.#succeeded(item, r),
          (e) => this.#failed(item, e),
        );
      return this.#succeeded(item, result);
    } catch (error) {
      return this.#failed(item, error);
    }
  }

  #succeeded(item: Incoming, result: unknown): Outcome {
    try {
      // Taken after every turn: it is also the point a crash restarts from.
      if (this.def.snapshot && this.def.snapshotOnDemand !== true)
        this.#record.encodeSnapshot(this.def.snapshot(this.#state));
    } catch (error) {
      // A state that cannot be snapshotted is not trusted further.
      this.#crash(error);
      return this.#settled(item, failure(error));
    }
    try {
      return this.#settled(item, { ok: true, data: encode(result) });
    } catch (error) {
      // Only this reply is lost (the state is fine): the caller gets BadMessage, the actor goes on.
      this.host.guard.report('actor reply', error, { actor: this.key });
      return this.#settled(item, failure(error));
    }
  }

  #failed(item: Incoming, error: unknown): Outcome {
    const code = (error as { code?: unknown })?.code;
    if (code === RuntimeErrorCode.Crash) this.#crash(error);
    else this.host.log('warn', 'handler threw', { actor: this.key, error: String(error) });
    return this.#settled(item, failure(error));
  }

  /**
   * Records a durable message's outcome in the same synchronous step as the snapshot that holds its
   * effect: a commit (which may start at any await) writes both or neither.
   */
  #settled(item: Incoming, out: Outcome): Outcome {
    if (item.durable) this.#record.remember(item.key!, out, item.durable.seq);
    return out;
  }

  /** Supervisor: restart from the last snapshot after a backoff, or stop for good past the restart limit. */
  #crash(error: unknown): void {
    if (this.#status !== 'running') return;
    this.host.log('warn', 'actor crashed', { actor: this.key, error: String(error) });
    if (this.def.snapshotOnDemand === true) {
      // Back to the last snapshot taken: the durable keys applied since are forgotten and their
      // messages go back to the stream, to be applied again on the restored state.
      this.#record.kept.dropFrom(this.#record.takenAt);
      this.#durable.rollBack();
    }
    const decision = this.#budget.crashed(this.host.clock.now());
    if (!decision.restart) {
      void this.#fail(error);
      return;
    }
    this.#status = 'restarting';
    this.#crashedState = true;
    this.#mailbox.pause();
    this.#restart = this.host.clock.after(decision.backoffMs, async () => {
      try {
        const state = await this.#fresh();
        // Stopped during the backoff or the restore: the activation is gone, nothing resumes.
        if (this.#status !== 'restarting') {
          void this.#deactivate(state);
          return;
        }
        const crashed = this.#state;
        this.#state = state;
        void this.#deactivate(crashed);
        this.#crashedState = false;
        this.#generation++;
        this.#status = 'running';
        for (const step of this.#afterRestart.splice(0)) step();
        this.#mailbox.resume();
      } catch (err) {
        if (this.#status !== 'restarting') return;
        this.#status = 'running';
        this.#crash(err);
      }
    });
  }

  /**
   * Past the restart limit: the directory entry is released first, so that by the time the actor
   * stops answering no caller can still find it (locate, or a spawn that meets AlreadyActive).
   */
  async #fail(error: unknown): Promise<void> {
    this.#status = 'failed';
    for (const step of this.#afterRestart.splice(0)) step();
    this.host.log('error', 'actor exceeded its restart limit and stopped', {
      actor: this.key,
      error: String(error),
    });
    await this.host.directory.release(this.key, this.claim).catch(() => undefined);
    this.host.forget(this);
    this.#sub?.unsubscribe();
    await this.#durable.close();
    await this.dropState();
    this.#rejectQueued('restart limit reached');
  }

  /**
   * Lets go of the state (see ActorDefinition.deactivate); also a migration's target whose move did
   * not commit. Never rejects; a second call finds nothing to let go of.
   */
  dropState(): Promise<void> {
    const state = this.#state;
    this.#state = undefined;
    return this.#deactivate(state);
  }

  async #deactivate(state: unknown): Promise<void> {
    if (state === undefined || !this.def.deactivate) return;
    try {
      await this.def.deactivate(state);
    } catch (err) {
      this.host.log('warn', 'deactivate threw', { actor: this.key, error: String(err) });
    }
  }

  #rejectQueued(reason: string): void {
    for (const item of this.#mailbox.clear()) {
      // Durable messages stay unacknowledged in the stream for the next activation.
      if (item.durable) continue;
      if (item.reply) this.#replies.send(item.reply, failure(new ActorStopped(this.key, reason)));
    }
  }
}

import type { JsMsg } from '@nats-io/jetstream';
import type { Msg, Subscription } from '@nats-io/transport-node';
import type { Claim } from '../cluster/directory.js';
import { ActorStopped, Overloaded, RuntimeErrorCode } from '../errors.js';
import { decode, encode } from '../wire/codec.js';
import {
  type Envelope,
  envelopeOf,
  readHeaders,
  readMessageHeaders,
  validReplySubject,
} from '../wire/envelope.js';
import { coreMsg } from '../wire/nats-internals.js';
import { failure, type Outcome } from '../wire/outcome.js';
import type { ActorInspection, ActorRef, AnyActorDefinition } from './definition.js';
import { DurableInbox } from './durable-inbox.js';
import type { Host } from './host.js';
import { FastInbound } from './inbound.js';
import { Mailbox } from './mailbox.js';
import { checkMessage } from './messages.js';
import { type ResolvedActorOptions, resolveActorOptions } from './options.js';
import { Persister } from './persister.js';
import { RecentOutcomes } from './recent-outcomes.js';
import { ReplySender } from './reply-sender.js';
import { StateRecord } from './state.js';
import { RestartBudget } from './supervisor.js';
import { TurnContext } from './turn-context.js';

interface Incoming {
  msg: { type: string };
  env: Envelope;
  reply: string | undefined;
  durable: JsMsg | undefined;
  /** Idempotency key, or the stream sequence for durable messages sent without one. */
  key: string | undefined;
  /** Arrived in a Stitch-Batch: the caller inbox its reply is coalesced under (the sender reads batches). */
  inbox: string | undefined;
}

type Status = ActorInspection['status'];

/** One live actor on this node: its mailbox, its subscriptions, its state and its supervisor. */
export class Activation {
  readonly key: string;
  #status: Status = 'starting';
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
  readonly #counters = { delivered: 0, redelivered: 0, duplicatesSkipped: 0 };
  readonly #self: ActorRef;
  readonly #replies: ReplySender;

  constructor(
    readonly host: Host,
    readonly def: AnyActorDefinition,
    readonly id: string,
    readonly claim: Claim,
  ) {
    this.key = host.names.key(def.type, id);
    this.#options = resolveActorOptions(def.type, def);
    this.#budget = new RestartBudget(this.#options.restart);
    this.#self = host.ref({ type: def.type, id });
    this.#mailbox = new Mailbox(this.#options.mailbox, this.#options.concurrency, (item) => this.#turn(item));
    this.#record = StateRecord.of(host, this.key, this.#options.durable.dedupKeys);
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
    this.#durable = new DurableInbox(host, this.key, this.#record, this.#replies, () => {
      void this.stop('a newer activation owns this actor');
    });
  }

  get status(): Status {
    return this.#status;
  }

  async start(): Promise<void> {
    await this.#record.load();
    this.#state = await this.#fresh();
    this.#status = 'running';
    this.#sub = this.host.nc.subscribe(this.host.names.actor(this.def.type, this.id), {
      callback: this.host.guard.callback('actor subject', (m: Msg) => this.#inbound.receive(m)),
    });
    // Half the mailbox at most, so fast-mode callers still find room while a backlog drains.
    const capacity = Math.max(1, Math.floor(this.#mailbox.capacity / 2));
    try {
      await this.#durable.consume(this.def.type, this.id, this.#options.durable.ackWaitMs, capacity, (m) =>
        this.#onDurable(m),
      );
    } catch (err) {
      this.#status = 'stopped';
      this.#sub.unsubscribe();
      await this.#durable.close();
      throw err;
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
      durable: { ...this.#counters },
      mailbox: this.#mailbox.metrics(),
      ...(this.#persister ? { persist: this.#persister.metrics() } : {}),
    };
  }

  /** Stops taking messages, finishes the queue, persists the last snapshot and releases the directory entry. */
  async stop(reason: string): Promise<void> {
    if (this.#status === 'stopped' || this.#status === 'failed') return;
    await this.#sub?.drain().catch(() => undefined);
    await this.#durable.close();
    if (this.#status === 'running') await this.#mailbox.idle();
    this.#status = 'stopped';
    await this.#durable.settled();
    await this.#persister?.close();
    if (this.def.snapshot) await this.#record.save().catch(() => undefined);
    this.#rejectQueued(reason);
    await this.host.directory.release(this.key, this.claim).catch(() => undefined);
    this.host.forget(this);
  }

  async #fresh(): Promise<unknown> {
    const snap = this.#record.snapshot;
    if (snap && this.def.restore) return this.def.restore(decode(snap), this.id);
    return this.def.init ? this.def.init(this.id) : undefined;
  }

  /** Queues one message, or answers it at once when it is a system message or refused. */
  #accept(msg: { type: string }, env: Envelope, reply: string | undefined, inbox: string | undefined): void {
    if (msg.type === '$inspect') {
      if (reply) this.#replies.send(reply, { ok: true, data: encode(this.inspect()) }, inbox);
      return;
    }
    if (msg.type === '$outcome') {
      if (reply) this.#durable.outcome(String((msg as { key?: unknown }).key), reply, inbox);
      return;
    }
    const item: Incoming = { msg, env, reply, durable: undefined, key: env.idempotencyKey, inbox };
    const refused = this.#mailbox.offer(item, env.sender);
    if (refused && reply) {
      const detail =
        refused === 'full'
          ? `${this.key}'s mailbox is full (${this.#mailbox.capacity} messages)`
          : `sender ${env.sender} already has ${this.#mailbox.perCaller} messages in ${this.key}'s mailbox`;
      this.#replies.send(reply, failure(new Overloaded(detail)), inbox);
    }
  }

  #onDurable(m: JsMsg): void {
    this.#counters.delivered++;
    if (m.redelivered) this.#counters.redelivered++;
    const core = coreMsg(m);
    const h = core ? readMessageHeaders(core) : readHeaders(m.headers);
    const env = envelopeOf(h);
    // A header-borne reply subject is whatever the publisher wrote: one that is not a subject means no reply.
    const reply = validReplySubject(h.replyTo);
    let msg: { type: string };
    try {
      msg = checkMessage(this.def, this.key, decode(m.data));
    } catch (err) {
      this.#answerBad(reply, err, undefined);
      m.term();
      return;
    }
    const key = env.idempotencyKey ?? `seq-${m.seq}`;
    // Durable messages bypass the limits: the consumer's max_ack_pending already bounds them.
    this.#durable.queued++;
    this.#mailbox.offer({ msg, env, reply, durable: m, key, inbox: undefined }, '$durable', true);
  }

  #answerBad(reply: string | undefined, err: unknown, inbox: string | undefined): void {
    this.host.guard.report('actor message', err, { actor: this.key });
    if (reply) this.#replies.send(reply, failure(err), inbox);
  }

  #turn(item: Incoming): void | Promise<void> {
    if (item.durable) return this.#durableTurn(item, item.durable);
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

  #durableTurn(item: Incoming, m: JsMsg): void | Promise<void> {
    this.#durable.queued--;
    const done = this.#record.outcome(item.key!);
    if (done) {
      // Redelivery of an effect already recorded (kill -9 before the ack, or an ack the server lost).
      this.#counters.duplicatesSkipped++;
      if (item.reply) this.#replies.send(item.reply, done);
      this.#durable.ack(m);
      return;
    }
    // #settled has recorded the outcome with the snapshot that holds its effect.
    const out = this.#apply(item);
    const applied = (o: Outcome) =>
      this.#durable.applied({ m, reply: item.reply, out: o, key: item.env.idempotencyKey });
    if (out instanceof Promise) return out.then(applied);
    applied(out);
  }

  /** Runs the handler; synchronous handlers give a synchronous outcome (no microtask hop per message). */
  #apply(item: Incoming): Outcome | Promise<Outcome> {
    const handler = this.def.handlers[item.msg.type]!;
    try {
      const result = handler(this.#state, item.msg, new TurnContext(this.host, this.#self, item.env));
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
      if (this.def.snapshot) this.#record.snapshot = encode(this.def.snapshot(this.#state));
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
    if (item.durable) this.#record.remember(item.key!, out);
    return out;
  }

  /** Supervisor: restart from the last snapshot after a backoff, or stop for good past the restart limit. */
  #crash(error: unknown): void {
    if (this.#status !== 'running') return;
    this.host.log('warn', 'actor crashed', { actor: this.key, error: String(error) });
    const decision = this.#budget.crashed(this.host.clock.now());
    if (!decision.restart) {
      void this.#fail(error);
      return;
    }
    this.#status = 'restarting';
    this.#mailbox.pause();
    this.host.clock.after(decision.backoffMs, async () => {
      try {
        this.#state = await this.#fresh();
        this.#status = 'running';
        this.#mailbox.resume();
      } catch (err) {
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
    this.host.log('error', 'actor exceeded its restart limit and stopped', {
      actor: this.key,
      error: String(error),
    });
    await this.host.directory.release(this.key, this.claim).catch(() => undefined);
    this.host.forget(this);
    this.#sub?.unsubscribe();
    await this.#durable.close();
    this.#rejectQueued('restart limit reached');
  }

  #rejectQueued(reason: string): void {
    for (const item of this.#mailbox.clear()) {
      // Durable messages stay unacknowledged in the stream for the next activation.
      if (item.durable) continue;
      if (item.reply) this.#replies.send(item.reply, failure(new ActorStopped(this.key, reason)));
    }
  }
}

import { AckPolicy, type ConsumerMessages, DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { nanos, headers as natsHeaders } from '@nats-io/transport-node';
import type { ActorContext, ActorInspection, ActorRef, ActorRefData, AnyActorDefinition } from './definition.js';
import { decodeRequests, encodeReplies, type ReplyItem, replyBytes } from '../wire/batch.js';
import { Assembler, HEADER_ROOM } from '../wire/chunks.js';
import { Coalescer } from '../wire/coalesce.js';
import { decode, encode } from '../wire/codec.js';
import type { Claim } from '../cluster/directory.js';
import {
  type Envelope,
  envelopeOf,
  H,
  isTraceparent,
  newTraceparent,
  readHeaders,
  readMessageHeaders,
} from '../wire/envelope.js';
import { ActorStopped, BadMessage, Overloaded } from '../errors.js';
import type { Host } from './host.js';
import { Mailbox } from './mailbox.js';
import { OutgoingHeaders } from '../wire/outgoing-headers.js';
import { failure, type Outcome, StateRecord } from './state.js';
import { publish, publishOne } from '../wire/publish.js';

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

interface OutgoingReply extends ReplyItem {
  bytes: number;
}

type Status = ActorInspection['status'];

/**
 * The caller inbox a reply subject belongs to (the subject without its last token); `likely` (the
 * batch's own inbox) is returned as the same string when it matches, so coalescing hashes it once.
 */
function inboxOf(reply: string, likely: string | undefined): string {
  const n = likely?.length ?? 0;
  if (
    likely !== undefined &&
    reply.charCodeAt(n) === 46 &&
    reply.startsWith(likely) &&
    reply.indexOf('.', n + 1) === -1
  )
    return likely;
  return reply.slice(0, reply.lastIndexOf('.'));
}

/** The context of one turn; a class so that a turn allocates one small object and no closure. */
class TurnContext implements ActorContext {
  readonly #host: Host;
  readonly #env: Envelope;

  constructor(
    host: Host,
    readonly self: ActorRef,
    env: Envelope,
  ) {
    this.#host = host;
    this.#env = env;
  }

  get nodeId(): string {
    return this.#host.nodeId;
  }
  /** Checked here, on use, rather than for every message of a batch. */
  get traceparent(): string {
    if (!isTraceparent(this.#env.traceparent)) this.#env.traceparent = newTraceparent();
    return this.#env.traceparent;
  }
  get sender(): string {
    return this.#env.sender;
  }
  get idempotencyKey(): string | undefined {
    return this.#env.idempotencyKey;
  }
  get deadline(): number {
    return this.#env.deadline;
  }
  ref<D extends AnyActorDefinition = AnyActorDefinition>(data: ActorRefData): ActorRef<D> {
    return this.#host.ref(data) as unknown as ActorRef<D>;
  }
}

const RECENT_FAST_KEYS = 1000;
const COMMIT_BATCH = 64;

/** One live actor on this node: its mailbox, its subscriptions, its state and its supervisor. */
export class Activation {
  readonly key: string;
  #status: Status = 'starting';
  #state: unknown;
  #restarts = 0;
  #restartTimes: number[] = [];
  #sub: Subscription | undefined;
  #consumer: ConsumerMessages | undefined;
  #workingTimer: NodeJS.Timeout | undefined;
  readonly #mailbox: Mailbox<Incoming>;
  readonly #assembler = new Assembler();
  readonly #recent = new Map<string, Outcome>();
  readonly #record: StateRecord;
  /** Applied durable messages awaiting the group commit; `key` is the idempotency key they were sent with. */
  #uncommitted: { m: JsMsg; reply: string | undefined; out: Outcome; key: string | undefined }[] = [];
  #commits: Promise<void> = Promise.resolve();
  /** Durable messages queued but not yet started: a commit waits until this is 0 (or the batch is full). */
  #durableQueued = 0;
  /** Reply subjects waiting for the outcome of a durable key that is not applied yet. */
  readonly #waiters = new Map<string, string[]>();
  readonly #counters = { delivered: 0, redelivered: 0, duplicatesSkipped: 0 };
  readonly #self: ActorRef;
  /** Replies to batched asks, coalesced per caller inbox (the reply subject without its token). */
  readonly #replies: Coalescer<OutgoingReply>;

  constructor(
    readonly host: Host,
    readonly def: AnyActorDefinition,
    readonly id: string,
    readonly claim: Claim,
  ) {
    this.key = host.names.key(def.type, id);
    this.#self = host.ref({ type: def.type, id });
    this.#mailbox = new Mailbox(def.mailbox ?? {}, def.concurrency ?? 1, (item) => this.#turn(item));
    this.#record = new StateRecord(host.stateKv, this.key, def.durable?.dedupKeys ?? 1000);
    this.#replies = new Coalescer(host.limits.maxPayload - HEADER_ROOM, (_inbox, items) =>
      this.#sendReplies(items),
    );
  }

  get status(): Status {
    return this.#status;
  }

  get nc(): NatsConnection {
    return this.host.nc;
  }

  async start(): Promise<void> {
    await this.#record.load();
    this.#state = await this.#fresh();
    this.#status = 'running';
    this.#sub = this.nc.subscribe(this.host.names.actor(this.def.type, this.id), {
      callback: (err, m) => {
        if (!err) this.#onFast(m);
      },
    });
    try {
      await this.#startConsumer();
    } catch (err) {
      this.#status = 'stopped';
      this.#sub.unsubscribe();
      clearInterval(this.#workingTimer);
      await this.#consumer?.close().catch(() => undefined);
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
      restarts: this.#restarts,
      durable: { ...this.#counters },
      mailbox: this.#mailbox.metrics(),
    };
  }

  /** Stops taking messages, finishes the queue, persists the last snapshot and releases the directory entry. */
  async stop(reason: string): Promise<void> {
    if (this.#status === 'stopped' || this.#status === 'failed') return;
    await this.#sub?.drain().catch(() => undefined);
    await this.#consumer?.close().catch(() => undefined);
    if (this.#status === 'running') await this.#mailbox.idle();
    this.#status = 'stopped';
    clearInterval(this.#workingTimer);
    await this.#commits;
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

  async #startConsumer(): Promise<void> {
    const { jsm, js, names } = this.host;
    const name = names.consumer(this.def.type, this.id);
    const ackWaitMs = this.def.durable?.ackWaitMs ?? 5000;
    // Half the mailbox at most, so fast-mode callers still find room while a backlog drains.
    const capacity = Math.max(1, Math.floor(this.#mailbox.capacity / 2));
    await jsm.consumers
      .add(names.stream, {
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: names.durable(this.def.type, this.id),
        ack_wait: nanos(ackWaitMs),
        max_ack_pending: capacity,
      })
      .catch(() => undefined);
    const consumer = await js.consumers.get(names.stream, name);
    this.#consumer = await consumer.consume({ max_messages: Math.max(1, Math.min(capacity, 256)) });
    // A long turn keeps its unacknowledged messages from being redelivered meanwhile.
    this.#workingTimer = setInterval(() => {
      for (const u of this.#uncommitted) u.m.working();
    }, ackWaitMs / 3);
    this.#workingTimer.unref();
    const messages = this.#consumer;
    void (async () => {
      for await (const m of messages) this.#onDurable(m);
    })().catch((err) =>
      this.host.log('warn', 'durable consumer ended', { actor: this.key, error: String(err) }),
    );
  }

  #onFast(m: Msg): void {
    let data = m.data;
    const h = readMessageHeaders(m);
    if (h.chunk) {
      const whole = this.#assembler.add('', h.chunk, data);
      if (!whole) return;
      data = whole;
    }
    if (h.batch) {
      this.#onBatch(m, data, h.sender || 'unknown');
      return;
    }
    let msg: { type: string };
    try {
      msg = this.#parse(data);
    } catch (err) {
      this.#answerBad(m.reply, err, undefined);
      return;
    }
    this.#accept(msg, envelopeOf(h), m.reply, undefined);
  }

  /** Unpacks coalesced asks/tells; each item then goes exactly the way a single message would. */
  #onBatch(m: Msg, data: Uint8Array, sender: string): void {
    let items: ReturnType<typeof decodeRequests>;
    try {
      items = decodeRequests(data);
    } catch (err) {
      this.#answerBad(m.reply, err, undefined);
      return;
    }
    const batchInbox = m.reply ? inboxOf(m.reply, undefined) : undefined;
    for (const i of items) {
      const inbox = i.reply ? inboxOf(i.reply, batchInbox) : undefined;
      let msg: { type: string };
      try {
        if (i.error) throw i.error;
        msg = this.#check(i.message);
      } catch (err) {
        this.#answerBad(i.reply, err, inbox);
        continue;
      }
      const env: Envelope = {
        traceparent: i.traceparent,
        sender,
        deadline: i.deadline,
        ...(i.key !== undefined ? { idempotencyKey: i.key } : {}),
      };
      this.#accept(msg, env, i.reply, inbox);
    }
  }

  /** Queues one message, or answers it at once when it is a system message or refused. */
  #accept(msg: { type: string }, env: Envelope, reply: string | undefined, inbox: string | undefined): void {
    if (msg.type === '$inspect') {
      if (reply) this.#send(reply, { ok: true, data: encode(this.inspect()) }, inbox);
      return;
    }
    if (msg.type === '$outcome') {
      if (reply) this.#outcome(String((msg as { key?: unknown }).key), reply, inbox);
      return;
    }
    const item: Incoming = { msg, env, reply, durable: undefined, key: env.idempotencyKey, inbox };
    const refused = this.#mailbox.offer(item, env.sender);
    if (refused && reply) {
      const detail =
        refused === 'full'
          ? `${this.key}'s mailbox is full (${this.#mailbox.capacity} messages)`
          : `sender ${env.sender} already has ${this.#mailbox.perCaller} messages in ${this.key}'s mailbox`;
      this.#send(reply, failure(new Overloaded(detail)), inbox);
    }
  }

  #onDurable(m: JsMsg): void {
    this.#counters.delivered++;
    if (m.redelivered) this.#counters.redelivered++;
    const h = readHeaders(m.headers);
    const env = envelopeOf(h);
    const reply = h.replyTo || undefined;
    let msg: { type: string };
    try {
      msg = this.#parse(m.data);
    } catch (err) {
      this.#answerBad(reply, err, undefined);
      m.term();
      return;
    }
    const key = env.idempotencyKey ?? `seq-${m.seq}`;
    // Durable messages bypass the limits: the consumer's max_ack_pending already bounds them.
    this.#durableQueued++;
    this.#mailbox.offer({ msg, env, reply, durable: m, key, inbox: undefined }, '$durable', true);
  }

  /**
   * Answers a durable ask whose publish the stream dropped as a duplicate: from the effect record when
   * the key is applied, else once its (first) message commits.
   */
  #outcome(key: string, reply: string, inbox: string | undefined): void {
    const done = this.#record.processed.get(key);
    if (done) {
      this.#send(reply, done, inbox);
      return;
    }
    const waiting = this.#waiters.get(key) ?? [];
    if (waiting.length < 64) waiting.push(reply);
    this.#waiters.set(key, waiting);
  }

  #parse(data: Uint8Array): { type: string } {
    return this.#check(decode(data));
  }

  #check(value: unknown): { type: string } {
    const msg = value as { type?: unknown } | null;
    if (typeof msg !== 'object' || msg === null || typeof msg.type !== 'string') {
      throw new BadMessage(`${this.key} got a message that is not an object with a string "type"`);
    }
    if (!msg.type.startsWith('$') && !Object.hasOwn(this.def.handlers, msg.type)) {
      throw new BadMessage(
        `${this.key} has no handler "${msg.type}" (it has ${Object.keys(this.def.handlers).join(', ')})`,
      );
    }
    return msg as { type: string };
  }

  #answerBad(reply: string | undefined, err: unknown, inbox: string | undefined): void {
    this.host.log('warn', 'dropped a malformed message', { actor: this.key, error: (err as Error).message });
    if (reply) this.#send(reply, failure(err), inbox);
  }

  #turn(item: Incoming): void | Promise<void> {
    if (item.durable) return this.#durableTurn(item, item.durable);
    const cached = item.key === undefined ? undefined : this.#recent.get(item.key);
    if (cached) {
      if (item.reply) this.#send(item.reply, cached, item.inbox);
      return;
    }
    if (item.env.deadline < Date.now() && item.reply) return; // the caller has given up
    const out = this.#apply(item);
    if (out instanceof Promise) return out.then((o) => this.#answer(item, o));
    this.#answer(item, out);
  }

  #answer(item: Incoming, out: Outcome): void {
    if (item.key !== undefined) {
      this.#recent.set(item.key, out);
      if (this.#recent.size > RECENT_FAST_KEYS) this.#recent.delete(this.#recent.keys().next().value!);
    }
    if (item.reply) this.#send(item.reply, out, item.inbox);
    else if (!out.ok) this.host.log('warn', 'tell failed', { actor: this.key, error: out.message });
  }

  async #durableTurn(item: Incoming, m: JsMsg): Promise<void> {
    this.#durableQueued--;
    const key = item.key!;
    const done = this.#record.processed.get(key);
    if (done) {
      // Redelivery of an effect already recorded (kill -9 before the ack, or an ack the server lost).
      this.#counters.duplicatesSkipped++;
      if (item.reply) this.#send(item.reply, done);
      m.ack();
      return;
    }
    const out = await this.#apply(item);
    this.#record.remember(key, out);
    this.#uncommitted.push({ m, reply: item.reply, out, key: item.env.idempotencyKey });
    if (this.#durableQueued === 0 || this.#uncommitted.length >= COMMIT_BATCH) await this.#commit();
  }

  /**
   * Group commit: one KV write records the snapshot and the idempotency keys of every message applied
   * since the last one; only then are replies sent and messages acked. A crash before the write loses
   * the effects and the messages are redelivered; a crash after it finds the keys and skips them.
   */
  #commit(): Promise<void> {
    this.#commits = this.#commits.then(async () => {
      const batch = this.#uncommitted;
      if (batch.length === 0) return;
      this.#uncommitted = [];
      try {
        await this.#record.save();
      } catch (err) {
        this.host.log('error', 'could not persist state; messages will be redelivered', {
          actor: this.key,
          error: String(err),
        });
        for (const u of batch) u.m.nak(1000);
        if (this.#record.superseded) void this.stop('a newer activation owns this actor');
        return;
      }
      for (const u of batch) {
        if (u.reply) this.#send(u.reply, u.out);
        u.m.ack();
        for (const w of (u.key && this.#waiters.get(u.key)) || []) this.#send(w, u.out);
        if (u.key) this.#waiters.delete(u.key);
      }
    });
    return this.#commits;
  }

  /** Runs the handler; synchronous handlers give a synchronous outcome (no microtask hop per message). */
  #apply(item: Incoming): Outcome | Promise<Outcome> {
    const handler = this.def.handlers[item.msg.type]!;
    try {
      const result = handler(this.#state, item.msg, this.#context(item));
      if (result instanceof Promise)
        return result.then(
          (r) => this.#succeeded(r),
          (e) => this.#failed(e),
        );
      return this.#succeeded(result);
    } catch (error) {
      return this.#failed(error);
    }
  }

  #succeeded(result: unknown): Outcome {
    try {
      if (this.def.snapshot) this.#record.snapshot = this.#snapshotBytes();
      return { ok: true, data: encode(result) };
    } catch (error) {
      // A state that cannot be snapshotted (or a reply that cannot be encoded) is not trusted further.
      this.#crash(error);
      return failure(error);
    }
  }

  #failed(error: unknown): Outcome {
    if ((error as { code?: unknown })?.code === 'ACTOR_CRASH') this.#crash(error);
    return failure(error);
  }

  #snapshotBytes(): Uint8Array {
    return encode(this.def.snapshot!(this.#state));
  }

  #context(item: Incoming): ActorContext {
    return new TurnContext(this.host, this.#self, item.env);
  }

  /** Answers `subject`; a batched caller's replies wait for the end of the tick to go out together. */
  #send(subject: string, out: Outcome, inbox?: string): void {
    if (inbox === undefined) {
      this.#publishReply(subject, out);
      return;
    }
    const item: OutgoingReply = { reply: subject, out, bytes: 0 };
    item.bytes = replyBytes(item);
    this.#replies.add(inbox, item);
  }

  #sendReplies(items: OutgoingReply[]): void {
    try {
      if (items.length === 1) {
        this.#publishReply(items[0]!.reply, items[0]!.out);
        return;
      }
      const h = new OutgoingHeaders();
      h.set(H.batch, String(items.length));
      publishOne(this.nc, items[0]!.reply, encodeReplies(items), { headers: h });
    } catch (err) {
      // The connection is closing or gone; the callers time out as they would for a lost reply.
      this.host.log('warn', 'could not send replies', { actor: this.key, error: String(err) });
    }
  }

  #publishReply(subject: string, out: Outcome): void {
    if (out.ok) {
      try {
        publish(this.nc, subject, out.data, {}, this.host.limits);
        return;
      } catch (err) {
        out = failure(err);
      }
    }
    if (out.ok) return;
    const h = natsHeaders();
    h.set(H.errorCode, out.code);
    h.set(H.errorName, out.name);
    this.nc.publish(subject, Buffer.from(out.message), { headers: h });
  }

  /** Supervisor: restart from the last snapshot after a backoff, or stop for good past the restart limit. */
  #crash(error: unknown): void {
    if (this.#status !== 'running') return;
    const policy = this.def.restart ?? {};
    const now = Date.now();
    this.#restartTimes = this.#restartTimes.filter((t) => now - t < (policy.withinMs ?? 60_000));
    this.host.log('warn', 'actor crashed', { actor: this.key, error: String(error) });
    if (this.#restartTimes.length >= (policy.maxRestarts ?? 5)) {
      void this.#fail(error);
      return;
    }
    this.#status = 'restarting';
    this.#mailbox.pause();
    this.#restartTimes.push(now);
    this.#restarts++;
    const backoff = Math.min(
      policy.maxBackoffMs ?? 5000,
      (policy.backoffMs ?? 50) * 2 ** (this.#restartTimes.length - 1),
    );
    setTimeout(async () => {
      try {
        this.#state = await this.#fresh();
        this.#status = 'running';
        this.#mailbox.resume();
      } catch (err) {
        this.#status = 'running';
        this.#crash(err);
      }
    }, backoff);
  }

  async #fail(error: unknown): Promise<void> {
    this.#status = 'failed';
    this.host.log('error', 'actor exceeded its restart limit and stopped', {
      actor: this.key,
      error: String(error),
    });
    clearInterval(this.#workingTimer);
    await this.#sub?.unsubscribe();
    await this.#consumer?.close().catch(() => undefined);
    this.#rejectQueued('restart limit reached');
    await this.host.directory.release(this.key, this.claim).catch(() => undefined);
    this.host.forget(this);
  }

  #rejectQueued(reason: string): void {
    for (const item of this.#mailbox.clear()) {
      // Durable messages stay unacknowledged in the stream for the next activation.
      if (item.durable) continue;
      if (item.reply) this.#send(item.reply, failure(new ActorStopped(this.key, reason)));
    }
  }
}

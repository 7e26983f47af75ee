import { nuid } from '@nats-io/transport-node';
import type { AskOptions, TellOptions } from '../actor/definition.js';
import { sleep } from '../clock.js';
import { ClusterNotInitialized, NoResponders, Overloaded, PayloadTooLarge, Timeout } from '../errors.js';
import type { StreamSpec } from '../stream/frames.js';
import { ActorStream, type StreamOptions } from '../stream/reader.js';
import { traceSend, tracingEnabled } from '../tracing.js';
import { encodeRequests, type RequestItem, requestBytesAtMost } from '../wire/batch.js';
import { HEADER_ROOM } from '../wire/chunks.js';
import { Coalescer } from '../wire/coalesce.js';
import { encode } from '../wire/codec.js';
import { type Envelope, envelopeBlock, envelopeHeaders, H, newTraceparent } from '../wire/envelope.js';
import { jetStreamPublisher, type PubAck } from '../wire/js-publish.js';
import { publishDirect } from '../wire/nats-internals.js';
import { OutgoingHeaders } from '../wire/outgoing-headers.js';
import { publish, publishOne } from '../wire/publish.js';
import type { ClusterParts } from './parts.js';
import type { Pending, Replies } from './replies.js';

/** A fast-mode ask (with the reply it waits for) or tell (with `sent`) waiting for the end of the tick. */
interface Outgoing extends RequestItem {
  bytes: number;
  pending: Pending | undefined;
  sent: ((err?: Error) => void) | undefined;
}

/** An actor's subject, its directory key and its label in errors, built once per actor. */
interface Route {
  subject: string;
  key: string;
  target: string;
}

/** The first wait for the mailbox stream's answer to a durable publish (see #publishAcked). */
const PUBLISH_ATTEMPT_MS = 250;
/**
 * First wait before a durable publish that no stream took goes again (doubling, at most 1 s): on a
 * cluster the stream is between leaders for the seconds of an election (4-9 s on nats-server 2.9),
 * and every server answers no-responders meanwhile.
 */
const NO_STREAM_RETRY_MS = 100;
/** How long the question "is the stream there at all?" may take once a publish has waited in vain. */
const STREAM_INFO_TIMEOUT_MS = 1000;

/** JetStream's message-id header: the stream drops a repeat within its duplicate window. */
const MSG_ID = 'Nats-Msg-Id';

/** Actors whose routes are cached; past this the cache starts over, so it stays small. */
const MAX_ROUTES = 10_000;

/**
 * Sends asks and tells to actors: fast mode coalesces one tick's sends to an actor into one message
 * (see batch.ts); durable mode publishes to the actor's stream subject.
 */
export class ActorSender {
  readonly #parts: ClusterParts;
  readonly #clientId: string;
  readonly #replies: Replies;
  readonly #askTimeoutMs: number;
  readonly #outbox: Coalescer<Outgoing>;
  readonly #routes = new Map<string, Map<string, Route>>();
  #routeCount = 0;
  /** Fast-mode messages published so far (Stitch-Seq): a migration's target orders by it. */
  #seq = 0;
  /** Per actor subject, the count of the last message published to it (Stitch-Prev); starts over past MAX_ROUTES. */
  readonly #lastSeq = new Map<string, number>();
  /** The table started over once: a subject not in it may have had messages (no Stitch-Prev then). */
  #forgot = false;
  #publishesAgain = 0;

  constructor(parts: ClusterParts, clientId: string, replies: Replies, askTimeoutMs: number) {
    this.#parts = parts;
    this.#clientId = clientId;
    this.#replies = replies;
    this.#askTimeoutMs = askTimeoutMs;
    this.#outbox = new Coalescer(parts.limits.maxPayload - HEADER_ROOM, (subject, items) =>
      this.#sendActor(subject, items),
    );
  }

  ask(type: string, id: string, msg: unknown, options: AskOptions): Promise<unknown> {
    if (tracingEnabled()) return traceSend('ask', type, id, options, (o) => this.#ask(type, id, msg, o));
    return this.#ask(type, id, msg, options);
  }

  #ask(type: string, id: string, msg: unknown, options: AskOptions): Promise<unknown> {
    if (options.mode === 'durable') return this.#askDurable(type, id, msg, options);
    const retries = options.retries ?? 0;
    const opts =
      retries > 0 && !options.idempotencyKey ? { ...options, idempotencyKey: nuid.next() } : options;
    const route = this.route(type, id);
    if (retries === 0) return this.#askActor(route, msg, opts);
    return this.#withRetries(() => this.#askActor(route, msg, opts), retries);
  }

  tell(type: string, id: string, msg: unknown, options: TellOptions): Promise<void> {
    if (tracingEnabled()) return traceSend('tell', type, id, options, (o) => this.#tell(type, id, msg, o));
    return this.#tell(type, id, msg, options);
  }

  async #tell(type: string, id: string, msg: unknown, options: TellOptions): Promise<void> {
    const env = this.#envelope(options, Number.POSITIVE_INFINITY);
    const data = encode(msg);
    if (options.mode === 'durable') {
      await this.#publishDurable(type, id, data, env, undefined, this.#askTimeoutMs);
      return;
    }
    // Resolves once published (at the end of this tick), so a publish error still reaches the caller.
    await new Promise<void>((resolve, reject) =>
      this.#enqueue(this.route(type, id).subject, {
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

  /**
   * A stream from an actor: `ask` sends the message carrying `$stream` (the reader's inbox and window)
   * through the caller's transport (plain or virtual), in fast mode, with the stream's deadline.
   */
  stream(
    msg: unknown,
    options: StreamOptions,
    ask: (msg: unknown, options: AskOptions) => Promise<unknown>,
  ): ActorStream {
    const { nc, inboxPrefix, clock } = this.#parts;
    const askOptions: AskOptions = {
      timeoutMs: options.timeoutMs ?? 60_000,
      ...(options.traceparent !== undefined ? { traceparent: options.traceparent } : {}),
    };
    return new ActorStream(nc, inboxPrefix, clock, options, (spec: StreamSpec) =>
      ask({ ...(msg as object), $stream: spec }, askOptions),
    );
  }

  /** A request to a node or service subject (not coalesced): resolves with the decoded reply. */
  request(subject: string, msg: unknown, timeoutMs: number, target: string): Promise<unknown> {
    const env = this.#envelope({}, this.#parts.clock.now() + timeoutMs);
    const data = encode(msg);
    return this.#replies.wait(target, timeoutMs, (reply) => {
      publish(this.#parts.nc, subject, data, { reply, headers: envelopeHeaders(env) }, this.#parts.limits);
    });
  }

  /**
   * The subject, key and error label of an actor, the same string objects on every ask: the outbox is
   * keyed by subject, and a string built afresh per ask is hashed afresh per ask.
   */
  route(type: string, id: string): Route {
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
    const { names } = this.#parts;
    const route = { subject: names.actor(type, id), key: names.key(type, id), target: `actor ${type}/${id}` };
    byId.set(id, route);
    return route;
  }

  #envelope(options: TellOptions, deadline: number): Envelope {
    return {
      traceparent: options.traceparent ?? newTraceparent(),
      sender: this.#clientId,
      deadline,
      ...(options.idempotencyKey !== undefined ? { idempotencyKey: options.idempotencyKey } : {}),
    };
  }

  /** A fast-mode ask to an actor, coalesced with this tick's other sends to it. */
  #askActor(route: Route, msg: unknown, options: AskOptions): Promise<unknown> {
    // Encoded now, so a message the caller changes after ask() returns is sent as it was.
    const body = encode(msg);
    const pending = this.#replies.create(route.target, options.timeoutMs ?? this.#askTimeoutMs);
    pending.actorKey = route.key;
    this.#enqueue(route.subject, {
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

  /**
   * The count of the last message published to `subject` (Stitch-Prev): 0 when none ever was, so that
   * a first message follows nothing; unknown once the table has started over and forgot it.
   */
  #prevOf(subject: string): number | undefined {
    return this.#lastSeq.get(subject) ?? (this.#forgot ? undefined : 0);
  }

  /**
   * The next message count, recorded as the last to `subject` (`prev`: the one before, if any). The
   * table starts over when full: the next message to each actor then goes without a Stitch-Prev.
   */
  #count(subject: string, prev: number | undefined): number {
    if ((prev === undefined || prev === 0) && this.#lastSeq.size >= MAX_ROUTES) {
      this.#lastSeq.clear();
      this.#forgot = true;
    }
    this.#lastSeq.set(subject, ++this.#seq);
    return this.#seq;
  }

  #enqueue(subject: string, item: Outgoing): void {
    item.bytes = requestBytesAtMost(item);
    this.#outbox.add(subject, item);
  }

  /** Publishes one tick's sends to an actor: alone in the single-message format, else as one batch. */
  #sendActor(subject: string, items: Outgoing[]): void {
    const { nc, limits } = this.#parts;
    try {
      if (items.length === 1) {
        const i = items[0]!;
        const prev = this.#prevOf(subject);
        const env: Envelope = {
          traceparent: i.traceparent,
          sender: this.#clientId,
          deadline: i.deadline,
          seq: this.#count(subject, prev),
        };
        if (prev !== undefined) env.prev = prev;
        if (i.key !== undefined) env.idempotencyKey = i.key;
        if (!publishDirect(nc, subject, i.body, i.reply, envelopeBlock(env))) {
          // nats.js's way: chunking above max_payload, nats.js's errors on a closed connection.
          const headers = envelopeHeaders(env);
          publish(nc, subject, i.body, i.reply ? { headers, reply: i.reply } : { headers }, limits);
        }
      } else {
        const h = new OutgoingHeaders();
        h.set(H.batch, String(items.length));
        h.set(H.sender, this.#clientId);
        const prev = this.#prevOf(subject);
        h.set(H.seq, String(this.#count(subject, prev)));
        if (prev !== undefined) h.set(H.prev, String(prev));
        const asks: Pending[] = [];
        for (const i of items) if (i.pending) asks.push(i.pending);
        if (asks.length > 0) this.#replies.group(asks);
        const opts = { headers: h, ...(asks[0] ? { reply: asks[0].reply } : {}) };
        publishOne(nc, subject, encodeRequests(items), opts);
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
    const timeoutMs = options.timeoutMs ?? this.#askTimeoutMs;
    const key = options.idempotencyKey ?? nuid.next();
    const env = this.#envelope({ ...options, idempotencyKey: key }, this.#parts.clock.now() + timeoutMs);
    const data = encode(msg);
    const pending = this.#replies.create(`actor ${type}/${id} (durable)`, timeoutMs);
    // Its timer runs from here: if the publish's acknowledgement comes later than that (a JetStream
    // leader election), the timeout must not be an unhandled rejection while the publish is awaited.
    pending.promise.catch(() => undefined);
    let duplicate: boolean;
    try {
      duplicate = await this.#publishDurable(type, id, data, env, pending.reply, timeoutMs);
    } catch (err) {
      this.#replies.forget(pending);
      throw err;
    }
    if (!duplicate) return pending.promise;
    // The stream dropped the publish as a repeat of the key: ask the actor for the recorded outcome.
    this.#replies.forget(pending);
    return this.#askActor(this.route(type, id), { type: '$outcome', key }, { timeoutMs });
  }

  /** Returns true when the stream reports the publish as a duplicate within its window. */
  async #publishDurable(
    type: string,
    id: string,
    data: Uint8Array,
    env: Envelope,
    reply: string | undefined,
    timeoutMs: number,
  ): Promise<boolean> {
    const { maxPayload } = this.#parts.limits;
    if (data.length > maxPayload - HEADER_ROOM) {
      throw new PayloadTooLarge(
        data.length,
        maxPayload,
        'durable mode does not chunk; put the data in the object store and send its name',
      );
    }
    const key = env.idempotencyKey ?? nuid.next();
    const h = envelopeHeaders({ ...env, idempotencyKey: key }) as OutgoingHeaders;
    if (reply) h.set(H.replyTo, reply);
    // The stream drops a repeat of the same Nats-Msg-Id within its duplicate window. Its window is
    // the stream's, not the actor's: a key is an actor's, so the id names the actor too (another
    // actor's message with the same key is no repeat, and the stream dropped it when the id was the key).
    h.set(MSG_ID, `${type}.${id}.${key}`);
    const { names } = this.#parts;
    const ack = await this.#publishAcked(names.durable(type, id), data, h, timeoutMs);
    if (ack.error) {
      // No stream took the subject for the whole timeout.
      if (ack.noStream) throw await this.#noStream(timeoutMs);
      // At its max_bytes (ConnectOptions.durableStream), or the server out of room: a typed error, never growth.
      throw new Overloaded(
        `the durable stream ${names.stream} refused the message (${ack.error.description})`,
      );
    }
    return ack.duplicate === true;
  }

  /**
   * Publishes to the mailbox stream and waits for its answer, trying again (same message id: the
   * stream stores it once) when none comes: an answer is lost when the server that had the publish, or
   * the stream's leader, stops as it handles it. The first wait is PUBLISH_ATTEMPT_MS, doubling, all
   * within `timeoutMs`. A publish no stream took (no-responders) goes again too, after a pause: the
   * stream may be electing a leader. Resolves with the last answer once the time is up.
   */
  /** Durable publishes sent again (same message id) because no answer came in time, or no stream took them. */
  get publishesAgain(): number {
    return this.#publishesAgain;
  }

  async #publishAcked(subject: string, data: Uint8Array, h: OutgoingHeaders, timeoutMs: number) {
    const { nc, clock, guard, inboxPrefix } = this.#parts;
    const publisher = jetStreamPublisher(nc, inboxPrefix, clock, guard);
    const deadline = clock.now() + timeoutMs;
    let pause = NO_STREAM_RETRY_MS;
    for (let wait = PUBLISH_ATTEMPT_MS; ; ) {
      const left = deadline - clock.now();
      let ack: PubAck;
      try {
        ack = await publisher.publish(subject, data, h, Math.max(1, Math.min(wait, left)));
      } catch (err) {
        if (!(err instanceof Timeout)) throw err;
        if (clock.now() >= deadline) throw new Timeout(`the stream (publish to ${subject})`, timeoutMs);
        wait *= 2;
        this.#publishesAgain++;
        continue;
      }
      if (!ack.noStream || clock.now() + pause >= deadline) return ack;
      await sleep(clock, pause);
      pause = Math.min(1000, pause * 2);
      this.#publishesAgain++;
      // The next publish is answered by a stream that has a leader again, or refused at once.
      wait = PUBLISH_ATTEMPT_MS;
    }
  }

  /**
   * What a durable publish that no stream took for its whole timeout meets: the stream is missing (the
   * cluster was never set up on this server, or it was deleted), or it had no leader all that time.
   */
  async #noStream(timeoutMs: number): Promise<Error> {
    const { nc, name, names } = this.#parts;
    const missing = await nc
      .request(`$JS.API.STREAM.INFO.${names.stream}`, undefined, { timeout: STREAM_INFO_TIMEOUT_MS })
      .then(
        (m) => (JSON.parse(m.string()) as { error?: { code?: number } }).error?.code === 404,
        () => false,
      )
      .catch(() => false);
    return missing
      ? new ClusterNotInitialized(name, `stream ${names.stream}`)
      : new Timeout(`the durable stream ${names.stream} (no leader)`, timeoutMs);
  }

  async #withRetries(attempt: () => Promise<unknown>, retries: number): Promise<unknown> {
    for (let i = 0; ; i++) {
      try {
        return await attempt();
      } catch (err) {
        const retriable = (err instanceof Timeout || err instanceof NoResponders) && !err.remote;
        if (!retriable || i >= retries) throw err;
        await sleep(this.#parts.clock, Math.min(2000, 50 * 2 ** i) * (0.5 + Math.random()));
      }
    }
  }
}

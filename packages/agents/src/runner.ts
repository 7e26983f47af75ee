import { type ActorRef, type Cluster, type DeliveryMode, RuntimeErrorCode } from '@stitch/runtime';
import type { Deployment, Measurement } from './deployment.js';
import { AgentsError, AgentsErrorCode } from './errors.js';
import type { OpReply } from './operator.js';
import type { Context } from './ops.js';
import type { PlacedOp } from './placement.js';
import {
  EventChannel,
  type EventSink,
  PartialPipe,
  type RequestStream,
  type StreamRunOptions,
} from './request-stream.js';
import { PARTIAL_OPS, STREAMING_OPS } from './streaming.js';
import { inSpan } from './tracing.js';

/** Waits before attempt `attempt + 1`: 25 ms, doubling, at most 1 s. */
const backoff = (attempt: number) => new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** attempt)));

/** Errors a moving operator causes on the way (gone, not yet back, stopped for the move): asked again. */
const RETRIED = new Set<string>([
  RuntimeErrorCode.Timeout,
  RuntimeErrorCode.NoResponders,
  RuntimeErrorCode.ActorStopped,
]);
/** Of those, the ones that say the replica is gone (scaled in, stopped): the retry picks another. */
const REPLICA_GONE = new Set<string>([RuntimeErrorCode.NoResponders, RuntimeErrorCode.ActorStopped]);

/** One op's ask within a request, and the request's retry count it adds to. */
interface OpCall {
  op: PlacedOp;
  rid: string;
  ctx: Context;
  current: () => Deployment;
  traceparent: string | undefined;
  counter: { retries: number };
}

function failed(rid: string, opId: string, err: unknown): AgentsError {
  return new AgentsError(
    AgentsErrorCode.RequestFailed,
    `request ${rid}: op ${opId} failed: ${(err as Error).message}`,
    {
      cause: err,
    },
  );
}

/** The deployment a request runs through: a record, or a function that returns the current one. */
export type DeploymentSource = Deployment | (() => Deployment);

/** One request to the tool agent: the query, and the tool arguments the synthetic LLM cannot write. */
/**
 * A request's fields, read by the ops that need them: the tool agent's `query`, `expr` and
 * `search`; a voice agent's `audio` (WAV bytes). Any other field flows on with them (and through
 * the privacy filter, where the graph has one).
 */
export interface AgentRequest {
  query?: string;
  expr?: string;
  search?: string;
  audio?: Uint8Array;
  [field: string]: unknown;
}

export interface RequestResult {
  rid: string;
  latencyMs: number;
  /** Σ over ops of duration × the class's $/h (modelled durations for virtual devices). */
  usd: number;
  answer: unknown;
  /** Each op's reply, and `askMs`: its ask's round trip as this runner saw it (the op's time plus moving its input and output). */
  ops: Record<string, Omit<OpReply, 'out'> & { askMs: number }>;
  /** Op asks sent again (the operator was moving) or to another replica (one refused it: Overloaded). */
  retries: number;
}

/** One request as it ended, for metrics (see GraphRunner.onRequest). */
export interface RequestOutcome {
  deployment: string;
  /** The deployment's end-to-end target. */
  slaMs: number;
  /** Whether it answered (false: an op failed after the runner's retries, or the stream was cancelled). */
  ok: boolean;
  /** From the request's start to its answer or failure, as this runner saw it. */
  latencyMs: number;
  /** Σ over ops of duration × the class's $/h; 0 for a failed request (its ops' times are not known). */
  usd: number;
  /** Each op's ask round trip as this runner saw it (answered requests only). */
  ops: { id: string; op: string; ms: number }[];
  /** What the coordinator learns from it (GraphRunner.measurements; none for a failed request). */
  measurements: Measurement[];
}

/** The most request listeners a runner keeps (see onRequest): each is code of this process, not input. */
export const MAX_REQUEST_LISTENERS = 16;

export interface RunnerOptions {
  /** Per-ask timeout. @default 10000 */
  timeoutMs?: number;
  /** Retries of an ask that timed out or found no responder, same idempotency key. @default 12 */
  retries?: number;
  /**
   * `durable`: each ask is stored in the cluster's JetStream mailbox until the operator commits it, so
   * even a node killed with SIGKILL loses nothing; `fast`: core request/reply, retried. @default 'fast'
   */
  mode?: DeliveryMode;
  /** Deadline of a streaming op's whole stream (`stream()`), first item to last. @default 120000 */
  streamTimeoutMs?: number;
  /**
   * How long a replica that refused an ask (Overloaded: its mailbox was full or its node sheds load)
   * is passed over by this runner's picks while its op has replicas that did not refuse lately
   * (outlier ejection): the asks that follow go straight to those, without a refused round trip
   * each. 0: every pick may draw it again. @default 1000
   */
  refusedHoldMs?: number;
}

/** Replicas a runner remembers as having refused lately; past it the oldest is forgotten. */
const MAX_REFUSING_KEPT = 1024;

/**
 * Runs requests through a deployment along its edges: each op is asked once its deps answered, with
 * an idempotency key per (request, op), so a retry during a migration never applies an effect twice.
 */
export class GraphRunner {
  readonly #cluster: Cluster;
  readonly #options: RunnerOptions;
  /** Asks this runner has in flight per operator replica (actor id); entries at 0 are removed. */
  readonly #outstanding = new Map<string, number>();
  readonly #listeners = new Set<(outcome: RequestOutcome) => void>();
  /** When each replica (actor id) last refused one of this runner's asks, oldest first. */
  readonly #refusedAt = new Map<string, number>();
  readonly #refusedHoldMs: number;

  constructor(cluster: Cluster, options: RunnerOptions = {}) {
    this.#cluster = cluster;
    this.#options = options;
    this.#refusedHoldMs = options.refusedHoldMs ?? 1000;
    if (!(Number.isFinite(this.#refusedHoldMs) && this.#refusedHoldMs >= 0))
      throw new RangeError(
        `refusedHoldMs must be a finite number ≥ 0, found ${String(options.refusedHoldMs)}`,
      );
  }

  /**
   * One request, traced as one span whose children are the asks of its ops. Pass a function for `d`
   * to follow a deployment whose replicas change while requests run (each ask reads it afresh).
   */
  run(source: DeploymentSource, rid: string, request: AgentRequest): Promise<RequestResult> {
    return this.#traced(source, rid, request, undefined);
  }

  /**
   * The same request with its streaming ops' items as they are made: decode's tokens (`{ token }`)
   * and, fed by them, detokenize's text (`{ text }` pieces that together spell the answer's llmText).
   * A slow reader slows decode; breaking out of the loop (or `cancel()`, or the signal) cancels it.
   */
  stream(
    source: DeploymentSource,
    rid: string,
    request: AgentRequest,
    options: StreamRunOptions = {},
  ): RequestStream<RequestResult> {
    return new EventChannel<RequestResult>(options).run((sink) =>
      this.#traced(source, rid, request, { sink, text: options.text !== false }),
    );
  }

  /**
   * Calls `listener` with each request's outcome as it ends (answered or failed), e.g. to count SLA
   * attainment and $ (see @stitch/telemetry's observeRequests). Returns the call that removes it. A
   * listener that throws is ignored; at most MAX_REQUEST_LISTENERS.
   */
  onRequest(listener: (outcome: RequestOutcome) => void): () => void {
    if (this.#listeners.size >= MAX_REQUEST_LISTENERS)
      throw new AgentsError(
        AgentsErrorCode.TooManyListeners,
        `a runner takes at most ${MAX_REQUEST_LISTENERS} request listeners: remove one (the function onRequest returned) before adding another`,
      );
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #traced(
    source: DeploymentSource,
    rid: string,
    request: AgentRequest,
    streamTo: { sink: EventSink; text: boolean } | undefined,
  ): Promise<RequestResult> {
    const d = typeof source === 'function' ? source() : source;
    const current = typeof source === 'function' ? source : () => d;
    const attributes = { 'stitch.deployment': d.name, 'stitch.request.id': rid, 'stitch.ops': d.ops.length };
    const t0 = performance.now();
    return inSpan(`request ${d.name}`, attributes, async (span, traceparent) => {
      try {
        const r = await this.#run(d, current, rid, request, traceparent, streamTo);
        span.setAttribute('stitch.retries', r.retries);
        this.#report(d, true, r.latencyMs, r);
        return r;
      } catch (err) {
        this.#report(d, false, performance.now() - t0);
        throw err;
      }
    });
  }

  /** Tells the listeners how a request through `d` ended. */
  #report(d: Deployment, ok: boolean, latencyMs: number, r?: RequestResult): void {
    if (this.#listeners.size === 0) return;
    const kinds = new Map(d.ops.map((o) => [o.id, o.op]));
    const outcome: RequestOutcome = {
      deployment: d.name,
      slaMs: d.slaMs,
      ok,
      latencyMs,
      usd: r?.usd ?? 0,
      ops: r
        ? Object.entries(r.ops).map(([id, o]) => ({
            id,
            op: kinds.get(id) ?? id,
            ms: o.askMs,
          }))
        : [],
      measurements: r ? GraphRunner.measurements(d, r) : [],
    };
    for (const listener of this.#listeners) {
      try {
        listener(outcome);
      } catch {
        // A listener's failure is its own: the request has its answer.
      }
    }
  }

  async #run(
    d: Deployment,
    current: () => Deployment,
    rid: string,
    request: AgentRequest,
    traceparent: string | undefined,
    streamTo: { sink: EventSink; text: boolean } | undefined,
  ): Promise<RequestResult> {
    const t0 = performance.now();
    const done = new Map<string, Promise<OpReply>>();
    const sink = streamTo?.sink;
    const pipes = streamTo?.text
      ? this.#partialPipes(d, current, streamTo.sink)
      : new Map<string, PartialPipe>();
    const counter = { retries: 0 };
    const askMs = new Map<string, number>();
    const ask = async (opId: string): Promise<OpReply> => {
      const op = d.ops.find((o) => o.id === opId)!;
      const inputs = await Promise.all(op.deps.map((dep) => done.get(dep)!));
      const ctx: Context =
        op.deps.length === 0 ? { ...request } : Object.assign({}, ...inputs.map((i) => i.out));
      const call = { op, rid, ctx, current, traceparent, counter };
      const asked = performance.now();
      if (sink && STREAMING_OPS.has(op.op)) {
        const streamed = await this.#askStreaming(call, sink, pipes);
        askMs.set(opId, performance.now() - asked);
        return streamed;
      }
      const reply = await this.#ask(call);
      askMs.set(opId, performance.now() - asked);
      await pipes.get(opId)?.finish(reply.out);
      return reply;
    };
    for (const op of d.ops) done.set(op.id, ask(op.id));
    const replies = await Promise.all(d.ops.map((op) => done.get(op.id)!));
    const ops: RequestResult['ops'] = {};
    let usd = 0;
    replies.forEach((r, i) => {
      const op = d.ops[i]!;
      const { out: _out, ...rest } = r;
      ops[op.id] = { ...rest, askMs: askMs.get(op.id) ?? 0 };
      usd += (r.ms / 3.6e6) * (d.usdPerHour[op.classId] ?? 0);
    });
    const last = replies[replies.length - 1]!;
    return {
      rid,
      latencyMs: performance.now() - t0,
      usd,
      answer: last.out.answer ?? last.out,
      ops,
      retries: counter.retries,
    };
  }

  /** Whether an ask that failed with `err` on attempt `attempt` (from 0) is asked again. */
  #retried(err: unknown, attempt: number): boolean {
    const code = (err as { code?: string }).code ?? '';
    return RETRIED.has(code) && attempt < (this.#options.retries ?? 12);
  }

  /**
   * The reply an operator kept itself (too large for the runtime's duplicate record). Asking for it
   * changes nothing, so a timeout (megabytes to send on a busy host) is asked again.
   */
  async #recorded(ref: ActorRef, rid: string, opId: string): Promise<OpReply> {
    for (let attempt = 0; ; attempt++) {
      try {
        return (await ref.ask(
          { type: 'result', rid },
          { timeoutMs: this.#options.timeoutMs ?? 10_000 },
        )) as OpReply;
      } catch (err) {
        if (!this.#retried(err, attempt)) throw failed(rid, opId, err);
        await backoff(attempt);
      }
    }
  }

  /**
   * One op's ask. A timed-out ask is sent again to the same replica (its idempotency key makes it
   * answer from its record if it ran); only a replica that is gone is traded for another. A replica
   * that refuses it (Overloaded: its mailbox is full or its node sheds load; nothing ran) is traded at
   * once for one that has not refused it, while there is one: else the refusal is the answer.
   */
  async #ask(call: OpCall): Promise<OpReply> {
    const { op, rid, ctx, current, traceparent, counter } = call;
    let actorId = this.#pick(current(), op.id);
    const refused = new Set<string>();
    for (let attempt = 0; ; attempt++) {
      const asked = actorId;
      const ref = this.#cluster.ref({ type: op.actorType, id: asked });
      this.#began(asked);
      try {
        return (await ref.ask(
          { type: 'run', rid, ctx },
          {
            idempotencyKey: `${rid}-${asked}`,
            timeoutMs: this.#options.timeoutMs ?? 10_000,
            mode: this.#options.mode ?? 'fast',
            ...(traceparent !== undefined ? { traceparent } : {}),
          },
        )) as OpReply;
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        // It ran, but its reply was too large for the runtime's duplicate record: the operator kept it.
        if (code === RuntimeErrorCode.Duplicate) return this.#recorded(ref, rid, op.id);
        if (code === RuntimeErrorCode.Overloaded) {
          refused.add(asked);
          this.#refused(asked);
          const other = this.#pick(current(), op.id, refused);
          if (refused.has(other)) throw failed(rid, op.id, err);
          counter.retries++;
          actorId = other;
          continue;
        }
        if (!this.#retried(err, attempt)) throw failed(rid, op.id, err);
        // Retries are counted so the report can show how many asks a migration cost.
        counter.retries++;
        await backoff(attempt);
        if (REPLICA_GONE.has(code)) actorId = this.#pick(current(), op.id, new Set([asked, ...refused]));
      } finally {
        // The replica this attempt asked, not the one a gone replica was traded for.
        this.#ended(asked);
      }
    }
  }

  /**
   * A streaming op's ask: its items go to the caller and to the partial pipes fed by it as they
   * arrive. Not retried once an item has gone out (the caller has seen them); before that, a failure
   * a retry fixes falls back to the recorded ask, which answers the whole output at once.
   */
  async #askStreaming(call: OpCall, sink: EventSink, pipes: Map<string, PartialPipe>): Promise<OpReply> {
    const { op, rid, ctx, current, traceparent } = call;
    const fed = [...pipes.values()].filter((p) => p.source === op.id);
    const asked = this.#pick(current(), op.id);
    const ref = this.#cluster.ref({ type: op.actorType, id: asked });
    const stream = ref.stream(
      { type: 'run', rid, ctx },
      {
        timeoutMs: this.#options.streamTimeoutMs ?? 120_000,
        signal: sink.signal,
        ...(traceparent !== undefined ? { traceparent } : {}),
      },
    );
    this.#began(asked);
    let items = 0;
    try {
      for await (const item of stream) {
        items++;
        await sink.push({ opId: op.id, item });
        for (const pipe of fed) pipe.feed(item);
      }
      return (await stream.result) as OpReply;
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      // Refused (Overloaded) before any item: the plain ask trades the replica for another, if any.
      if (code === RuntimeErrorCode.Overloaded) this.#refused(asked);
      const again = RETRIED.has(code) || code === RuntimeErrorCode.Overloaded;
      if (items > 0 || sink.signal.aborted || !again) throw failed(rid, op.id, err);
      call.counter.retries++;
    } finally {
      this.#ended(asked);
    }
    const reply = await this.#ask(call);
    const tokens = (reply.out as { tokens?: unknown }).tokens;
    for (const token of Array.isArray(tokens) ? tokens : []) {
      await sink.push({ opId: op.id, item: { token } });
      for (const pipe of fed) pipe.feed({ token });
    }
    return reply;
  }

  /** A partial pipe for each op in PARTIAL_OPS whose only input is a streaming op. */
  #partialPipes(d: Deployment, current: () => Deployment, sink: EventSink): Map<string, PartialPipe> {
    const pipes = new Map<string, PartialPipe>();
    for (const op of d.ops) {
      const field = PARTIAL_OPS.get(op.op);
      const source = d.ops.find((o) => o.id === op.deps[0]);
      if (!field || op.deps.length !== 1 || !source || !STREAMING_OPS.has(source.op)) continue;
      const ask = (tokens: number[]) =>
        this.#cluster
          .ref({ type: op.actorType, id: this.#pick(current(), op.id) })
          .ask(
            { type: 'partial', ctx: { tokens } },
            { timeoutMs: this.#options.timeoutMs ?? 10_000 },
          ) as Promise<Record<string, unknown>>;
      pipes.set(op.id, new PartialPipe(op.id, source.id, field, ask, sink));
    }
    return pipes;
  }

  /** Remembers that `actorId` refused an ask now (see RunnerOptions.refusedHoldMs). */
  #refused(actorId: string): void {
    if (this.#refusedHoldMs === 0) return;
    this.#refusedAt.delete(actorId);
    this.#refusedAt.set(actorId, performance.now());
    if (this.#refusedAt.size > MAX_REFUSING_KEPT)
      this.#refusedAt.delete(this.#refusedAt.keys().next().value!);
  }

  /** Whether `actorId` refused an ask within the hold; an entry past it is forgotten. */
  #refusedLately(actorId: string, now: number): boolean {
    const at = this.#refusedAt.get(actorId);
    if (at === undefined) return false;
    if (now - at < this.#refusedHoldMs) return true;
    this.#refusedAt.delete(actorId);
    return false;
  }

  #began(actorId: string): void {
    this.#outstanding.set(actorId, (this.#outstanding.get(actorId) ?? 0) + 1);
  }

  #ended(actorId: string): void {
    const n = (this.#outstanding.get(actorId) ?? 1) - 1;
    if (n > 0) this.#outstanding.set(actorId, n);
    else this.#outstanding.delete(actorId);
  }

  /**
   * The replica of op `opId` to ask: of two drawn at random, the one with fewer of this runner's asks
   * in flight (power of two choices: close to least-outstanding without herding every runner onto
   * the same replica). Those in `avoid` (gone, or refused the ask) are passed over while there are
   * others; when there are none, one of them is the answer. Of those left, replicas that refused an
   * ask of this runner lately are passed over too while others remain.
   */
  #pick(d: Deployment, opId: string, avoid?: ReadonlySet<string>): string {
    const op = d.ops.find((o) => o.id === opId);
    if (!op)
      throw new AgentsError(AgentsErrorCode.RequestFailed, `op ${opId} is no longer in deployment ${d.name}`);
    const all = [op.actorId, ...(op.replicas ?? []).map((r) => r.actorId)];
    const others = avoid ? all.filter((id) => !avoid.has(id)) : all;
    let ids = others.length > 0 ? others : all;
    if (this.#refusedAt.size > 0 && ids.length > 1) {
      const now = performance.now();
      const calm = ids.filter((id) => !this.#refusedLately(id, now));
      if (calm.length > 0) ids = calm;
    }
    if (ids.length === 1) return ids[0]!;
    const a = ids[Math.floor(Math.random() * ids.length)]!;
    let b = ids[Math.floor(Math.random() * (ids.length - 1))]!;
    if (b === a) b = ids[ids.length - 1]!;
    return (this.#outstanding.get(b) ?? 0) < (this.#outstanding.get(a) ?? 0) ? b : a;
  }

  /** What the coordinator learns from one finished request. */
  static measurements(d: Deployment, r: RequestResult): Measurement[] {
    const moves = new Set(d.ops.filter((o) => o.op === 'kv.transfer').map((o) => o.id));
    // The KV cache's move is prefill storing it and decode fetching it: kv.transfer's real cost.
    const kvMs = Object.values(r.ops).reduce(
      (sum, o) => sum + (o.timings?.kvStoreMs ?? 0) + (o.timings?.kvFetchMs ?? 0),
      0,
    );
    return Object.entries(r.ops)
      .filter(([, o]) => !o.replay)
      .map(([opId, o]) => ({
        deployment: d.name,
        opId,
        ms: moves.has(opId) && !o.modelled && kvMs > 0 ? kvMs : o.ms,
        modelled: o.modelled,
      }));
  }
}

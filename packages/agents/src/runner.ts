import { type Cluster, type DeliveryMode, RuntimeErrorCode } from '@stitch/runtime';
import type { Deployment, Measurement } from './deployment.js';
import { AgentsError, AgentsErrorCode } from './errors.js';
import type { OpReply } from './operator.js';
import type { Context } from './ops.js';
import { inSpan } from './tracing.js';

/** Errors a moving operator causes on the way (gone, not yet back, stopped for the move): asked again. */
const RETRIED = new Set<string>([
  RuntimeErrorCode.Timeout,
  RuntimeErrorCode.NoResponders,
  RuntimeErrorCode.ActorStopped,
]);
/** Of those, the ones that say the replica is gone (scaled in, stopped): the retry picks another. */
const REPLICA_GONE = new Set<string>([RuntimeErrorCode.NoResponders, RuntimeErrorCode.ActorStopped]);

/** The deployment a request runs through: a record, or a function that returns the current one. */
export type DeploymentSource = Deployment | (() => Deployment);

/** One request to the tool agent: the query, and the tool arguments the synthetic LLM cannot write. */
export interface AgentRequest {
  query: string;
  expr: string;
  search: string;
}

export interface RequestResult {
  rid: string;
  latencyMs: number;
  /** Σ over ops of duration × the class's $/h (modelled durations for virtual devices). */
  usd: number;
  answer: unknown;
  ops: Record<string, Omit<OpReply, 'out'>>;
  /** Op asks that were retried (the operator was moving). */
  retries: number;
}

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
}

/**
 * Runs requests through a deployment along its edges: each op is asked once its deps answered, with
 * an idempotency key per (request, op), so a retry during a migration never applies an effect twice.
 */
export class GraphRunner {
  readonly #cluster: Cluster;
  readonly #options: RunnerOptions;
  /** Asks this runner has in flight per operator replica (actor id); entries at 0 are removed. */
  readonly #outstanding = new Map<string, number>();

  constructor(cluster: Cluster, options: RunnerOptions = {}) {
    this.#cluster = cluster;
    this.#options = options;
  }

  /**
   * One request, traced as one span whose children are the asks of its ops. Pass a function for `d`
   * to follow a deployment whose replicas change while requests run (each ask reads it afresh).
   */
  run(source: DeploymentSource, rid: string, request: AgentRequest): Promise<RequestResult> {
    const d = typeof source === 'function' ? source() : source;
    const current = typeof source === 'function' ? source : () => d;
    const attributes = { 'stitch.deployment': d.name, 'stitch.request.id': rid, 'stitch.ops': d.ops.length };
    return inSpan(`request ${d.name}`, attributes, async (span, traceparent) => {
      const r = await this.#run(d, current, rid, request, traceparent);
      span.setAttribute('stitch.retries', r.retries);
      return r;
    });
  }

  async #run(
    d: Deployment,
    current: () => Deployment,
    rid: string,
    request: AgentRequest,
    traceparent: string | undefined,
  ): Promise<RequestResult> {
    const t0 = performance.now();
    const done = new Map<string, Promise<OpReply>>();
    let retries = 0;
    const ask = async (opId: string): Promise<OpReply> => {
      const op = d.ops.find((o) => o.id === opId)!;
      const inputs = await Promise.all(op.deps.map((dep) => done.get(dep)!));
      const ctx: Context =
        op.deps.length === 0 ? { ...request } : Object.assign({}, ...inputs.map((i) => i.out));
      // A timed-out ask is sent again to the same replica (its idempotency key makes it answer from
      // its record if it ran); only a replica that is gone is traded for another.
      let actorId = this.#pick(current(), opId);
      // Retries are counted here so the report can show how many asks a migration cost.
      for (let attempt = 0; ; attempt++) {
        const asked = actorId;
        const ref = this.#cluster.ref({ type: op.actorType, id: asked });
        this.#outstanding.set(asked, (this.#outstanding.get(asked) ?? 0) + 1);
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
          if (!RETRIED.has(code) || attempt >= (this.#options.retries ?? 12)) {
            throw new AgentsError(
              AgentsErrorCode.RequestFailed,
              `request ${rid}: op ${opId} failed: ${(err as Error).message}`,
              {
                cause: err,
              },
            );
          }
          retries++;
          await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** attempt)));
          if (REPLICA_GONE.has(code)) actorId = this.#pick(current(), opId, asked);
        } finally {
          // The replica this attempt asked, not the one a gone replica was traded for.
          const n = (this.#outstanding.get(asked) ?? 1) - 1;
          if (n > 0) this.#outstanding.set(asked, n);
          else this.#outstanding.delete(asked);
        }
      }
    };
    for (const op of d.ops) done.set(op.id, ask(op.id));
    const replies = await Promise.all(d.ops.map((op) => done.get(op.id)!));
    const ops: RequestResult['ops'] = {};
    let usd = 0;
    replies.forEach((r, i) => {
      const op = d.ops[i]!;
      const { out: _out, ...rest } = r;
      ops[op.id] = rest;
      usd += (r.ms / 3.6e6) * (d.usdPerHour[op.classId] ?? 0);
    });
    const sink = replies[replies.length - 1]!;
    return { rid, latencyMs: performance.now() - t0, usd, answer: sink.out.answer ?? sink.out, ops, retries };
  }

  /**
   * The replica of op `opId` to ask: of two drawn at random, the one with fewer of this runner's asks
   * in flight (power of two choices: close to least-outstanding without herding every runner onto
   * the same replica). `not` (a replica that was gone) is avoided while there are others.
   */
  #pick(d: Deployment, opId: string, not?: string): string {
    const op = d.ops.find((o) => o.id === opId);
    if (!op)
      throw new AgentsError(AgentsErrorCode.RequestFailed, `op ${opId} is no longer in deployment ${d.name}`);
    const all = [op.actorId, ...(op.replicas ?? []).map((r) => r.actorId)];
    const ids = all.length > 1 && not !== undefined ? all.filter((id) => id !== not) : all;
    if (ids.length === 1) return ids[0]!;
    const a = ids[Math.floor(Math.random() * ids.length)]!;
    let b = ids[Math.floor(Math.random() * (ids.length - 1))]!;
    if (b === a) b = ids[ids.length - 1]!;
    return (this.#outstanding.get(b) ?? 0) < (this.#outstanding.get(a) ?? 0) ? b : a;
  }

  /** What the coordinator learns from one finished request. */
  static measurements(d: Deployment, r: RequestResult): Measurement[] {
    return Object.entries(r.ops)
      .filter(([, o]) => !o.replay)
      .map(([opId, o]) => ({ deployment: d.name, opId, ms: o.ms, modelled: o.modelled }));
  }
}

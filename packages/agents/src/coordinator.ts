import type { KV } from '@nats-io/kv';
import { CorrectionTable } from '@stitch/cost';
import { type Cluster, defineActor, type MembershipEvent } from '@stitch/runtime';
import { normaliseNatsUrl } from './op-config.js';
import type { OpConfig } from './ops.js';
import {
  type Analysed,
  analyseGraph,
  classifyNodes,
  milpSolver,
  type PlanOutcome,
  planDeployment,
} from './placement.js';

/** A measured op run, as the graph runner reports it. */
export interface Measurement {
  deployment: string;
  opId: string;
  ms: number;
  modelled: boolean;
}

/** The record kept in KV (`stitch_<cluster>_deployments`, key = deployment name). */
export interface Deployment extends PlanOutcome {
  name: string;
  /** The graph as deployed, so a restarted coordinator can plan it again. */
  mlir: string;
  slaMs: number;
  version: number;
  natsUrl: string;
  cluster: string;
}

export function deploymentsBucketName(cluster: string): string {
  return `stitch_${cluster}_deployments`;
}

/** The current record of a deployment, as the coordinator keeps it in KV (for clients in other processes). */
export async function loadDeployment(cluster: Cluster, name: string): Promise<Deployment | undefined> {
  const kv = await cluster.kv(deploymentsBucketName(cluster.name));
  const e = await kv.get(name);
  return e?.operation === 'PUT' ? e.json<Deployment>() : undefined;
}

/** A migration the coordinator carried out: why, what moved where, how long the operators were away. */
export interface MigrationEvent {
  deployment: string;
  reason: string;
  moved: { opId: string; from: string; to: string; fromClass: string; toClass: string }[];
  ms: number;
  at: number;
}

/**
 * Migration events the coordinator keeps (the most recent; older ones are dropped). Membership
 * changes and drift come from outside, so the list must not grow with them; `status` returns it.
 */
export const MAX_MIGRATIONS = 100;

/** Estimates below this are not corrected from measurements. */
const MIN_CORRECTED_MS = 1;

export interface CoordinatorOptions {
  /** Re-plan with the corrected estimates after this many measured requests. @default 5 */
  driftEvery?: number;
  /** Migration events kept in `migrations` (the most recent). @default MAX_MIGRATIONS (100) */
  keepMigrations?: number;
  log?: (line: string) => void;
}

/**
 * Places deployments on the live nodes, spawns and configures their operator actors, learns from
 * measured latencies, and re-plans + migrates on node join/leave or drift. Re-plans are serialised.
 */
export class Coordinator {
  readonly correction = new CorrectionTable();
  /** The most recent migrations, oldest first; at most `keepMigrations` of them. */
  readonly migrations: MigrationEvent[] = [];
  readonly #keepMigrations: number;
  readonly #cluster: Cluster;
  readonly #deployments = new Map<string, { analysed: Analysed; record: Deployment; observed: number }>();
  readonly #options: CoordinatorOptions;
  #queue: Promise<unknown> = Promise.resolve();
  #kv: Promise<KV>;
  #unsubscribe: (() => void) | undefined;

  constructor(cluster: Cluster, options: CoordinatorOptions = {}) {
    const keep = options.keepMigrations ?? MAX_MIGRATIONS;
    if (!Number.isSafeInteger(keep) || keep < 1) {
      throw new RangeError(
        `keepMigrations must be a positive integer, found ${String(options.keepMigrations)}`,
      );
    }
    this.#keepMigrations = keep;
    this.#cluster = cluster;
    this.#options = options;
    this.#kv = cluster.kv(deploymentsBucketName(cluster.name), { create: true });
  }

  /**
   * Takes over the deployments recorded in KV (a restarted coordinator continues where the last one
   * stopped), then watches membership: a node that leaves or dies has its operators moved elsewhere.
   */
  async start(): Promise<void> {
    const kv = await this.#kv;
    for await (const key of await kv.keys()) {
      const e = await kv.get(key);
      if (e?.operation !== 'PUT') continue;
      const record = e.json<Deployment>();
      this.#deployments.set(record.name, { analysed: analyseGraph(record.mlir), record, observed: 0 });
    }
    this.#unsubscribe = await this.#cluster.onMembership((ev) => this.#onMembership(ev));
  }

  /** Names of the deployments this coordinator manages. */
  get deployments(): string[] {
    return [...this.#deployments.keys()];
  }

  stop(): void {
    this.#unsubscribe?.();
  }

  deploy(mlir: string, name?: string): Promise<Deployment> {
    return this.#serial(async () => {
      const analysed = analyseGraph(mlir);
      const depName = name ?? analysed.name;
      const plan = planDeployment({
        deployment: depName,
        analysed,
        nodes: classifyNodes(await this.#cluster.nodes()),
        correction: this.correction,
        milp: await milpSolver(),
      });
      const record: Deployment = {
        ...plan,
        name: depName,
        mlir,
        slaMs: analysed.slaMs,
        version: 1,
        // Operators accept nats:// or tls:// URLs only; nats.js reports an external server as host:port.
        natsUrl: normaliseNatsUrl(this.#cluster.url),
        cluster: this.#cluster.name,
      };
      await Promise.all(record.ops.map((op) => this.#place(record, op.id)));
      this.#deployments.set(depName, { analysed, record, observed: 0 });
      await this.#save(record);
      return record;
    });
  }

  deployment(name: string): Deployment | undefined {
    return this.#deployments.get(name)?.record;
  }

  /** Feeds measured (real, not modelled) latencies into the correction table; re-plans on drift. */
  observe(requestMeasurements: Measurement[]): void {
    const first = requestMeasurements[0];
    const d = first && this.#deployments.get(first.deployment);
    if (!d) return;
    for (const m of requestMeasurements) {
      const op = d.record.ops.find((o) => o.id === m.opId);
      const est = op && d.record.rawMs[op.id]?.[op.classId];
      // Sub-millisecond estimates are dominated by dispatch overhead the roofline does not model; they
      // would only skew their kind's factor (a tokenizer's 0.05 ms would slow every LLM op's estimate).
      if (!op || m.modelled || !est || est < MIN_CORRECTED_MS || !(m.ms > 0)) continue;
      this.correction.observe(op.kind, op.classId, est, m.ms);
    }
    d.observed++;
    if (d.observed % (this.#options.driftEvery ?? 5) === 0) {
      void this.replan(d.record.name, 'drift (corrected estimates)').catch((err) =>
        this.#log(`re-plan after drift failed: ${(err as Error).message}`),
      );
    }
  }

  /**
   * Plans again against the live nodes and moves every operator whose live activation is not where the
   * plan wants it (so a move that failed earlier is retried by the next re-plan).
   */
  replan(name: string, reason: string, gone?: string, attempt = 0): Promise<MigrationEvent | undefined> {
    return this.#serial(async () => {
      const d = this.#deployments.get(name);
      if (!d) return undefined;
      const nodes = classifyNodes(await this.#cluster.nodes()).filter((n) => n.nodeId !== gone);
      const live = new Set(nodes.map((n) => n.nodeId));
      const old = d.record;
      const at = await Promise.all(
        old.ops.map(async (o) => {
          const where = await this.#cluster
            .locate({ type: o.actorType, id: o.actorId })
            .catch(() => undefined);
          return where && live.has(where.node) ? where.node : undefined;
        }),
      );
      const plan = planDeployment({
        deployment: name,
        analysed: d.analysed,
        nodes,
        correction: this.correction,
        current: Object.fromEntries(old.ops.map((o, i) => [o.id, at[i] ?? o.node])),
        milp: await milpSolver(),
      });
      const next: Deployment = { ...old, ...plan, version: old.version + 1 };
      const moves = next.ops.flatMap((o, i) =>
        o.node === at[i] ? [] : [{ op: o, was: old.ops[i]!, from: at[i] ?? old.ops[i]!.node }],
      );
      if (moves.length === 0) return undefined;
      // A node can vanish from the records before its leave event arrives: name it as the cause.
      const vanished = [...new Set(old.ops.map((o) => o.node))].filter((n) => !live.has(n) && n !== gone);
      const why =
        vanished.length > 0
          ? `node ${vanished.join(', ')} left (noticed by a re-plan for ${reason})`
          : reason;
      const t0 = performance.now();
      d.record = next;
      const settled = await Promise.allSettled(moves.map((m) => this.#move(next, m.op.id, m.from)));
      const failed = settled.filter((r) => r.status === 'rejected');
      if (failed.length > 0 && attempt < 20) {
        this.#log(
          `${failed.length} move(s) failed (${String(failed[0]!.reason)}); re-planning again shortly`,
        );
        setTimeout(() => void this.replan(name, reason, gone, attempt + 1).catch(() => undefined), 300);
      }
      const done = moves.filter((_, i) => settled[i]!.status === 'fulfilled');
      if (done.length === 0) return undefined;
      const ev: MigrationEvent = {
        deployment: name,
        reason: why,
        moved: done.map((m) => ({
          opId: m.op.id,
          from: m.from,
          to: m.op.node,
          fromClass: m.was.classId,
          toClass: m.op.classId,
        })),
        ms: performance.now() - t0,
        at: Date.now(),
      };
      this.migrations.push(ev);
      if (this.migrations.length > this.#keepMigrations)
        this.migrations.splice(0, this.migrations.length - this.#keepMigrations);
      await this.#save(next);
      this.#log(
        `migrated ${done.length} operator(s) of ${name} (${why}) in ${ev.ms.toFixed(0)} ms: ` +
          ev.moved.map((m) => `${m.opId} ${m.fromClass}→${m.toClass}`).join(', '),
      );
      return ev;
    });
  }

  #onMembership(ev: MembershipEvent): void {
    const what = ev.kind === 'join' ? 'joined' : ev.kind === 'dead' ? 'died' : 'left';
    for (const [name, d] of this.#deployments) {
      // A join can make a better plan anywhere; a leave or death matters where it hosted operators.
      if (ev.kind !== 'join' && !d.record.ops.some((o) => o.node === ev.nodeId)) continue;
      const gone = ev.kind === 'join' ? undefined : ev.nodeId;
      void this.replan(name, `node ${ev.nodeId} ${what}`, gone).catch((err) =>
        this.#log(`re-plan after node ${ev.nodeId} ${what} failed: ${(err as Error).message}`),
      );
    }
  }

  /** Drain + snapshot on the old node (if it still runs), restore on the new one, then reconfigure. */
  async #move(d: Deployment, opId: string, from: string): Promise<void> {
    const op = d.ops.find((o) => o.id === opId)!;
    const ref = { type: op.actorType, id: op.actorId };
    const where = await this.#cluster.locate(ref);
    if (where && where.node === from && (await this.#cluster.isNodeAlive(from)))
      await this.#cluster.stop(ref);
    await this.#place(d, opId);
  }

  async #place(d: Deployment, opId: string): Promise<void> {
    const op = d.ops.find((o) => o.id === opId)!;
    const ref = await this.#cluster.spawn(op.actorType, { id: op.actorId, node: op.node });
    const config: OpConfig = {
      deployment: d.name,
      opId: op.id,
      op: op.op,
      attrs: op.attrs,
      device: op.classId,
      modelled: op.modelled,
      estimatedMs: op.estimatedMs,
      natsUrl: normaliseNatsUrl(d.natsUrl),
      cluster: d.cluster,
    };
    // The first configure of an LLM op in a process compiles (or loads) its kernels.
    await ref.ask({ type: 'configure', config }, { timeoutMs: 60_000, retries: 2 });
  }

  async #save(d: Deployment): Promise<void> {
    await (await this.#kv).put(d.name, JSON.stringify(d));
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #log(line: string): void {
    this.#options.log?.(line);
  }
}

/** The coordinator as an actor (`stitch-coordinator/<name>`): deployments and measurements arrive as messages. */
export function coordinatorActor(coordinator: Coordinator) {
  return defineActor({
    type: 'stitch-coordinator',
    // Deploys and re-plans are serialised inside the coordinator; measurements must not wait behind them.
    concurrency: 4,
    handlers: {
      deploy: (_s: undefined, msg: { mlir: string; name?: string }) => coordinator.deploy(msg.mlir, msg.name),
      observe: (_s: undefined, msg: { measurements: Measurement[] }) => {
        coordinator.observe(msg.measurements);
        return null;
      },
      status: (_s: undefined, msg: { name: string }) => ({
        deployment: coordinator.deployment(msg.name) ?? null,
        migrations: coordinator.migrations,
        correction: coordinator.correction.snapshot(),
      }),
    },
  });
}

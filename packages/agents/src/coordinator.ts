import type { KV } from '@nats-io/kv';
import { CorrectionTable } from '@stitch/cost';
import { type Cluster, type MembershipEvent, RuntimeErrorCode } from '@stitch/runtime';
import { type AutoscaleOptions, Autoscaler, replicasOf, type ScalingEvent } from './autoscaler.js';
import {
  type Deployment,
  deploymentsBucketName,
  isMeasurement,
  type Measurement,
  type MigrationEvent,
  type MovePhases,
} from './deployment.js';
import { isStoredDeployment } from './deployment-watch.js';
import { AgentsError, AgentsErrorCode } from './errors.js';
import { LEASE_KEY, LeaderLease } from './leadership.js';
import { MembershipWatch } from './membership-watch.js';
import { normaliseNatsUrl } from './op-config.js';
import type { OpConfig } from './ops.js';
import {
  type Analysed,
  classifyNodes,
  MILP_TIME_LIMIT_MS,
  missedSlaNote,
  type PlacedOp,
} from './placement.js';
import { describeMigration, migrationEvent, type PlannedMove, recordAfterReplan } from './plan-changes.js';
import { isRequestSummary, type RequestCounts, type RequestSummary, RequestTally } from './request-tally.js';
import { RetiringReplicas } from './retiring-replicas.js';
import { ScalingActions } from './scaling-actions.js';
import { SolverPool } from './solver-pool.js';
import { inSpan } from './tracing.js';

/**
 * Migration events the coordinator keeps (the most recent; older ones are dropped). Membership
 * changes and drift come from outside, so the list must not grow with them; `status` returns it.
 */
export const MAX_MIGRATIONS = 100;

/** Estimates below this are not corrected from measurements. */
const MIN_CORRECTED_MS = 1;

/** Deployment names are KV keys and actor-id parts: one token of these characters. */
const DEPLOYMENT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** Default cap on the deployments one coordinator keeps (each holds its graph and plan in memory). */
export const MAX_DEPLOYMENTS = 64;
/** Live moves into one node at once (a node runs 8 migrations at once and queues the rest, see #movesByTarget). */
const MOVES_INTO_A_NODE = 4;
/** Largest graph text a deploy accepts (the IR parser has its own limits below this). */
export const MAX_DEPLOY_BYTES = 1 << 20;

export interface CoordinatorMetrics {
  deploys: number;
  migrations: number;
  operatorsMoved: number;
  /** Of operatorsMoved, those handed over live (the rest were stopped and restarted). */
  operatorsMovedLive: number;
  /** Moves that failed (each retried by a later re-plan). */
  movesFailed: number;
  /** Re-plans dropped because a newer one of the same deployment started. */
  replansSuperseded: number;
  /** Replicas the control loop added, and removed. */
  replicasAdded: number;
  replicasRemoved: number;
  /** Times this coordinator won the leader lease, and lost it. */
  elected: number;
  deposed: number;
  ignoredMembership: number;
  leading: boolean;
  epoch: number;
}

/** Whether any activation of `op` (its first or a replica) runs on node `nodeId`. */
const runsOn = (op: PlacedOp, nodeId: string) => replicasOf(op).some((r) => r.node === nodeId);

export interface CoordinatorOptions {
  /** Deployments kept at most; a deploy of a new name beyond it fails with DEPLOY_INVALID. @default MAX_DEPLOYMENTS */
  maxDeployments?: number;
  /**
   * Name in the leader lease (unique per coordinator; `stitch coordinator --id`). Several coordinators
   * of one cluster elect one leader; the others stand by. @default `coordinator-<cluster.clientId>`
   */
  name?: string;
  /** A standby takes over once the leader has not renewed its lease for this long. @default 2000 */
  leaseMs?: number;
  /** Threads that parse graphs and solve placements, off the coordinator's event loop. @default 1 */
  solverThreads?: number;
  /** Re-plan with the corrected estimates after this many measured requests. @default 5 */
  driftEvery?: number;
  /** Migration events kept in `migrations` (the most recent). @default MAX_MIGRATIONS (100) */
  keepMigrations?: number;
  /** The control loop that scales operators' replicas with the load (`policy: 'rebalance'`). */
  autoscale?: AutoscaleOptions;
  log?: (line: string) => void;
}

/**
 * Places deployments on the live nodes, spawns and configures their operator actors, learns from
 * measured latencies, and re-plans + migrates on node join/leave or drift. Re-plans are serialised.
 */
export class Coordinator {
  readonly correction = new CorrectionTable();
  readonly #requests = new RequestTally();
  /** The most recent migrations, oldest first; at most `keepMigrations` of them. */
  readonly migrations: MigrationEvent[] = [];
  readonly #keepMigrations: number;
  readonly #autoscaler: Autoscaler;
  readonly #scaling: ScalingActions;
  readonly #retiring: RetiringReplicas;
  readonly #cluster: Cluster;
  readonly #deployments = new Map<string, { analysed: Analysed; record: Deployment; observed: number }>();
  readonly #options: CoordinatorOptions;
  #queue: Promise<unknown> = Promise.resolve();
  #kv: Promise<KV>;
  #unsubscribe: (() => void) | undefined;
  #stopped = false;
  /** Starts and stops so far: a start that a stop overtook opens nothing more. */
  #runs = 0;
  /** `#runs` as the last stop() left it: while no start() came since, no solver threads open. */
  #stoppedRun = -1;
  readonly #watch: MembershipWatch;
  #solver: SolverPool | undefined;
  #lease: LeaderLease | undefined;
  readonly #metrics = {
    deploys: 0,
    migrations: 0,
    operatorsMoved: 0,
    operatorsMovedLive: 0,
    movesFailed: 0,
    replansSuperseded: 0,
    replicasAdded: 0,
    elected: 0,
    deposed: 0,
  };
  /** Per deployment: the controller of its latest re-plan (a newer one aborts the older's solve). */
  readonly #latestReplan = new Map<string, AbortController>();
  /** Per deployment: nodes named gone by re-plans not yet done (a superseding re-plan keeps avoiding them). */
  readonly #goneFor = new Map<string, Set<string>>();

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
    this.#watch = new MembershipWatch(cluster, {
      holdsLease: () => this.#holdsLease,
      stopped: () => this.#stopped,
      hosts: (nodeId) => this.#hosts(nodeId),
      joined: (ev) => {
        for (const name of this.#deployments.keys()) this.#replanFor(name, ev, undefined);
      },
      lost: (nodeId, ev, cause) => {
        const replans: Promise<void>[] = [];
        for (const [name, d] of this.#deployments)
          if (d.record.ops.some((o) => runsOn(o, nodeId)))
            replans.push(this.#replanFor(name, ev, nodeId, cause));
        if (ev.kind === 'drain') this.#takeDrain(nodeId, replans);
      },
      log: (line) => this.#log(line),
    });
    const leaseMs = options.leaseMs ?? 2000;
    if (!Number.isSafeInteger(leaseMs) || leaseMs < 200)
      throw new RangeError(`leaseMs must be an integer ≥ 200, found ${String(options.leaseMs)}`);
    this.#retiring = new RetiringReplicas(cluster, options.autoscale?.retireMs ?? 2000);
    const scaling = new ScalingActions({
      cluster,
      deployment: (name) => this.#deployments.get(name),
      leading: () => this.leading,
      serial: (fn) => this.#serial(fn),
      configure: (d, opId, actorId) => this.#configure(d, opId, actorId),
      save: (d) => this.#save(d),
      move: (d, opId, from) => this.#move(d, opId, from),
      migrated: (ev) => this.#countMigration(ev),
      counters: this.#metrics,
      retiring: this.#retiring,
      keep: (list, ev) => this.#keep(list, ev),
      log: (line) => this.#log(line),
    });
    this.#scaling = scaling;
    this.#autoscaler = new Autoscaler(
      cluster,
      {
        leading: () => this.leading,
        records: () => [...this.#deployments.values()].map((d) => d.record),
        scaleOut: (name, opId, nodes, reason) => scaling.scaleOut(name, opId, nodes, reason),
        scaleIn: (name, opId, count, reason) => scaling.scaleIn(name, opId, count, reason),
        move: (name, opId, node, reason) => scaling.moveToClass(name, opId, node, reason),
        log: (line) => this.#log(line),
      },
      options.autoscale ?? {},
    );
  }

  /** The requests clients reported (`observe`) per deployment since this coordinator started. */
  requestCounts(): Record<string, RequestCounts> {
    return this.#requests.snapshot();
  }

  /** Counters since this coordinator was made: what it did, what failed, how often it led. */
  metrics(): CoordinatorMetrics {
    return {
      ...this.#metrics,
      replicasRemoved: this.#retiring.count,
      ignoredMembership: this.ignoredMembership,
      leading: this.leading,
      epoch: this.epoch,
    };
  }

  /**
   * Whether this coordinator holds the leader lease (only the leader deploys, re-plans and moves
   * operators). One that was never started takes part in no election and acts alone; a stopped one
   * does not lead.
   */
  get leading(): boolean {
    if (this.#stopped) return false;
    return this.#lease === undefined || this.#lease.leading;
  }

  /** Holds the leader lease, confirmed or not yet (see LeaderLease.held); a membership event is kept for it. */
  get #holdsLease(): boolean {
    if (this.#stopped) return false;
    return this.#lease === undefined || this.#lease.held;
  }

  /**
   * Resolves whether this coordinator may act now: at once while `leading`; while it holds the lease
   * but its last renewal is late, once the renewal is answered (false when it was deposed instead).
   */
  async #acting(): Promise<boolean> {
    if (this.leading) return true;
    if (this.#stopped || !this.#lease) return false;
    return (await this.#lease.untilActing()) && !this.#stopped;
  }

  /**
   * The fencing epoch of the leader lease while this coordinator holds it (every node command carries
   * it; see `LeaderLease.held`), else 0.
   */
  get epoch(): number {
    return this.#lease?.held ? this.#lease.epoch : 0;
  }

  /**
   * Takes over the deployments recorded in KV (a restarted coordinator continues where the last one
   * stopped), then watches membership: a node that leaves or dies has its operators moved elsewhere
   * (once the nodes bucket confirms it: its heartbeat is no longer current).
   */
  async start(): Promise<void> {
    // A stop() while this awaits ends the start: nothing it would open after that is opened.
    const run = ++this.#runs;
    await this.#load();
    if (run !== this.#runs) return;
    this.#stopped = false;
    const unsubscribe = await this.#cluster.onMembership((ev) => this.#watch.onEvent(ev));
    const kv = await this.#kv;
    if (run !== this.#runs) {
      unsubscribe();
      return;
    }
    this.#unsubscribe = unsubscribe;
    const leaseMs = this.#options.leaseMs ?? 2000;
    this.#lease = new LeaderLease(
      kv,
      this.#options.name ?? `coordinator-${this.#cluster.clientId}`,
      leaseMs,
      {
        elected: (epoch) => {
          this.#metrics.elected++;
          this.#cluster.fence('coordinator', epoch);
          this.#log(`leading the cluster's coordinators (epoch ${epoch})`);
          void this.#tookOver(epoch).catch((err) => this.#log(`take-over failed: ${(err as Error).message}`));
        },
        deposed: (why) => {
          this.#metrics.deposed++;
          this.#log(`no longer leading: ${why}`);
        },
        log: (line) => this.#log(line),
      },
    );
    await this.#lease.start();
    if (run === this.#runs) this.#autoscaler.start();
  }

  /**
   * A new leader reads the deployments afresh (the previous leader may have changed them) and re-plans
   * each: operators a migration left half-moved are placed where the plan wants them, and those on a
   * node that is draining move off it. Then every
   * activation is configured again: a live move the old leader started finishes between the nodes,
   * but the leader died before telling the moved operator its new device.
   */
  async #tookOver(epoch: number): Promise<void> {
    const t0 = performance.now();
    const since = (t: number) => `${Math.round(performance.now() - t)} ms`;
    const silent = await this.#cluster.announceFence();
    if (silent.length) this.#log(`nodes that did not confirm the new epoch: ${silent.join(', ')}`);
    const phases = [`fence announced ${since(t0)}`];
    const t1 = performance.now();
    await this.#load();
    phases.push(`deployments read ${since(t1)}`);
    const t2 = performance.now();
    // A drain announced while no coordinator led reached nobody: ask the nodes themselves.
    const hosts = new Set(
      [...this.#deployments.values()].flatMap((d) => d.record.ops.flatMap(replicasOf)).map((r) => r.node),
    );
    const draining = (
      await Promise.all(
        [...hosts].map(async (n) => ((await this.#cluster.isNodeDraining(n)) ? n : undefined)),
      )
    ).filter((n) => n !== undefined);
    phases.push(`drains checked ${since(t2)}`);
    const deployments = [...this.#deployments].map(async ([name, d]) => {
      const off = draining.filter((n) => d.record.ops.some((o) => runsOn(o, n)));
      if (off.length > 0) this.#goneFor.set(name, new Set([...(this.#goneFor.get(name) ?? []), ...off]));
      const why =
        off.length > 0 ? `a new leader took over (draining: ${off.join(', ')})` : 'a new leader took over';
      const t3 = performance.now();
      try {
        await this.replan(name, why);
        const t4 = performance.now();
        await this.#reconfigureAll(name);
        phases.push(`${name} re-planned ${Math.round(t4 - t3)} ms, configured ${since(t4)}`);
      } catch (err) {
        this.#log(`take-over of ${name} failed: ${(err as Error).message}`);
      }
    });
    for (const n of draining) this.#takeDrain(n, deployments);
    await Promise.all(deployments);
    this.#log(`take-over (epoch ${epoch}) done in ${since(t0)}: ${phases.join('; ')}`);
  }

  /**
   * Configures every activation of deployment `name` (each op and its replicas) from its record. Not
   * serialised with re-plans: an activation that does not answer must not hold them up, and a
   * configure is idempotent.
   */
  async #reconfigureAll(name: string): Promise<void> {
    const record = this.#deployments.get(name)?.record;
    if (!record || !(await this.#acting())) return;
    const all = record.ops.flatMap((op) => replicasOf(op).map((r) => ({ opId: op.id, actorId: r.actorId })));
    const settled = await Promise.allSettled(all.map((a) => this.#configure(record, a.opId, a.actorId)));
    const failed = settled.filter((r) => r.status === 'rejected').length;
    this.#log(
      `configured ${all.length - failed} of ${all.length} operator activation(s) of ${name} after the take-over`,
    );
  }

  /** Resolves once this coordinator leads; NotLeader (naming the leader) after two leases as a standby. */
  async #requireLeader(): Promise<void> {
    const lease = this.#lease;
    if (!lease || (await lease.untilLeading(lease.leaseMs * 2))) return;
    throw new AgentsError(
      AgentsErrorCode.NotLeader,
      `this coordinator is a standby; ${lease?.holder ?? 'another coordinator'} leads (send deployments there, or wait for a take-over)`,
    );
  }

  async #load(): Promise<void> {
    const kv = await this.#kv;
    for (const key of await this.#cluster.kvKeys(deploymentsBucketName(this.#cluster.name))) {
      if (key === LEASE_KEY) continue;
      const e = await kv.get(key);
      if (e?.operation !== 'PUT') continue;
      // A record that no longer parses or checks (written by another version, or by hand) is skipped:
      // one bad record must not stop the coordinator from managing the others.
      try {
        const record = e.json<unknown>();
        if (!isStoredDeployment(record, key))
          throw new Error(
            'not a deployment record of this version (name, ops, replicas, mlir, slaMs or rawMs)',
          );
        // What this process holds already and is as new: an operation under way on it (a lease lost and
        // won back) goes on changing that entry, not one replaced behind its back.
        const known = this.#deployments.get(key);
        if (known && known.record.version >= record.version) continue;
        if (this.#refusesSolves()) return;
        const analysed = await this.#solve().analyse(record.mlir);
        this.#deployments.set(record.name, { analysed, record, observed: 0 });
      } catch (err) {
        this.#log(`deployment record ${key} skipped: ${(err as Error).message}`);
      }
    }
  }

  /** Names of the deployments this coordinator manages. */
  get deployments(): string[] {
    return [...this.#deployments.keys()];
  }

  /**
   * Membership events not acted on: a `dead`/`leave` for a node whose heartbeat is current, a `join`
   * for a node with no capability record (forged, or stale), or one dropped while too many await a check.
   */
  get ignoredMembership(): number {
    return this.#watch.ignored;
  }

  /** Stops watching membership and closes the solver threads (a later `start` opens new ones). */
  stop(): Promise<void> {
    this.#stopped = true;
    this.#stoppedRun = ++this.#runs;
    this.#unsubscribe?.();
    this.#watch.stop();
    for (const ac of this.#latestReplan.values()) ac.abort();
    this.#latestReplan.clear();
    const pool = this.#solver;
    this.#solver = undefined;
    const lease = this.#lease;
    this.#lease = undefined;
    return Promise.all([pool?.close(), lease?.stop(), this.#autoscaler.stop(), this.#retiring.stop()]).then(
      () => undefined,
    );
  }

  /**
   * Whether this coordinator is stopped and not started since: what was under way at the stop (a
   * load, a queued deploy or re-plan) must not open solver threads that nothing would close.
   */
  #refusesSolves(): boolean {
    return this.#stopped && this.#runs === this.#stoppedRun;
  }

  /** The solver threads, opened on first use. NotLeader once stopped (a later start opens new ones). */
  #solve(): SolverPool {
    if (this.#refusesSolves())
      throw new AgentsError(
        AgentsErrorCode.NotLeader,
        'this coordinator is stopped: start it again, or send deployments to the leading coordinator',
      );
    this.#solver ??= new SolverPool({ threads: this.#options.solverThreads ?? 1 });
    return this.#solver;
  }

  deploy(mlir: string, name?: string): Promise<Deployment> {
    return inSpan('coordinator deploy', {}, async (span, traceparent) => {
      const d = await this.#deploy(mlir, traceparent, name);
      span.setAttributes({
        'stitch.deployment': d.name,
        'stitch.solver': d.solver,
        'stitch.ops': d.ops.length,
        'stitch.estimated_ms': d.latencyMs,
      });
      return d;
    });
  }

  async #deploy(mlir: string, traceparent: string | undefined, name?: string): Promise<Deployment> {
    await this.#requireLeader();
    return this.#serial(async () => {
      if (typeof mlir !== 'string' || mlir.length > MAX_DEPLOY_BYTES)
        throw new AgentsError(
          AgentsErrorCode.DeployInvalid,
          `a deployment's graph must be MLIR text of at most ${MAX_DEPLOY_BYTES} bytes`,
        );
      const analysed = await this.#solve().analyse(mlir, { traceparent });
      const depName = name ?? analysed.name;
      if (typeof depName !== 'string' || !DEPLOYMENT_NAME.test(depName))
        throw new AgentsError(
          AgentsErrorCode.DeployInvalid,
          `deployment name ${JSON.stringify(depName)} must be 1-64 characters of A-Z a-z 0-9 _ -, not starting with _ or - (set sym_name or pass a name)`,
        );
      const max = this.#options.maxDeployments ?? MAX_DEPLOYMENTS;
      if (!this.#deployments.has(depName) && this.#deployments.size >= max)
        throw new AgentsError(
          AgentsErrorCode.DeployInvalid,
          `this coordinator already keeps ${max} deployments; redeploy an existing name or raise maxDeployments`,
        );
      // A graph deployed again under its name may give its op ids to other ops.
      this.correction.forgetDeployment(depName);
      const plan = await this.#solve().plan(
        {
          deployment: depName,
          analysed,
          nodes: classifyNodes(await this.#cluster.nodes()),
          correction: this.correction,
        },
        { traceparent },
      );
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
      this.#metrics.deploys++;
      this.#logSlaMiss(undefined, record);
      return record;
    });
  }

  deployment(name: string): Deployment | undefined {
    return this.#deployments.get(name)?.record;
  }

  /**
   * Feeds measured (real, not modelled) latencies into the correction table, re-planning on drift,
   * and counts the request's outcome (`request`) against its deployment's SLA (see requestCounts).
   */
  observe(requestMeasurements: Measurement[], request?: RequestSummary): void {
    // What arrives from any client on the bus: malformed parts are skipped, not trusted.
    if (isRequestSummary(request)) {
      const known = this.#deployments.get(request.deployment);
      if (known) this.#requests.add(request, known.record.slaMs);
    }
    if (!Array.isArray(requestMeasurements)) return;
    const valid = requestMeasurements.filter(isMeasurement);
    const first = valid[0];
    const d = first && this.#deployments.get(first.deployment);
    if (!d) return;
    for (const m of valid) {
      if (m.deployment !== first.deployment) continue;
      const op = d.record.ops.find((o) => o.id === m.opId);
      const est = op && d.record.rawMs[op.id]?.[op.classId];
      // Sub-millisecond estimates are dominated by dispatch overhead the roofline does not model; they
      // would only skew their kind's factor (a tokenizer's 0.05 ms would slow every LLM op's estimate).
      if (!op || m.modelled || !est || est < MIN_CORRECTED_MS || !(m.ms > 0)) continue;
      this.correction.observe(op.kind, op.classId, est, m.ms, { deployment: d.record.name, op: op.id });
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
    const attributes = {
      'stitch.deployment': name,
      'stitch.replan.reason': reason,
      'stitch.replan.attempt': attempt,
    };
    return inSpan('coordinator replan', attributes, async (span, traceparent) => {
      const ev = await this.#replan(name, reason, traceparent, gone, attempt);
      span.setAttribute('stitch.replan.moved', ev?.moved.length ?? 0);
      if (ev) span.setAttribute('stitch.replan.cause', ev.reason);
      return ev;
    });
  }

  #replan(
    name: string,
    reason: string,
    traceparent: string | undefined,
    gone?: string,
    attempt = 0,
  ): Promise<MigrationEvent | undefined> {
    // A newer re-plan of a deployment supersedes an older one still queued or solving: it reads the
    // nodes afresh, and it keeps avoiding every node the older ones were told is gone.
    this.#latestReplan.get(name)?.abort();
    const ac = new AbortController();
    this.#latestReplan.set(name, ac);
    if (gone !== undefined) {
      const set = this.#goneFor.get(name) ?? new Set<string>();
      this.#goneFor.set(name, set.add(gone));
    }
    return this.#serial(async () => {
      if (ac.signal.aborted || !(await this.#acting())) return undefined;
      const d = this.#deployments.get(name);
      if (!d) return undefined;
      const avoid = new Set(this.#goneFor.get(name));
      const nodes = classifyNodes(await this.#cluster.nodes()).filter((n) => !avoid.has(n.nodeId));
      const live = new Set(nodes.map((n) => n.nodeId));
      const old = d.record;
      const at = await this.#liveNodesOf(old, live);
      const current = Object.fromEntries(old.ops.map((o, i) => [o.id, at[i] ?? o.node]));
      const plan = await this.#solve()
        .plan(
          { deployment: name, analysed: d.analysed, nodes, correction: this.correction, current },
          { signal: ac.signal, traceparent },
        )
        .catch((err) => {
          if (ac.signal.aborted) return undefined;
          throw err;
        });
      if (!plan) {
        this.#metrics.replansSuperseded++;
        this.#log(`re-plan of ${name} (${reason}) superseded by a newer one`);
        return undefined;
      }
      if (this.#latestReplan.get(name) === ac) {
        this.#latestReplan.delete(name);
        this.#goneFor.delete(name);
      }
      const { next, dropped, moves, behind } = recordAfterReplan(old, plan, nodes, at);
      if (moves.length === 0) {
        if (!behind && dropped.length === 0) return undefined;
        d.record = next;
        this.#logSlaMiss(old, next);
        await this.#save(next);
        this.#retiring.retireLater(dropped);
        return undefined;
      }
      // A node can vanish from the records before its leave event arrives: name it as the cause.
      const vanished = [...new Set(old.ops.map((o) => o.node))].filter((n) => !live.has(n) && !avoid.has(n));
      const why =
        vanished.length > 0
          ? `node ${vanished.join(', ')} left (noticed by a re-plan for ${reason})`
          : reason;
      d.record = next;
      this.#logSlaMiss(old, next);
      this.#retiring.retireLater(dropped);
      const retry = () => void this.replan(name, reason, gone, attempt + 1).catch(() => undefined);
      return this.#moveAll(next, why, moves, attempt < 20 ? retry : undefined);
    });
  }

  /** Where each of `d`'s operators runs, when that is one of the `live` nodes. */
  #liveNodesOf(d: Deployment, live: Set<string>): Promise<(string | undefined)[]> {
    return Promise.all(
      d.ops.map(async (o) => {
        const where = await this.#cluster.locate({ type: o.actorType, id: o.actorId }).catch(() => undefined);
        return where && live.has(where.node) ? where.node : undefined;
      }),
    );
  }

  /**
   * Moves the operators of `next` (the record, already current) for reason `why`, saves it once any
   * moved and logs it; `retry` re-plans shortly when a move failed.
   */
  async #moveAll(
    next: Deployment,
    why: string,
    moves: PlannedMove[],
    retry: (() => void) | undefined,
  ): Promise<MigrationEvent | undefined> {
    const t0 = performance.now();
    const settled = await this.#movesByTarget(next, moves);
    const failed = settled.filter((r) => r.status === 'rejected');
    this.#metrics.movesFailed += failed.length;
    if (failed.length > 0 && retry) {
      this.#log(`${failed.length} move(s) failed (${String(failed[0]!.reason)}); re-planning again shortly`);
      setTimeout(retry, 300);
    }
    const done = moves.flatMap((m, i) => {
      const r = settled[i]!;
      return r.status === 'fulfilled' ? [{ ...m, phases: r.value }] : [];
    });
    if (done.length === 0) return undefined;
    const ev = migrationEvent(next.name, why, done, performance.now() - t0);
    this.#countMigration(ev);
    await this.#save(next);
    this.#log(describeMigration(ev));
    return ev;
  }

  /**
   * Carries out `moves`, at most MOVES_INTO_A_NODE at once into each node: a node runs 8 migrations at
   * once and its queue for the rest is bounded (a refused live move falls back to a restart), and other
   * commanders' moves (a drain, a library caller) find room there too.
   */
  async #movesByTarget(next: Deployment, moves: PlannedMove[]): Promise<PromiseSettledResult<MovePhases>[]> {
    const settled: PromiseSettledResult<MovePhases>[] = [];
    const queues = new Map<string, number[]>();
    for (const [i, m] of moves.entries()) {
      const queue = queues.get(m.op.node);
      if (queue) queue.push(i);
      else queues.set(m.op.node, [i]);
    }
    const worker = async (queue: number[]) => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        const m = moves[i]!;
        settled[i] = await this.#move(next, m.op.id, m.from).then(
          (value): PromiseSettledResult<MovePhases> => ({ status: 'fulfilled', value }),
          (reason: unknown): PromiseSettledResult<MovePhases> => ({ status: 'rejected', reason }),
        );
      }
    };
    await Promise.all(
      [...queues.values()].flatMap((queue) =>
        Array.from({ length: Math.min(MOVES_INTO_A_NODE, queue.length) }, () => worker(queue)),
      ),
    );
    return settled;
  }

  /**
   * The server closed a client's connection (its disconnect advisory, see watchServerDisconnects):
   * when it was a node hosting operators that no longer answers, they move now (MembershipWatch).
   */
  nodeDisconnected(client: { name: string }): void {
    this.#watch.disconnected(client);
  }

  #replanFor(name: string, ev: MembershipEvent, gone: string | undefined, cause?: string): Promise<void> {
    const what = cause ?? (ev.kind === 'join' ? 'joined' : ev.kind === 'dead' ? 'died' : 'left');
    return this.replan(name, `node ${ev.nodeId} ${what}`, gone).then(
      () => undefined,
      (err) => this.#log(`re-plan after node ${ev.nodeId} ${what} failed: ${(err as Error).message}`),
    );
  }

  /**
   * Tells draining node `nodeId` that this coordinator moves its operators off it, so that its drain
   * does not end as idle (1 s without a move) while `work` plans, or while a standby takes over should
   * this one die: it waits up to two leases and a MILP's time limit between moves. Once `work` is done
   * and no operator of ours is left there, the node is told so (a wait of 0), and an actor nobody
   * moves no longer holds its drain up; one still there (a move failed: a re-plan follows) keeps it.
   */
  #takeDrain(nodeId: string, work: Promise<unknown>[]): void {
    const waitMs = 2 * (this.#options.leaseMs ?? 2000) + MILP_TIME_LIMIT_MS;
    const tell = (ms: number) =>
      this.#cluster.takeDrain(nodeId, ms).then(
        () => true,
        (err) => {
          this.#log(`could not tell draining node ${nodeId} to wait ${ms} ms: ${(err as Error).message}`);
          return false;
        },
      );
    void tell(waitMs).then(async (told) => {
      if (told) this.#log(`took the drain of ${nodeId} on: it waits up to ${waitMs} ms between moves`);
      await Promise.allSettled(work);
      if (!told || (await this.#operatorsOn(nodeId))) return;
      if (await tell(0)) this.#log(`released the drain of ${nodeId}: no operator of ours is left there`);
    });
  }

  /** Whether an operator activation of ours runs on `nodeId`, as the directory says. */
  async #operatorsOn(nodeId: string): Promise<boolean> {
    const refs = [...this.#deployments.values()].flatMap((d) =>
      d.record.ops.flatMap((o) => replicasOf(o).map((r) => ({ type: o.actorType, id: r.actorId }))),
    );
    const where = await Promise.all(refs.map((ref) => this.#cluster.locate(ref).catch(() => undefined)));
    return where.some((w) => w?.node === nodeId);
  }

  #hosts(nodeId: string): boolean {
    for (const d of this.#deployments.values()) if (d.record.ops.some((o) => runsOn(o, nodeId))) return true;
    return false;
  }

  /**
   * Live when the old node still runs the operator (it keeps serving while its state is copied, see
   * cluster.migrate); else, or when the live move fails, stop there (drain + snapshot) and restore on
   * the new node. Either way the operator is then configured for its new device.
   */
  #move(d: Deployment, opId: string, from: string): Promise<MovePhases> {
    const to = d.ops.find((o) => o.id === opId)?.node ?? '';
    const attributes = {
      'stitch.deployment': d.name,
      'stitch.op.id': opId,
      'stitch.move.from': from,
      'stitch.move.to': to,
    };
    return inSpan('coordinator move', attributes, async (span) => {
      const phases = await this.#moveNow(d, opId, from);
      span.setAttributes({
        'stitch.move.how': phases.how,
        'stitch.move.precopy_ms': phases.precopyMs,
        'stitch.move.paused_ms': phases.pausedMs,
        'stitch.move.stop_ms': phases.stopMs,
        'stitch.move.spawn_ms': phases.spawnMs,
        'stitch.move.configure_ms': phases.configureMs,
      });
      return phases;
    });
  }

  async #moveNow(d: Deployment, opId: string, from: string): Promise<MovePhases> {
    const op = d.ops.find((o) => o.id === opId)!;
    const ref = { type: op.actorType, id: op.actorId };
    const t0 = performance.now();
    const where = await this.#cluster.locate(ref);
    const alive = where?.node === from && (await this.#cluster.isNodeAlive(from));
    if (alive) {
      try {
        const r = await this.#cluster.migrate(ref, op.node);
        const configureMs = await this.#configure(d, opId);
        return {
          how: 'live',
          precopyMs: r.precopyMs,
          pausedMs: r.pausedMs,
          stopMs: 0,
          spawnMs: 0,
          configureMs,
        };
      } catch (err) {
        if ((await this.#cluster.locate(ref))?.node === op.node) throw err;
        // A target that takes no new actors would refuse the restart as well: the operator stays.
        if (await this.#cluster.isNodeDraining(op.node)) throw err;
        this.#log(
          `live move of ${opId} to ${op.node} failed (${(err as Error).message}); stopping and restarting it`,
        );
      }
      // A source gone meanwhile (killed) has nothing left to stop: restore from the persisted state.
      await this.#cluster.stop(ref).catch((err: { code?: string }) => {
        if (err.code !== RuntimeErrorCode.NoResponders) throw err;
      });
    }
    const stopped = performance.now();
    const spawned = await this.#cluster
      .spawn(op.actorType, { id: op.actorId, node: op.node })
      .then(() => performance.now())
      .catch(async (err) => {
        // Stopped for nothing: back where it ran rather than nowhere until someone asks for it.
        if (alive)
          await this.#cluster.spawn(op.actorType, { id: op.actorId, node: from }).catch(() => undefined);
        throw err;
      });
    const configureMs = await this.#configure(d, opId);
    return {
      how: 'restart',
      precopyMs: 0,
      pausedMs: spawned - t0,
      stopMs: stopped - t0,
      spawnMs: spawned - stopped,
      configureMs,
    };
  }

  /**
   * Spawns an operator of a new deployment where its plan says, with the replicas a planned rate
   * gave it, then configures each.
   */
  async #place(d: Deployment, opId: string): Promise<void> {
    const op = d.ops.find((o) => o.id === opId)!;
    await Promise.all(
      replicasOf(op).map(async (r) => {
        await this.#cluster.spawn(op.actorType, { id: r.actorId, node: r.node });
        await this.#configure(d, opId, r.actorId);
      }),
    );
  }

  /** The control loop's most recent changes, oldest first; at most `keepMigrations` of them. */
  get scalings(): ScalingEvent[] {
    return this.#scaling.events;
  }

  /** Keeps a migration's event and counts its operators. */
  #countMigration(ev: MigrationEvent): void {
    this.#keep(this.migrations, ev);
    this.#metrics.migrations++;
    this.#metrics.operatorsMoved += ev.moved.length;
    this.#metrics.operatorsMovedLive += ev.moved.filter((m) => m.phases?.how === 'live').length;
  }

  /** Appends to an event list the coordinator exposes, dropping the oldest past `keepMigrations`. */
  #keep<T>(list: T[], ev: T): void {
    list.push(ev);
    if (list.length > this.#keepMigrations) list.splice(0, list.length - this.#keepMigrations);
  }

  /** Tells an operator (its first activation, or the replica `actorId`) its deployment, op and device; resolves with the time that took. */
  async #configure(d: Deployment, opId: string, actorId?: string): Promise<number> {
    const op = d.ops.find((o) => o.id === opId)!;
    const t0 = performance.now();
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
    // The epoch this coordinator last led with (kept after a deposition), so that the operator refuses
    // a deposed leader's configure once the new leader's has reached it.
    const epoch = this.#lease?.epoch || undefined;
    // The first configure of an LLM op in a process compiles (or loads) its kernels.
    await this.#cluster
      .ref({ type: op.actorType, id: actorId ?? op.actorId })
      .ask({ type: 'configure', config, epoch }, { timeoutMs: 60_000, retries: 2 });
    return performance.now() - t0;
  }

  async #save(d: Deployment): Promise<void> {
    if (!(await this.#acting()))
      throw new AgentsError(
        AgentsErrorCode.NotLeader,
        `deployment ${d.name} not saved: this coordinator no longer leads`,
      );
    await (await this.#kv).put(d.name, JSON.stringify(d));
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** Logs a plan's missed SLA (a best-effort graph's note) when it is new or changed. */
  #logSlaMiss(old: Deployment | undefined, next: Deployment): void {
    const note = missedSlaNote(next.notes);
    if (note && note !== (old && missedSlaNote(old.notes))) this.#log(`${next.name}: ${note}`);
  }

  #log(line: string): void {
    this.#options.log?.(line);
  }
}

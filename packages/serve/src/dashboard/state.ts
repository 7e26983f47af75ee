// What the dashboard shows, read from the cluster: the nodes' capability records, the deployments in
// the coordinator's KV, and the coordinator actor's status (migrations, metrics).
import type { CoordinatorMetrics, MigrationEvent } from '@stitch/agents';
import type { CapabilityRecord, Cluster } from '@stitch/runtime';
import { Deployments } from '../deployments.js';

/** Samples of the time series kept (one per refresh: 10 minutes at the default second). */
export const HISTORY_POINTS = 600;
/** Operator actors whose mailboxes are inspected per refresh at most. */
export const MAX_INSPECTED_OPS = 256;
/** Replicas of one operator listed at most. */
export const MAX_REPLICAS_SHOWN = 64;
/** Migrations shown at most (the coordinator keeps 100 by default). */
export const MAX_MIGRATIONS_SHOWN = 100;

export interface NodeView {
  id: string;
  host: string;
  pid: number;
  healthy: boolean;
  /** Draining (see Node.drain): its operators are on their way off it, and nothing new lands on it. */
  draining: boolean;
  /** Shedding load (NodeOptions.shedding): it refuses new fast-mode messages, and takes no new operators. */
  shedding: boolean;
  devices: string[];
  /** The device class operators placed here run as: a catalog id when modelled, else `cpu`. */
  classId: string;
  modelled: boolean;
  hostsOperators: boolean;
  load: { actors: number; queued: number; running: number; loadAvg1: number };
  lagP99Ms: number;
  rssBytes: number;
  calibrated: { matmulGflops: number; matvecGbps: number } | null;
}

export interface OpView {
  id: string;
  op: string;
  kind: string;
  deps: string[];
  node: string;
  classId: string;
  modelled: boolean;
  estimatedMs: number;
  /** The nodes of its replicas beyond the first activation (the control loop scales these). */
  replicas: string[];
  /** The operator actor's mailbox now (null when it did not answer an inspect in time). */
  mailbox: { depth: number; running: number; processed: number; rejected: number; turnP50Ms: number } | null;
}

export interface DeploymentView {
  name: string;
  slaMs: number;
  solver: string;
  latencyMs: number;
  usdPerRequest: number;
  ops: OpView[];
}

export interface DashboardState {
  at: number;
  cluster: string;
  nodes: NodeView[];
  deployments: DeploymentView[];
  coordinator:
    | { ok: true; metrics: CoordinatorMetrics; migrations: MigrationEvent[] }
    | { ok: false; error: string };
  /** The nodes hosting operators, each at its device class's $/h from the placement. */
  usdPerHour: number;
  /** Requests clients reported to the coordinator since it started, all deployments together. */
  sla: SlaCounts;
  history: {
    at: number;
    usdPerHour: number;
    queued: number;
    actors: number;
    /** Share of the requests reported since the previous sample that answered within their SLA (null: none). */
    attainment: number | null;
  }[];
}

export interface SlaCounts {
  answered: number;
  failed: number;
  /** Answered within their deployment's SLA. */
  withinSla: number;
}

const NO_REQUESTS: SlaCounts = { answered: 0, failed: 0, withinSla: 0 };

/** The coordinator status's `requests` (per deployment), summed; what is not a count is left out. */
function slaCounts(requests: unknown): SlaCounts {
  const sum = { ...NO_REQUESTS };
  if (typeof requests !== 'object' || requests === null) return sum;
  for (const c of Object.values(requests as Record<string, unknown>)) {
    const x = c as Partial<SlaCounts> | null;
    const counts = [x?.answered, x?.failed, x?.withinSla];
    if (!counts.every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0)) continue;
    sum.answered += x!.answered!;
    sum.failed += x!.failed!;
    sum.withinSla += x!.withinSla!;
  }
  return sum;
}

/**
 * The share within SLA of the requests between two readings of the counts (a coordinator that
 * restarted counts from zero again: then all of `now`); null when there were none.
 */
function attainmentBetween(then: SlaCounts, now: SlaCounts): number | null {
  const restarted =
    now.answered < then.answered || now.failed < then.failed || now.withinSla < then.withinSla;
  const base = restarted ? NO_REQUESTS : then;
  const requests = now.answered + now.failed - base.answered - base.failed;
  return requests > 0 ? (now.withinSla - base.withinSla) / requests : null;
}

function nodeView(r: CapabilityRecord): NodeView {
  const virtual = r.devices.find((d) => d.kind.startsWith('virtual:'));
  return {
    id: r.nodeId,
    host: String(r.host),
    pid: Number(r.pid),
    healthy: r.healthy,
    draining: r.draining === true,
    shedding: r.shedding === true,
    devices: r.devices.map((d) =>
      d.kind === 'cpu'
        ? `cpu: ${d.model}, ${d.cores} cores${d.x86Level ? `, ${d.x86Level}` : ''}`
        : `${d.kind}${'modelled' in d ? ' (modelled)' : ''}`,
    ),
    classId: virtual && 'catalogId' in virtual ? virtual.catalogId : 'cpu',
    modelled: virtual !== undefined,
    hostsOperators: r.actorTypes.some((t) => t.startsWith('op-')),
    load: {
      actors: r.load.actors,
      queued: r.load.queued,
      running: r.load.running,
      loadAvg1: Number(r.load.loadAvg1) || 0,
    },
    lagP99Ms: Number(r.eventLoopLagMs?.p99) || 0,
    rssBytes: Number(r.memory?.rssBytes) || 0,
    calibrated: r.calibrated
      ? { matmulGflops: r.calibrated.matmulGflops, matvecGbps: r.calibrated.matvecGbps }
      : null,
  };
}

type Status = { migrations?: unknown; metrics?: unknown; requests?: unknown };

/**
 * The cluster as the dashboard shows it, read once: the nodes' records, the deployments with each
 * operator's mailbox, and coordinator `coordinatorId`'s status (`stitch status` prints it).
 */
export function readClusterState(cluster: Cluster, coordinatorId = 'main'): Promise<DashboardState> {
  return new ClusterView(cluster, coordinatorId).state();
}

/** Builds the dashboard's state from the cluster, keeping the time series between calls. */
export class ClusterView {
  readonly #cluster: Cluster;
  readonly #deployments: Deployments;
  readonly #coordinatorId: string;
  readonly #history: DashboardState['history'] = [];
  #sla: SlaCounts = NO_REQUESTS;

  constructor(cluster: Cluster, coordinatorId: string) {
    this.#cluster = cluster;
    this.#deployments = new Deployments(cluster, 0);
    this.#coordinatorId = coordinatorId;
  }

  async state(): Promise<DashboardState> {
    const [records, listed] = await Promise.all([this.#cluster.nodes(), this.#deployments.list()]);
    const nodes = records.map(nodeView).sort((a, b) => a.id.localeCompare(b.id));
    let budget = MAX_INSPECTED_OPS;
    const mailboxes = await Promise.all(
      listed.map(({ deployment: d }) =>
        Promise.all(d.ops.map((o) => (budget-- > 0 ? this.#mailbox(o.actorType, o.actorId) : null))),
      ),
    );
    const deployments = listed.map(({ deployment: d }, i) => ({
      name: d.name,
      slaMs: d.slaMs,
      solver: String(d.solver),
      latencyMs: Number(d.latencyMs) || 0,
      usdPerRequest: Number(d.usdPerRequest) || 0,
      ops: d.ops.map((o, j) => ({
        id: o.id,
        op: String(o.op),
        kind: String(o.kind),
        deps: o.deps,
        node: o.node,
        classId: o.classId,
        modelled: o.modelled === true,
        estimatedMs: Number(o.estimatedMs) || 0,
        replicas: Array.isArray(o.replicas)
          ? o.replicas.slice(0, MAX_REPLICAS_SHOWN).map((r) => String(r?.node))
          : [],
        mailbox: mailboxes[i]![j] ?? null,
      })),
    }));
    // A node counts once however many deployments place operators on it.
    const rate = new Map<string, number>();
    for (const { deployment: d } of listed)
      for (const o of d.ops) rate.set(o.node, Number(d.usdPerHour[o.classId]) || 0);
    const usdPerHour = [...rate.values()].reduce((s, x) => s + x, 0);
    const { coordinator, sla } = await this.#status(deployments[0]?.name ?? '-');
    // A coordinator that did not answer keeps the last counts: its requests show in the next sample.
    const counts = sla ?? this.#sla;
    const at = Date.now();
    this.#history.push({
      at,
      usdPerHour,
      queued: nodes.reduce((s, n) => s + n.load.queued, 0),
      actors: nodes.reduce((s, n) => s + n.load.actors, 0),
      attainment: attainmentBetween(this.#sla, counts),
    });
    this.#sla = counts;
    if (this.#history.length > HISTORY_POINTS) this.#history.shift();
    return {
      at,
      cluster: this.#cluster.name,
      nodes,
      deployments,
      coordinator,
      usdPerHour,
      sla: counts,
      history: [...this.#history],
    };
  }

  async #mailbox(type: string, id: string): Promise<OpView['mailbox']> {
    try {
      const m = (await this.#cluster.ref({ type, id }).inspect({ timeoutMs: 1000 })).mailbox;
      return {
        depth: m.depth,
        running: m.running,
        processed: m.processed,
        rejected: m.rejected,
        turnP50Ms: m.turnMs.p50,
      };
    } catch {
      return null;
    }
  }

  /** The coordinator's status, and the request counts in it (undefined when it did not answer one). */
  async #status(
    name: string,
  ): Promise<{ coordinator: DashboardState['coordinator']; sla: SlaCounts | undefined }> {
    try {
      const s = (await this.#cluster
        .ref({ type: 'stitch-coordinator', id: this.#coordinatorId })
        .ask({ type: 'status', name }, { timeoutMs: 2000 })) as Status | null;
      if (!Array.isArray(s?.migrations) || typeof s.metrics !== 'object' || s.metrics === null) {
        const error = 'the coordinator answered something that is not a status';
        return { coordinator: { ok: false, error }, sla: undefined };
      }
      const coordinator = {
        ok: true as const,
        metrics: s.metrics as CoordinatorMetrics,
        migrations: (s.migrations as MigrationEvent[]).slice(-MAX_MIGRATIONS_SHOWN),
      };
      return { coordinator, sla: slaCounts(s.requests) };
    } catch (err) {
      const error = `stitch-coordinator/${this.#coordinatorId} did not answer: ${(err as Error).message}`;
      return { coordinator: { ok: false, error }, sla: undefined };
    }
  }
}

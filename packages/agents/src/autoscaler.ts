// The coordinator's control loop: every round it samples what each node's actors did (cluster.inspectNode:
// arrivals, turns, busy time, queue), turns that into per-operator observations (with the other live
// classes each op could run on, from the plan's cost estimates) and per-class free slots, runs the
// planner's `rebalance` policy (a pure function of those, the config and the clock, which the fleet
// simulator runs too), and has the coordinator carry out what it returns: replicas added or removed,
// or an op moved live to another class.
import { findDevice, PAPER_CATALOG } from '@stitch/cost';
import {
  type ClassOption,
  crossingMs,
  type OperatorObservation,
  type RebalanceAction,
  type RebalanceConfig,
  type RebalanceState,
  rebalance,
} from '@stitch/planner';
import type { Cluster, NodeInspection } from '@stitch/runtime';
import type { Deployment } from './deployment.js';
import { classifyNodes, type NodeClass, type PlacedOp, STATEFUL } from './placement.js';

export interface AutoscaleOptions {
  /** `static`: the plan's replicas never change; `rebalance`: the control loop scales them. @default 'static' */
  policy?: 'static' | 'rebalance';
  /** Milliseconds between rounds. @default 1000 */
  intervalMs?: number;
  /**
   * Each round observes the last this many milliseconds (a sliding window: one round's few arrivals
   * would make the rates too noisy to act on). The loop first acts once it has watched a whole
   * window, after it starts or takes the lead. @default 3000
   */
  windowMs?: number;
  /** The policy's thresholds, cooldown and caps (see @stitch/planner `rebalance`). */
  rebalance?: RebalanceConfig;
  /**
   * A replica scaled in keeps serving this long after the record drops it (callers in other
   * processes read the record from KV), then stops after finishing what it queued. @default 2000
   */
  retireMs?: number;
}

/** One change the control loop made, with the policy's reason. */
export interface ScalingEvent {
  deployment: string;
  opId: string;
  kind: RebalanceAction['kind'];
  classId: string;
  /** A move's new class. */
  toClassId?: string;
  from: number;
  to: number;
  /** Nodes the added replicas run on, or that the removed ones ran on. */
  nodes: string[];
  reason: string;
  at: number;
  ms: number;
}

/** What the control loop needs from the coordinator. */
export interface AutoscaleHost {
  leading(): boolean;
  records(): Deployment[];
  scaleOut(deployment: string, opId: string, nodes: string[], reason: string): Promise<void>;
  scaleIn(deployment: string, opId: string, count: number, reason: string): Promise<void>;
  /** Moves op `opId` (a single activation) live to `node`, of another class. */
  move(deployment: string, opId: string, node: NodeClass, reason: string): Promise<void>;
  log(line: string): void;
}

/** How long one round waits for a node's inspection. */
const INSPECT_MS = 500;

interface Counters {
  accepted: number;
  processed: number;
  /** Turn time less the time turns waited for a device slot: the actor's own work. */
  busyMs: number;
  /** The time turns waited for a device slot. */
  slotWaitMs: number;
  depth: number;
  /** Messages refused because the node shed load. */
  shed: number;
}

/**
 * An actor's counters over the window; a restarted activation (counters went back) counts from 0.
 * busyMs is its own work: a turn waiting for a busy device says the device is full, which more
 * replicas of this op on that device would not change.
 */
interface Delta {
  node: string;
  arrived: number;
  processed: number;
  busyMs: number;
  slotWaitMs: number;
  depth: number;
  shed: number;
}

const actorKey = (type: string, id: string) => `${type}/${id}`;

/** Every activation of an op: the first, then its replicas. */
export function replicasOf(op: PlacedOp): { actorId: string; node: string }[] {
  return [{ actorId: op.actorId, node: op.node }, ...(op.replicas ?? [])];
}

/** Samples kept at most, whatever the window and interval. */
const MAX_SAMPLES = 64;

/** Turns successive node inspections into per-actor deltas over a sliding window. */
export class LoadSampler {
  readonly #windowMs: number;
  readonly #history: { at: number; counters: Map<string, Counters> }[] = [];
  #firstAt: number | undefined;

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /**
   * Deltas from the newest sample at least `windowMs` old (or the oldest kept) to this one, and the
   * milliseconds they cover; undefined until the samples span a whole window: a young history's few
   * turns (an activation's set-up and its first request in 300 ms) read as a rate no load has.
   */
  sample(
    inspections: NodeInspection[],
    now: number,
  ): { deltas: Map<string, Delta>; dtMs: number } | undefined {
    // The base is the newest sample at least a window old: older ones are no longer needed.
    while (this.#history.length > 1 && this.#history[1]!.at <= now - this.#windowMs) this.#history.shift();
    const next = new Map<string, Counters>();
    const deltas = new Map<string, Delta>();
    for (const ins of inspections)
      for (const a of ins.actors) {
        const m = a.mailbox;
        const key = actorKey(a.type, a.id);
        const slotWaitMs = a.slotWaitMs ?? 0;
        const busyMs = Math.max(0, m.busyMs - slotWaitMs);
        const shed = m.shed ?? 0;
        const c = { accepted: m.accepted, processed: m.processed, busyMs, slotWaitMs, depth: m.depth, shed };
        next.set(key, c);
        const p = this.#history[0]?.counters.get(key);
        const fresh =
          !p ||
          c.accepted < p.accepted ||
          c.processed < p.processed ||
          c.busyMs < p.busyMs ||
          c.slotWaitMs < p.slotWaitMs ||
          c.shed < p.shed;
        const base = fresh ? { accepted: 0, processed: 0, busyMs: 0, slotWaitMs: 0, shed: 0 } : p;
        deltas.set(key, {
          node: ins.nodeId,
          arrived: c.accepted - base.accepted,
          processed: c.processed - base.processed,
          busyMs: c.busyMs - base.busyMs,
          slotWaitMs: c.slotWaitMs - base.slotWaitMs,
          depth: c.depth,
          shed: c.shed - base.shed,
        });
      }
    const dtMs = this.#history.length === 0 ? undefined : now - this.#history[0]!.at;
    this.#history.push({ at: now, counters: next });
    if (this.#history.length > MAX_SAMPLES) this.#history.shift();
    this.#firstAt ??= now;
    if (now - this.#firstAt < this.#windowMs) return undefined;
    return dtMs === undefined || dtMs <= 0 ? undefined : { deltas, dtMs };
  }
}

/**
 * The longest chain of the ops' estimated times through their dependencies, ms: what the graph's
 * latency is made of besides transfers, so that a move changes the deployment's latency by its change.
 */
export function criticalPathMs(ops: readonly PlacedOp[]): number {
  const byId = new Map(ops.map((o) => [o.id, o]));
  const done = new Map<string, number>();
  const visiting = new Set<string>();
  const finish = (o: PlacedOp): number => {
    const known = done.get(o.id);
    if (known !== undefined) return known;
    // A record is input from KV: a dependency on the way (a cycle) or missing counts as nothing.
    visiting.add(o.id);
    const before = Math.max(
      0,
      ...o.deps.map((d) => (byId.has(d) && !visiting.has(d) ? finish(byId.get(d)!) : 0)),
    );
    visiting.delete(o.id);
    const t = before + o.estimatedMs;
    done.set(o.id, t);
    return t;
  };
  return Math.max(0, ...ops.map((o) => finish(o)));
}

/**
 * The other live classes op `op` could run on, with a device's price and a service time there: the
 * cost model's ratio between that class and the op's own, applied to `serviceMs` (what the op takes
 * where it runs), so that a measured time is compared with a measured-like one. The plan's estimates
 * already leave out classes a placement hint or the op's kind rules out.
 */
function alternativesOf(
  d: Deployment,
  op: PlacedOp,
  serviceMs: number,
  live: ReadonlySet<string>,
): ClassOption[] {
  const raw = d.rawMs[op.id];
  const here = raw?.[op.classId];
  if (!raw || typeof here !== 'number' || !(here > 0)) return [];
  const scale = serviceMs / here;
  const edges = edgesOf(d, op);
  const edgesHere = edgeMs(edges, op.classId);
  return Object.entries(raw).flatMap(([classId, ms]) =>
    // A class the op cannot (or may not) run on is estimated at Infinity, null once the record went
    // through JSON.
    classId !== op.classId &&
    live.has(classId) &&
    typeof ms === 'number' &&
    ms > 0 &&
    Number.isFinite(ms * scale) &&
    Number.isFinite(d.usdPerHour[classId])
      ? [
          {
            classId,
            serviceMs: ms * scale,
            usdPerHour: d.usdPerHour[classId]!,
            transferMs: edgeMs(edges, classId) - edgesHere,
          },
        ]
      : [],
  );
}

/** One edge of an op to a neighbour: the bytes it carries per request and where the neighbour runs. */
interface NeighbourEdge {
  bytes: number;
  classId: string;
}

/** The op's edges to the ops it reads from and those that read from it, as the record gives them. */
function edgesOf(d: Deployment, op: PlacedOp): NeighbourEdge[] {
  const edges: NeighbourEdge[] = [];
  // A record is input from KV: bytes that are not a count, or a neighbour it lacks, carry nothing.
  const add = (bytes: unknown, classId: string | undefined) => {
    if (typeof bytes === 'number' && bytes > 0 && Number.isFinite(bytes) && typeof classId === 'string')
      edges.push({ bytes, classId });
  };
  for (const o of d.ops) {
    if (o.id !== op.id && op.deps.includes(o.id)) add(op.edgeBytes?.[o.id], o.classId);
    if (o.id !== op.id && o.deps.includes(op.id)) add(o.edgeBytes?.[op.id], o.classId);
  }
  return edges;
}

/**
 * What the edges take per request with the op on `classId`: nothing to a neighbour on the same
 * class, else the bytes over the slower of the two classes' links (the planner's crossingMs).
 */
function edgeMs(edges: readonly NeighbourEdge[], classId: string): number {
  let ms = 0;
  for (const e of edges) {
    if (e.classId === classId) continue;
    const a = linkGBps(classId);
    const b = linkGBps(e.classId);
    if (a > 0 && b > 0) ms += crossingMs(e.bytes, a, b);
  }
  return ms;
}

/** A class's scale-out link from the catalog the plans use; 0 (not counted) for a class it lacks. */
function linkGBps(classId: string): number {
  try {
    return findDevice(PAPER_CATALOG, classId).link.scaleOutGBps;
  } catch {
    return 0;
  }
}

/**
 * The policy's view of each op of a deployment over the last round; `live`: the classes nodes offer
 * now; `shedding`: the nodes that shed load now.
 */
export function observeDeployment(
  d: Deployment,
  deltas: ReadonlyMap<string, Delta>,
  dtMs: number,
  live: ReadonlySet<string> = new Set(),
  shedding: ReadonlySet<string> = new Set(),
): OperatorObservation[] {
  const slack = Math.max(0, d.slaMs - d.latencyMs);
  return d.ops.map((op) => {
    let arrived = 0;
    let processed = 0;
    let busyMs = 0;
    let slotWaitMs = 0;
    let depth = 0;
    // A replica on a node that sheds load now serves nobody, asked or not (an idle round must not
    // read it as serving and scale in the replica standing in for it); one whose node shed part of
    // the round served the share of its messages it took; one not seen this round (its node did not
    // answer) counts as serving.
    let serving = 0;
    const all = replicasOf(op);
    for (const r of all) {
      const x = deltas.get(actorKey(op.actorType, r.actorId));
      serving += shedding.has(r.node) ? 0 : x && x.shed > 0 ? x.arrived / (x.arrived + x.shed) : 1;
      if (!x) continue;
      arrived += x.arrived;
      processed += x.processed;
      busyMs += x.busyMs;
      slotWaitMs += x.slotWaitMs;
      depth += x.depth;
    }
    // With nothing finished this round, the plan's estimate stands in for the service time.
    const serviceMs = processed > 0 ? busyMs / processed : op.estimatedMs;
    return {
      opId: op.id,
      classId: op.classId,
      replicas: all.length,
      servingReplicas: serving,
      arrivalPerS: (arrived * 1000) / dtMs,
      serviceMs,
      queueDepth: depth,
      slotWaitMs: processed > 0 ? slotWaitMs / processed : 0,
      // Stateful ops keep per-key state in one activation: they are never replicated.
      pinned: op.attrs.pinned === true || STATEFUL.has(op.actorType),
      usdPerHour: d.usdPerHour[op.classId],
      alternatives: alternativesOf(d, op, serviceMs, live),
      // On the critical path or not, taking the graph's slack as well keeps the SLA.
      budgetMs: op.estimatedMs + slack,
    };
  });
}

/**
 * Slots each node of `nodes` has free: its device's slots less the busy time its actors used per ms
 * (a fraction: a replica needs a whole one, a move the share of one its load takes).
 */
export function freeSlotsByNode(
  nodes: readonly NodeClass[],
  deltas: ReadonlyMap<string, Delta>,
  dtMs: number,
): Map<string, number> {
  const busy = new Map<string, number>();
  for (const x of deltas.values()) busy.set(x.node, (busy.get(x.node) ?? 0) + x.busyMs / dtMs);
  // A node that sheds load takes no replica or moved operator, whatever its slots say.
  return new Map(
    nodes.map((n) => [n.nodeId, n.shedding ? 0 : Math.max(0, n.slots - (busy.get(n.nodeId) ?? 0))]),
  );
}

/**
 * Per class, what the policy may use: `slots`, whole free slots summed over its nodes (a replica
 * cannot span nodes), and `share`, the most any one node has free (what a moved op's load may take).
 */
export function classRoom(
  nodes: readonly NodeClass[],
  free: ReadonlyMap<string, number>,
): { slots: Record<string, number>; share: Record<string, number> } {
  const slots: Record<string, number> = {};
  const share: Record<string, number> = {};
  for (const n of nodes) {
    const f = free.get(n.nodeId) ?? 0;
    slots[n.classId] = (slots[n.classId] ?? 0) + Math.floor(f);
    share[n.classId] = Math.max(share[n.classId] ?? 0, f);
  }
  return { slots, share };
}

/**
 * The node of class `classId` an op moving there goes to: one with `slots` free, preferring a node
 * that already hosts the deployment (`hosting`: no device more is held, and its neighbours are near),
 * then the one with the most free slots.
 */
export function nodeForMove(
  nodes: readonly NodeClass[],
  free: ReadonlyMap<string, number>,
  classId: string,
  slots: number,
  hosting: ReadonlySet<string>,
): NodeClass | undefined {
  const room = (n: NodeClass) => free.get(n.nodeId) ?? 0;
  return nodes
    .filter((n) => n.classId === classId && room(n) >= slots)
    .sort(
      (a, b) =>
        Number(hosting.has(b.nodeId)) - Number(hosting.has(a.nodeId)) ||
        room(b) - room(a) ||
        a.nodeId.localeCompare(b.nodeId),
    )[0];
}

/**
 * Nodes for `count` new replicas of `op` on class `classId` (its own by default): those with the most
 * free slots first, a node that runs none of the op's replicas before one that does; each replica
 * takes one slot.
 */
export function nodesForReplicas(
  op: PlacedOp,
  count: number,
  nodes: readonly NodeClass[],
  free: Map<string, number>,
  classId = op.classId,
): string[] {
  const hosting = new Map<string, number>();
  for (const r of replicasOf(op)) hosting.set(r.node, (hosting.get(r.node) ?? 0) + 1);
  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    const best = nodes
      .filter((n) => n.classId === classId && (free.get(n.nodeId) ?? 0) >= 1)
      .sort(
        (a, b) =>
          (hosting.get(a.nodeId) ?? 0) - (hosting.get(b.nodeId) ?? 0) ||
          (free.get(b.nodeId) ?? 0) - (free.get(a.nodeId) ?? 0) ||
          a.nodeId.localeCompare(b.nodeId),
      )[0];
    if (!best) break;
    out.push(best.nodeId);
    free.set(best.nodeId, (free.get(best.nodeId) ?? 0) - 1);
    hosting.set(best.nodeId, (hosting.get(best.nodeId) ?? 0) + 1);
  }
  return out;
}

/** Runs the rounds on a timer while its coordinator leads; one round at a time. */
export class Autoscaler {
  readonly #cluster: Cluster;
  readonly #host: AutoscaleHost;
  readonly #options: AutoscaleOptions;
  readonly #sampler: LoadSampler;
  readonly #state = new Map<string, RebalanceState>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(cluster: Cluster, host: AutoscaleHost, options: AutoscaleOptions) {
    this.#cluster = cluster;
    this.#host = host;
    this.#options = options;
    this.#sampler = new LoadSampler(options.windowMs ?? 3000);
    // Checked now, so a bad config fails the coordinator's construction rather than every round.
    rebalance([], {}, options.rebalance ?? {}, 0);
  }

  start(): void {
    if (this.#options.policy !== 'rebalance' || this.#timer) return;
    this.#timer = setInterval(() => {
      if (this.#running) return;
      this.#running = this.round(Date.now())
        .catch((err) => this.#host.log(`control round failed: ${(err as Error).message}`))
        .finally(() => {
          this.#running = undefined;
        });
    }, this.#options.intervalMs ?? 1000);
    // The control loop alone keeps no process alive (a coordinator that was never stopped included).
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** One round: sample, decide, act. */
  async round(now: number): Promise<void> {
    if (!this.#host.leading()) return;
    const nodes = classifyNodes(await this.#cluster.nodes());
    const inspections = await Promise.all(
      nodes.map((n) => this.#cluster.inspectNode(n.nodeId, INSPECT_MS).catch(() => undefined)),
    );
    const sample = this.#sampler.sample(
      inspections.filter((x) => x !== undefined),
      now,
    );
    if (!sample) return;
    const free = freeSlotsByNode(nodes, sample.deltas, sample.dtMs);
    const { slots: freeByClass, share: shareByClass } = classRoom(nodes, free);
    const live = new Set(nodes.map((n) => n.classId));
    const shedding = new Set(nodes.filter((n) => n.shedding).map((n) => n.nodeId));
    for (const d of this.#host.records()) {
      const observations = observeDeployment(d, sample.deltas, sample.dtMs, live, shedding);
      const result = rebalance(
        observations,
        freeByClass,
        this.#options.rebalance ?? {},
        now,
        this.#state.get(d.name),
        shareByClass,
      );
      this.#state.set(d.name, result.state);
      for (const a of result.actions) {
        const op = d.ops.find((o) => o.id === a.opId)!;
        if (a.kind === 'scale-in') {
          await this.#host.scaleIn(d.name, a.opId, a.from - a.to, a.reason);
          continue;
        }
        if (a.kind === 'move') {
          const slots = a.slots ?? 1;
          const hosting = new Set(d.ops.flatMap((o) => replicasOf(o).map((r) => r.node)));
          const node = nodeForMove(nodes, free, a.toClassId!, slots, hosting);
          if (!node) continue;
          free.set(node.nodeId, Math.max(0, (free.get(node.nodeId) ?? 0) - slots));
          await this.#host.move(d.name, a.opId, node, a.reason);
          continue;
        }
        const targets = nodesForReplicas(op, a.to - a.from, nodes, free);
        freeByClass[a.classId] = Math.max(0, (freeByClass[a.classId] ?? 0) - targets.length);
        if (targets.length > 0) await this.#host.scaleOut(d.name, a.opId, targets, a.reason);
      }
    }
  }
}

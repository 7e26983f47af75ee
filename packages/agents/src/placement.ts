import {
  applyMeasuredPeaks,
  type Catalog,
  type CorrectionTable,
  deviceHourlyCost,
  findDevice,
  PAPER_CATALOG,
} from '@stitch/cost';
import { type DemandRow, defaultRegistry, demandTable, PassManager, parseGraph } from '@stitch/ir';
import {
  loadMilpSolver,
  type MilpSolver,
  type PlanFeasible,
  type PlanResult,
  placementHintApplies,
  planExact,
  planHeuristic,
  problemFromDemand,
} from '@stitch/planner';
import type { CapabilityRecord } from '@stitch/runtime';
import { AgentsError, AgentsErrorCode } from './errors.js';
import { operatorType } from './operator.js';

/** A node that can host operators, with the device class it stands for. */
export interface NodeClass {
  nodeId: string;
  classId: string;
  modelled: boolean;
  load: number;
  /**
   * The node sheds load (its record's `shedding`): it keeps the operators it runs, and takes new ones
   * only when no other node of its class can (see placeOps and freeSlotsByNode).
   */
  shedding?: boolean;
  /** Execution slots of the node's device of that class (the record's load.devices; 1 when it has none). */
  slots: number;
  calibrated?: { gflops: number; gbps: number };
}

/** The device class of a node record: its virtual device when it models one, else its real CPU. */
export function classifyNodes(records: CapabilityRecord[]): NodeClass[] {
  const out: NodeClass[] = [];
  for (const r of records) {
    // A draining node takes no new operators, and those it runs are on their way off it.
    if (!r.healthy || r.draining || !r.actorTypes.includes(operatorType('tool'))) continue;
    const virtual = r.devices.find((d) => d.kind.startsWith('virtual:'));
    const cal = r.calibrated;
    const classId = virtual && 'catalogId' in virtual ? virtual.catalogId : 'cpu';
    const slots = Array.isArray(r.load.devices)
      ? r.load.devices.find((d) => d?.device === classId)?.slots
      : undefined;
    out.push({
      nodeId: r.nodeId,
      classId,
      modelled: virtual !== undefined,
      load: r.load.actors + r.load.queued,
      ...(r.shedding === true ? { shedding: true } : {}),
      slots: Number.isSafeInteger(slots) && slots! > 0 ? slots! : 1,
      ...(cal && !virtual ? { calibrated: { gflops: cal.matmulGflops, gbps: cal.matvecGbps } } : {}),
    });
  }
  return out.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
}

export interface Analysed {
  name: string;
  slaMs: number;
  /**
   * Requests per second the graph is planned for (its `rate_rps` attribute): the plan then keeps
   * what its ops keep busy within the live nodes' slots. Absent: slots do not bound the plan.
   */
  rateRps?: number;
  /**
   * What a deploy or re-plan does when no placement meets `slaMs` (its `sla_policy` attribute):
   * `strict` (the default) fails with DEPLOY_INFEASIBLE; `best_effort` places for the lowest
   * latency the live nodes allow and says by how much it misses the SLA in the record's notes.
   */
  slaPolicy?: SlaPolicy;
  rows: DemandRow[];
}

export type SlaPolicy = 'strict' | 'best_effort';
const SLA_POLICIES: readonly unknown[] = ['strict', 'best_effort'] satisfies SlaPolicy[];

/** How the note of a best-effort plan that misses its SLA begins (see missedSlaNote). */
const MISSED_SLA = 'SLA ';

/** The note of a plan's record saying that it misses its SLA (a best-effort graph), if it has one. */
export function missedSlaNote(notes: readonly string[]): string | undefined {
  return notes.find((n) => n.startsWith(MISSED_SLA));
}

function attrValue(a: unknown): unknown {
  return typeof a === 'object' && a !== null && 'value' in a ? (a as { value: unknown }).value : undefined;
}

/** Parses the deployment, runs `decompose`, `unroll-loops` and `annotate-demand`; returns its demand table. */
export function analyseGraph(mlir: string, file = 'deployment.mlir'): Analysed {
  const graph = parseGraph(mlir, file);
  const annotated = new PassManager({ registry: defaultRegistry() })
    .add('decompose')
    .add('unroll-loops')
    .add('annotate-demand')
    .run(graph);
  const top = graph.ops[0];
  const sla = attrValue(top?.attrs.sla_ms);
  const name = attrValue(top?.attrs.sym_name);
  const rate = attrValue(top?.attrs.rate_rps);
  const policy = attrValue(top?.attrs.sla_policy);
  if (policy !== undefined && !SLA_POLICIES.includes(policy))
    throw new AgentsError(
      AgentsErrorCode.DeployInvalid,
      `${file}: sla_policy must be "strict" or "best_effort", found ${JSON.stringify(policy)}`,
    );
  if (rate !== undefined && !(typeof rate === 'number' && rate > 0 && rate < Infinity))
    throw new AgentsError(
      AgentsErrorCode.DeployInvalid,
      `${file}: rate_rps must be a positive number of requests per second, found ${JSON.stringify(rate)}`,
    );
  return {
    name: typeof name === 'string' ? name : 'graph',
    slaMs: typeof sla === 'number' && sla > 0 ? sla : 5000,
    ...(rate !== undefined ? { rateRps: rate } : {}),
    ...(policy !== undefined ? { slaPolicy: policy as SlaPolicy } : {}),
    rows: demandTable(annotated),
  };
}

/** Ops run by an actor type other than their kind's: the vector search holds an index (op-vector). */
const ACTOR_OF_OP: Record<string, string> = { 'memory.vector_search': 'op-vector' };
/** Actor types whose state lives in one activation: partitioned by key (the graph says), never replicated. */
export const STATEFUL = new Set(['op-vector']);

/** One op of a placed deployment: where it runs and what the model predicts there. */
export interface PlacedOp {
  id: string;
  op: string;
  kind: string;
  deps: string[];
  /** Bytes each dep sends the op per request (the IR's estimate); absent from older records. */
  edgeBytes?: Record<string, number>;
  attrs: Record<string, string | number | boolean>;
  actorType: string;
  actorId: string;
  classId: string;
  modelled: boolean;
  node: string;
  estimatedMs: number;
  usdPerRequest: number;
  /**
   * Replicas beyond the first (`actorId` on `node`), added by the control loop while the op is busy:
   * callers spread requests over all of them. Each runs on a node of the op's class.
   */
  replicas?: OpReplica[];
}

/** A further activation of an op, on a node of the op's class. */
export interface OpReplica {
  actorId: string;
  node: string;
}

export interface PlanOutcome {
  ops: PlacedOp[];
  solver: 'milp' | 'heuristic';
  solveMs: { milp: number | null; heuristic: number };
  latencyMs: number;
  usdPerRequest: number;
  usdPerHour: Record<string, number>;
  /** Uncorrected roofline estimate per op id and class, the baseline measured latencies are compared to. */
  rawMs: Record<string, Record<string, number>>;
  notes: string[];
}

export interface PlanInput {
  deployment: string;
  analysed: Analysed;
  nodes: NodeClass[];
  correction?: CorrectionTable;
  /** Node currently hosting each op: kept when its class stays the same, so plans move little. */
  current?: Record<string, string>;
  milp?: MilpSolver | null;
}

let solver: Promise<MilpSolver | null> | undefined;

/** HiGHS, loaded once per process; null when the WASM module cannot load (the heuristic still plans). */
export function milpSolver(): Promise<MilpSolver | null> {
  solver ??= loadMilpSolver().catch(() => null);
  return solver;
}

export function actorIdOf(deployment: string, opId: string): string {
  return `${deployment}-${opId}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 120);
}

/**
 * The share of a class's slots a plan at a given rate may keep busy: queueing grows without bound as
 * a device nears full use (an M/M/1 queue waits 4 service times at 80 %).
 */
const PLANNED_BUSY = 0.8;

/** Per class, the slots its live nodes advertise. */
function slotsByClass(nodes: readonly NodeClass[]): Record<string, number> {
  const slots: Record<string, number> = {};
  for (const n of nodes) slots[n.classId] = (slots[n.classId] ?? 0) + n.slots;
  return slots;
}

/** Actor id of an op's replica `k` (1, 2, …); the op's own id stays the first activation's. */
export const replicaActorId = (actorId: string, k: number) => `${actorId.slice(0, 110)}-r${k}`;

/**
 * The nodes of `here` (one class, least loaded first) an op that keeps `devices` busy runs on at a
 * planned rate, each taking an equal share (callers spread asks over an op's activations). One node
 * where one has room left of PLANNED_BUSY of its slots: the one it is on (`kept`), else the first
 * (neighbours share a node while it holds them). Else, unless it is `stateful` (its state is in one
 * activation), as few nodes as hold an equal share each, roomiest first; else all of them.
 */
function nodesWithRoom(
  here: readonly NodeClass[],
  busy: ReadonlyMap<string, number>,
  kept: NodeClass | undefined,
  devices: number,
  stateful: boolean,
): NodeClass[] {
  const room = (n: NodeClass) => n.slots * PLANNED_BUSY - (busy.get(n.nodeId) ?? 0);
  if (kept && room(kept) >= devices) return [kept];
  const first = here.find((n) => room(n) >= devices);
  if (first) return [first];
  const roomiest = [...here].sort((a, b) => room(b) - room(a));
  if (stateful) return roomiest.slice(0, 1);
  for (let k = 2; k <= roomiest.length; k++)
    if (room(roomiest[k - 1]!) >= devices / k) return roomiest.slice(0, k);
  return roomiest;
}

/** Class ids of the live nodes, and the catalog with the cpu class's calibrated peaks where measured. */
function deviceClasses(nodes: NodeClass[]): { catalog: Catalog; classIds: string[]; notes: string[] } {
  const classIds = [...new Set(nodes.map((n) => n.classId))];
  const notes: string[] = [];
  const cal = nodes.find((n) => n.calibrated)?.calibrated;
  if (!cal) {
    if (classIds.includes('cpu'))
      notes.push('cpu class: catalog peaks (no calibration in the node record yet)');
    return { catalog: PAPER_CATALOG, classIds, notes };
  }
  notes.push(
    `cpu class: calibrated ${cal.gflops.toFixed(1)} GFLOP/s, ${cal.gbps.toFixed(1)} GB/s (measured)`,
  );
  const catalog = applyMeasuredPeaks(PAPER_CATALOG, { deviceId: 'cpu', gflops: cal.gflops, gbps: cal.gbps });
  return { catalog, classIds, notes };
}

/** Device classes from the live nodes, the demand rows × catalog problem, MILP (if fast) and heuristic. */
export function planDeployment(input: PlanInput): PlanOutcome {
  const { analysed, nodes } = input;
  if (nodes.length === 0) {
    throw new AgentsError(
      AgentsErrorCode.DeployNoNodes,
      'no live node hosts operator actors; start one with `stitch node --actors packages/agents/dist/actors.js`',
    );
  }
  const { catalog, classIds, notes } = deviceClasses(nodes);
  // Hints go to the planner as stitch plan and simulate give them: a kind ("gpu") pins the op to
  // that kind's live classes; one that names no live class is ignored there.
  const rows = analysed.rows;
  const live = classIds.map((id) => findDevice(catalog, id));
  if (
    rows.some((r) => typeof r.attrs.placement === 'string' && !placementHintApplies(r.attrs.placement, live))
  )
    notes.push('placement hints that name no live class or kind were left to the planner');
  // A node's operators share its slots, each busy only while it runs: at a planned rate each class
  // holds what its ops keep busy, up to PLANNED_BUSY of its live slots; without one, no counts.
  const rate = analysed.rateRps;
  const slots = rate ? Object.entries(slotsByClass(nodes)) : undefined;
  const counts = slots && Object.fromEntries(slots.map(([id, n]) => [id, n * PLANNED_BUSY]));
  if (slots)
    notes.push(
      `sized for ${rate} requests/s: each class at most ${PLANNED_BUSY * 100} % busy over its live slots (${slots
        .map(([id, n]) => `${id} ${n}`)
        .join(', ')})`,
    );
  const base = { catalog, classes: classIds, realClasses: ['cpu'], ...(counts ? { counts } : {}) };
  const raw = problemFromDemand(rows, base);
  const problem = input.correction
    ? problemFromDemand(rows, {
        ...base,
        correction: input.correction,
        correctionDeployment: input.deployment,
      })
    : raw;
  const options = { slaMs: analysed.slaMs, ...(rate ? { sharedRate: rate } : {}) };
  const { best, heuristicMs, milpMs, missedSla } = solvePlacement(problem, options, input.milp, analysed);
  if (missedSla)
    notes.push(
      `${MISSED_SLA}${analysed.slaMs} ms not met: no placement on the live nodes is faster than ${best.latencyMs.toFixed(1)} ms (sla_policy best_effort)`,
    );
  const usdPerHour = Object.fromEntries(
    problem.classes.map((c) => [c.id, deviceHourlyCost(findDevice(catalog, c.id)).totalUsdPerHour]),
  );
  const rawMs: PlanOutcome['rawMs'] = {};
  raw.tasks.forEach((t, i) => {
    rawMs[t.id] = Object.fromEntries(raw.classes.map((c, j) => [c.id, raw.timeMs[i]![j]!]));
  });
  const ops = placeOps(input, best);
  return {
    ops,
    solver: best.solver,
    solveMs: { milp: milpMs, heuristic: heuristicMs },
    latencyMs: best.latencyMs,
    usdPerRequest: best.usdPerRequest,
    usdPerHour,
    rawMs,
    notes,
  };
}

/**
 * The heuristic's placement, or the MILP's when it has a solver and finds one (5 s at most); how long
 * each took. When no placement meets the SLA and the graph's policy is best effort, the cheapest of
 * the fastest ones, with `missedSla`. Throws DeployInfeasible, saying what the rate asked of the
 * nodes, when nothing places.
 */
function solvePlacement(
  problem: ReturnType<typeof problemFromDemand>,
  options: Parameters<typeof planHeuristic>[1],
  milp: MilpSolver | null | undefined,
  analysed: Analysed,
): { best: PlanFeasible; heuristicMs: number; milpMs: number | null; missedSla: boolean } {
  let solved = solveWithin(problem, options, milp);
  let missedSla = false;
  const first = solved.result;
  if (
    first.status === 'infeasible' &&
    analysed.slaPolicy === 'best_effort' &&
    first.bestLatencyMs !== undefined
  ) {
    // A hair above the fastest latency found (for rounding): the cheapest of the placements that
    // miss the SLA by the least.
    const again = solveWithin(problem, { ...options, slaMs: first.bestLatencyMs * (1 + 1e-9) + 1e-6 }, milp);
    solved = {
      result: again.result,
      heuristicMs: solved.heuristicMs + again.heuristicMs,
      milpMs: solved.milpMs === null ? null : solved.milpMs + (again.milpMs ?? 0),
    };
    missedSla = true;
  }
  const { result, heuristicMs, milpMs } = solved;
  if (result.status === 'infeasible') {
    const rate = analysed.rateRps;
    const sized = rate ? ` (planned for rate_rps ${rate}: start nodes with more slots, or lower it)` : '';
    throw new AgentsError(
      AgentsErrorCode.DeployInfeasible,
      `cannot place "${analysed.name}": ${first.status === 'infeasible' ? first.message : result.message}${sized}`,
    );
  }
  return { best: result, heuristicMs, milpMs, missedSla };
}

/** The MILP's time limit in one round of solvePlacement. */
export const MILP_TIME_LIMIT_MS = 5000;

/** One round of solvePlacement: the MILP's placement where it finds one, else the heuristic's result. */
function solveWithin(
  problem: ReturnType<typeof problemFromDemand>,
  options: Parameters<typeof planHeuristic>[1],
  milp: MilpSolver | null | undefined,
): { result: PlanResult; heuristicMs: number; milpMs: number | null } {
  const t0 = performance.now();
  const heuristic = planHeuristic(problem, options);
  const heuristicMs = performance.now() - t0;
  if (!milp) return { result: heuristic, heuristicMs, milpMs: null };
  const t1 = performance.now();
  const exact = planExact(milp, problem, { ...options, timeLimitS: MILP_TIME_LIMIT_MS / 1000 });
  const milpMs = performance.now() - t1;
  return { result: exact.status === 'infeasible' ? heuristic : exact, heuristicMs, milpMs };
}

/**
 * Each op on a live node of the class `best` gives it: the node it runs on now when it may stay, else
 * the least loaded; at a planned rate, as many nodes as its busy share needs (see nodesWithRoom).
 * Nodes that shed load are left out of the choice while their class has another node.
 */
function placeOps(input: PlanInput, best: PlanFeasible): PlacedOp[] {
  const rate = input.analysed.rateRps;
  // At a planned rate, what each node's ops keep busy so far (see nodesWithRoom).
  const busy = new Map<string, number>();
  return input.analysed.rows.map((r, i): PlacedOp => {
    const p = best.placements[i]!;
    const ofClass = input.nodes.filter((n) => n.classId === p.classId).sort((a, b) => a.load - b.load);
    const kept = ofClass.find((n) => n.nodeId === input.current?.[r.id]);
    const calm = ofClass.filter((n) => !n.shedding);
    const here = calm.length > 0 ? calm : ofClass;
    // The ranks of a split and the partitions of a search go to different nodes of their class where
    // there are several: spreading them is what the split is for.
    const spread = r.attrs.shard ?? r.attrs.partition;
    const shard = typeof spread === 'number' ? spread : undefined;
    const actorType = ACTOR_OF_OP[r.op] ?? operatorType(r.kind);
    const actorId = actorIdOf(input.deployment, r.id);
    const [node, ...more] =
      rate && shard === undefined
        ? nodesWithRoom(here, busy, kept, p.devices, r.attrs.pinned === true || STATEFUL.has(actorType))
        : [kept ?? here[(shard ?? 0) % here.length]!];
    if (rate)
      for (const n of [node!, ...more])
        busy.set(n.nodeId, (busy.get(n.nodeId) ?? 0) + p.devices / (1 + more.length));
    return {
      id: r.id,
      op: r.op,
      kind: r.kind,
      deps: [...r.deps],
      ...(r.deps.length > 0 ? { edgeBytes: { ...r.edgeBytes } } : {}),
      attrs: { ...r.attrs },
      actorType,
      actorId,
      classId: p.classId,
      modelled: node!.modelled,
      node: node!.nodeId,
      estimatedMs: p.timeMs,
      usdPerRequest: p.cost,
      ...(more.length > 0
        ? { replicas: more.map((n, k) => ({ actorId: replicaActorId(actorId, k + 1), node: n.nodeId })) }
        : {}),
    };
  });
}

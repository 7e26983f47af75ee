import { PlanError, PlanErrorCode } from './errors.js';

/** A device class as the optimiser sees it. */
export interface ClassSpec {
  id: string;
  /** $ per hour of one device of this class. */
  usdPerHour: number;
  /** Devices of this class available; omitted = unlimited. */
  count?: number;
  /** Per-device network bandwidth used for edge transfers that leave this class, GB/s. */
  linkGBps: number;
  /** $ per GB sent from this class to another (network egress). @default 0 */
  egressUsdPerGB?: number;
  /** True for modelled devices (`virtual:<id>` in the runtime); shown as "modelled". */
  modelled?: boolean;
}

export interface TaskSpec {
  id: string;
  op?: string;
  deps: string[];
}

export interface EdgeSpec {
  from: string;
  to: string;
  /** Bytes that cross the edge per request. */
  bytes: number;
  /** Fixed transfer time when the endpoints are on different classes; overrides bytes / link. */
  transferMs?: number;
  /**
   * Fixed $ per request when the endpoints are on different classes; replaces the modelled price
   * (egress plus link time on both ends).
   */
  usdPerTransfer?: number;
}

/**
 * The normalised placement problem: per task × class, time and devices; per edge, bytes. Both the
 * derived path (demand rows × catalog) and the profiled path (JSON tables) produce one of these.
 */
export interface PlacementProblem {
  tasks: TaskSpec[];
  classes: ClassSpec[];
  /** [task][class] milliseconds for one execution; Infinity = cannot run there. */
  timeMs: number[][];
  /** [task][class] devices one replica needs (tensor-parallel × pipeline). */
  devices: number[][];
  /** [task][class] explicit $ per request (profiled `cost_ij`); when absent, cost follows from time × $/h. */
  usdPerRequest?: number[][];
  edges: EdgeSpec[];
}

/** An edge as the indexes of its ends; its per-class rows are the compiled problem's tau, send and recv. */
export interface CompiledEdge {
  u: number;
  v: number;
}

/** Indexes and per-(task, class) coefficients every solver shares. */
export interface Compiled {
  p: PlacementProblem;
  n: number;
  m: number;
  /** The tasks in a topological order. */
  order: number[];
  /** Each task's position in `order`. */
  rank: Int32Array;
  edges: CompiledEdge[];
  predEdges: number[][];
  succEdges: number[][];
  /** The same graph in typed arrays, for the hot loops (see FlatGraph). */
  flat: FlatGraph;
  /**
   * τ of edge e on class k at e·m + k: the transfer time (ms) when the edge leaves class k. One
   * array for every edge: the schedule's passes read it in their innermost loops, and it reads only
   * the edges and the classes' links, so a re-plan with the same classes shares it.
   */
  tau: Float64Array;
  /**
   * The objective units a crossing of edge e costs on each side, per class: `send[e][k]` when u
   * sits on k, `recv[e][k]` when v does (zero when both ends share a class). A row per edge: they
   * read the ends' rows, and a re-plan after a few ops changed shares the rest.
   */
  send: Float64Array[];
  recv: Float64Array[];
  /** Objective coefficient [i][j]: $/h at the target rate, or $ per request when rate is 0. */
  coef: Float64Array[];
  /** Devices [i][j] the task's replicas hold at the target rate. */
  units: Float64Array[];
  /** Capacity per class (Infinity when unlimited). */
  cap: Float64Array;
  /** $ per ms of transfer (the paper's γ). */
  gamma: number;
  /** Whether any crossing costs something (γ > 0 or a priced edge): moves must then count edges. */
  priced: boolean;
  rate: number;
  /** PlanOptions.sharedRate: units are the device time a task's requests use. */
  sharedRate: number;
}

/**
 * The edges' ends, and each task's incoming and outgoing edges, in typed arrays: a forward pass over
 * them runs several times faster than over the edge objects and per-task lists (one load per value
 * instead of a chain of them), and an incremental re-plan runs dozens of passes.
 */
export interface FlatGraph {
  /** Edge e runs from task u[e] to task v[e]. */
  u: Int32Array;
  v: Int32Array;
  /** Task i's incoming edges are pred[predStart[i]] … pred[predStart[i + 1] − 1], as in predEdges. */
  predStart: Int32Array;
  pred: Int32Array;
  /** Task i's outgoing edges, likewise, as in succEdges. */
  succStart: Int32Array;
  succ: Int32Array;
}

/** Task lists of a graph as one array and the start of each task's part. */
function packed(lists: readonly number[][]): { start: Int32Array; items: Int32Array } {
  const start = new Int32Array(lists.length + 1);
  for (let i = 0; i < lists.length; i++) start[i + 1] = start[i]! + lists[i]!.length;
  const items = new Int32Array(start[lists.length]!);
  for (let i = 0; i < lists.length; i++) items.set(lists[i]!, start[i]!);
  return { start, items };
}

function flatGraph(
  edges: readonly CompiledEdge[],
  predEdges: readonly number[][],
  succEdges: readonly number[][],
): FlatGraph {
  const pred = packed(predEdges);
  const succ = packed(succEdges);
  return {
    u: Int32Array.from(edges, (e) => e.u),
    v: Int32Array.from(edges, (e) => e.v),
    predStart: pred.start,
    pred: pred.items,
    succStart: succ.start,
    succ: succ.items,
  };
}

/** Transfer time of an edge placed u on class a, v on class b: zero when colocated, else the slower side. */
export function transferMs(c: Compiled, e: number, a: number, b: number): number {
  if (a === b) return 0;
  const at = e * c.m;
  return Math.max(c.tau[at + a]!, c.tau[at + b]!);
}

/**
 * Objective units of edge e crossing from class a to class b (a ≠ b), or 0 when colocated: γ per
 * ms of transfer plus the sender's and receiver's price.
 */
export function transferCost(c: Compiled, e: number, a: number, b: number): number {
  if (a === b) return 0;
  const priced = c.send[e]![a]! + c.recv[e]![b]!;
  if (!(c.gamma > 0)) return priced;
  const at = e * c.m;
  return priced + c.gamma * Math.max(c.tau[at + a]!, c.tau[at + b]!);
}

/**
 * What edge e's price saves when both its ends sit on class b (a neighbour there is joined): both
 * sides and γ at b's link, against the task's own row, which counts the edge as crossing.
 */
export function joinSaves(c: Compiled, e: number, b: number): number {
  return c.send[e]![b]! + c.recv[e]![b]! + c.gamma * c.tau[e * c.m + b]!;
}

/** Per-class terms of the edge prices; see edgePrices. */
export interface ClassTerms {
  /** $ per ms of one device. */
  usdPerMs: Float64Array;
  /** $ per GB sent. */
  egress: Float64Array;
  /** Bytes per second of one device's link. */
  link: Float64Array;
  /** Price multiplier: 1 per request, rate × 3600 at a target rate ($/h). */
  perRate: number;
}

export function classTerms(p: PlacementProblem, rate: number): ClassTerms {
  return {
    usdPerMs: Float64Array.from(p.classes, (c) => c.usdPerHour / 3.6e6),
    egress: Float64Array.from(p.classes, (c) => c.egressUsdPerGB ?? 0),
    link: Float64Array.from(p.classes, (c) => c.linkGBps * 1e9),
    perRate: rate > 0 ? rate * 3600 : 1,
  };
}

/** Edge rows (see Compiled) of `count` edges over m classes. */
export interface EdgeRows {
  tau: Float64Array;
  send: Float64Array[];
  recv: Float64Array[];
}

export function edgeRows(count: number, m: number): EdgeRows {
  return { tau: new Float64Array(count * m), send: rowViews(count, m), recv: rowViews(count, m) };
}

/**
 * Edge `spec` from task u to task v, written as edge e of `rows`. τ_j is the time the bytes take on
 * class j's link, or the profile's fixed `transfer_ms`; for the prices see edgePrices.
 */
export function compileEdge(
  p: PlacementProblem,
  spec: EdgeSpec,
  u: number,
  v: number,
  terms: ClassTerms,
  rows: EdgeRows,
  e: number,
): void {
  const m = p.classes.length;
  const at = e * m;
  const { tau } = rows;
  if (spec.transferMs !== undefined) tau.fill(spec.transferMs, at, at + m);
  else for (let j = 0; j < m; j++) tau[at + j] = (spec.bytes / terms.link[j]!) * 1e3;
  edgePrices(p, spec, u, v, terms, rows, e);
}

/**
 * The prices of edge e of `rows`, from its τ there: $ per request of one crossing, split by side.
 * A profile's fixed price goes to the sender; else the sender pays egress per GB, and each end pays
 * its devices' $/h for the time its own link needs to move the bytes (a replica's devices are held
 * while they send or receive). At a target rate they are $/h of crossings, like coef.
 */
export function edgePrices(
  p: PlacementProblem,
  spec: EdgeSpec,
  u: number,
  v: number,
  terms: ClassTerms,
  rows: EdgeRows,
  e: number,
): void {
  const m = p.classes.length;
  const at = e * m;
  const tau = rows.tau;
  const send = rows.send[e]!;
  const recv = rows.recv[e]!;
  const { usdPerMs, egress, perRate } = terms;
  if (spec.usdPerTransfer !== undefined) {
    send.fill(spec.usdPerTransfer * perRate);
    recv.fill(0);
    return;
  }
  const tu = p.timeMs[u]!;
  const tv = p.timeMs[v]!;
  const du = p.devices[u]!;
  const dv = p.devices[v]!;
  const gb = spec.bytes / 1e9;
  // Plain loop: this runs for every edge × class on every compile.
  for (let j = 0; j < m; j++) {
    const held = tau[at + j]! * usdPerMs[j]!;
    send[j] = (gb * egress[j]! + (tu[j]! < Infinity ? held * du[j]! : 0)) * perRate;
    recv[j] = (tv[j]! < Infinity ? held * dv[j]! : 0) * perRate;
  }
}

/**
 * Task i's objective coefficient and devices (replicas × devices per replica) per class, written
 * into `coef` and `units`: $/h of its replicas at the target rate, or $ per request when rate is 0
 * (profiled cost_ij when given); Infinity where it cannot run. With a shared rate, units are the
 * devices its requests keep busy at that rate (a fraction of one for a short op).
 */
export function compileTask(
  p: PlacementProblem,
  i: number,
  rate: number,
  coef: Float64Array,
  units: Float64Array,
  sharedRate = 0,
): void {
  const m = p.classes.length;
  const time = p.timeMs[i]!;
  const devs = p.devices[i]!;
  const explicitRow = p.usdPerRequest?.[i];
  for (let j = 0; j < m; j++) {
    const t = time[j]!;
    const dev = devs[j]!;
    const finite = Number.isFinite(t);
    // The epsilon keeps 100 req/s × 20 ms at 2 replicas despite floating-point noise.
    const replicas = rate > 0 && finite ? Math.max(1, Math.ceil((rate * t) / 1e3 - 1e-9)) : 1;
    units[j] = sharedRate > 0 && finite ? ((sharedRate * t) / 1e3) * dev : replicas * dev;
    const explicit = explicitRow?.[j];
    let c: number;
    if (explicit !== undefined) c = rate > 0 ? explicit * rate * 3600 : explicit;
    else
      c = rate > 0 ? replicas * dev * p.classes[j]!.usdPerHour : (t / 3.6e6) * dev * p.classes[j]!.usdPerHour;
    coef[j] = finite ? c : Infinity;
  }
}

/**
 * `count` rows of m numbers, views of one buffer: off the JavaScript heap, so the young-generation
 * collector does not copy them while a plan is being made (an incremental re-plan makes thousands).
 */
export function rowViews(count: number, m: number): Float64Array[] {
  const buffer = new Float64Array(count * m);
  const rows: Float64Array[] = new Array(count);
  for (let h = 0; h < count; h++) rows[h] = buffer.subarray(h * m, (h + 1) * m);
  return rows;
}

/** Whether any crossing costs something: γ > 0 or a priced edge. */
export function anyPriced(rows: EdgeRows, gamma: number): boolean {
  if (gamma > 0) return true;
  for (let e = 0; e < rows.send.length; e++) {
    const send = rows.send[e]!;
    const recv = rows.recv[e]!;
    for (let j = 0; j < send.length; j++) if (send[j]! > 0 || recv[j]! > 0) return true;
  }
  return false;
}

/**
 * Device count per class (Infinity when unlimited). A typed array whether or not the counts are
 * whole or some unlimited, so the code reading it sees one kind of array on every problem.
 */
export function capacities(p: PlacementProblem): Float64Array {
  return Float64Array.from(p.classes, (c) => c.count ?? Infinity);
}

export function compile(p: PlacementProblem, rate = 0, gamma = 0, sharedRate = 0): Compiled {
  const n = p.tasks.length;
  const m = p.classes.length;
  if (n === 0) throw new PlanError(PlanErrorCode.Input, 'the problem has no tasks; give at least one');
  if (m === 0)
    throw new PlanError(PlanErrorCode.Input, 'the problem has no device classes; give at least one');
  if (!(rate >= 0))
    throw new PlanError(PlanErrorCode.Input, `options.rate must be >= 0 requests/s, got ${rate}`);
  const index = new Map(p.tasks.map((t, i) => [t.id, i]));
  if (index.size !== n) throw new PlanError(PlanErrorCode.Input, 'task ids must be unique');
  // Plain indexed loops: at 1000 tasks × 50 classes this runs on every full re-plan.
  const terms = classTerms(p, rate);
  const rows = edgeRows(p.edges.length, m);
  const edges = p.edges.map((e, k) => {
    const u = index.get(e.from);
    const v = index.get(e.to);
    if (u === undefined || v === undefined) {
      throw new PlanError(PlanErrorCode.Input, `edge ${e.from} → ${e.to} names an unknown task`);
    }
    compileEdge(p, e, u, v, terms, rows, k);
    return { u, v };
  });
  const predEdges: number[][] = p.tasks.map(() => []);
  const succEdges: number[][] = p.tasks.map(() => []);
  edges.forEach((e, k) => {
    predEdges[e.v]!.push(k);
    succEdges[e.u]!.push(k);
  });
  const order = topoOrder(n, edges, p.tasks);
  const coef = rowViews(n, m);
  const units = rowViews(n, m);
  for (let i = 0; i < n; i++) compileTask(p, i, rate, coef[i]!, units[i]!, sharedRate);
  const cap = capacities(p);
  const priced = anyPriced(rows, gamma);
  const rank = new Int32Array(n);
  order.forEach((i, h) => {
    rank[i] = h;
  });
  return {
    p,
    n,
    m,
    order,
    rank,
    edges,
    predEdges,
    succEdges,
    flat: flatGraph(edges, predEdges, succEdges),
    tau: rows.tau,
    send: rows.send,
    recv: rows.recv,
    coef,
    units,
    cap,
    gamma,
    priced,
    rate,
    sharedRate,
  };
}

function topoOrder(n: number, edges: { u: number; v: number }[], tasks: TaskSpec[]): number[] {
  const indeg = new Array<number>(n).fill(0);
  const out: number[][] = tasks.map(() => []);
  for (const e of edges) {
    indeg[e.v]!++;
    out[e.u]!.push(e.v);
  }
  const queue: number[] = [];
  indeg.forEach((d, i) => {
    if (d === 0) queue.push(i);
  });
  for (let h = 0; h < queue.length; h++) {
    for (const v of out[queue[h]!]!) if (--indeg[v]! === 0) queue.push(v);
  }
  if (queue.length !== n) {
    const stuck = tasks.filter((_, i) => indeg[i]! > 0).map((t) => t.id);
    throw new PlanError(
      PlanErrorCode.Input,
      `the graph has a cycle through ${stuck.slice(0, 5).join(', ')}; unroll it first`,
    );
  }
  return queue;
}

import { crossingDelta } from './cluster.js';
import { type Compiled, joinSaves, transferCost, transferMs } from './problem.js';
import { LiveSchedule, latestStarts, startOf, usage } from './schedule.js';
import type { MoveTables } from './tables.js';

// Local search moves shared by the heuristic and the incremental re-plan: single tasks and
// colocated pairs moved to cheaper classes within the SLA.

const EPS = 1e-9;

/** Δ objective of moving task i to class k, including the price of its incident edges. */
export function deltaCost(c: Compiled, assign: Int32Array, i: number, k: number): number {
  let d = c.coef[i]![k]! - c.coef[i]![assign[i]!]!;
  if (c.priced) {
    for (const e of c.predEdges[i]!) {
      const u = assign[c.edges[e]!.u]!;
      d += transferCost(c, e, u, k) - transferCost(c, e, u, assign[i]!);
    }
    for (const e of c.succEdges[i]!) {
      const w = assign[c.edges[e]!.v]!;
      d += transferCost(c, e, k, w) - transferCost(c, e, assign[i]!, w);
    }
  }
  return d;
}

/**
 * What moving a group of tasks (a single task or a colocated pair, marked in `mark`) costs against
 * its own rows (see MoveTables), from one pass over the edges leaving it. `offset`: Σ over those
 * edges of the outside end's side of the price less what the edge costs now — with the group's own
 * rows, the exact cost of a class no outside neighbour sits on (a lower bound with γ). For each
 * class an outside neighbour sits on (stamped), `saving`: what joining it saves against that, both
 * sides of each such edge's price and the group end's γ term, so own rows + offset − saving is
 * exact there too without γ, and a lower bound with it.
 */
class Neighbourhood {
  mark: Uint8Array;
  stamp: Int32Array;
  saving: Float64Array;
  tick = 0;
  offset = 0;
  group: number[] = [];
  /** The stamped classes, the first `metCount` of `met`, in the order first met. */
  readonly met: Int32Array;
  metCount = 0;
  constructor(c: Compiled) {
    this.met = new Int32Array(c.m);
    this.mark = new Uint8Array(c.n);
    this.stamp = new Int32Array(c.m);
    this.saving = new Float64Array(c.m);
  }

  /** Prices the edges leaving `group`, whose tasks must be marked. */
  measure(c: Compiled, assign: Int32Array): void {
    const mark = this.mark;
    const { u, v, predStart, pred, succStart, succ } = c.flat;
    const { send, recv } = c;
    this.tick++;
    this.offset = 0;
    this.metCount = 0;
    for (const i of this.group) {
      const a = assign[i]!;
      for (let q = predStart[i]!; q < predStart[i + 1]!; q++) {
        const e = pred[q]!;
        if (mark[u[e]!]) continue;
        const b = assign[u[e]!]!;
        this.note(c, e, b, send[e]![b]! - transferCost(c, e, b, a));
      }
      for (let q = succStart[i]!; q < succStart[i + 1]!; q++) {
        const e = succ[q]!;
        if (mark[v[e]!]) continue;
        const b = assign[v[e]!]!;
        this.note(c, e, b, recv[e]![b]! - transferCost(c, e, a, b));
      }
    }
  }

  /** Edge e leaving the group to a neighbour on class b; `extra`: its outside side less its cost now. */
  private note(c: Compiled, e: number, b: number, extra: number): void {
    this.offset += extra;
    const save = joinSaves(c, e, b);
    if (this.stamp[b] === this.tick) this.saving[b]! += save;
    else {
      this.stamp[b] = this.tick;
      this.saving[b] = save;
      this.met[this.metCount++] = b;
    }
  }

  /** Sorts the stamped classes (the first metCount of met) into index order: a few, one per outside neighbour at most. */
  sortMet(): void {
    const met = this.met;
    for (let h = 1; h < this.metCount; h++) {
      const k = met[h]!;
      let g = h;
      for (; g > 0 && met[g - 1]! > k; g--) met[g] = met[g - 1]!;
      met[g] = k;
    }
  }

  /** What joining class k's outside neighbours saves (0 where none sits). */
  savingOn(k: number): number {
    return this.stamp[k] === this.tick ? this.saving[k]! : 0;
  }
}

/**
 * Moves single tasks to the class that lowers the cost most while every path through them still
 * meets the SLA. One sweep visits tasks in topological order: predecessors' finish times are
 * current (already swept) and successors' latest starts are exact (nothing downstream has moved
 * yet), so a move is safe iff ef(pred) + transfer + t_new + transfer ≤ ls(succ) on all incident
 * edges. With `only`, just the marked tasks may move (an incremental re-plan).
 */
export function descend(
  c: Compiled,
  assign: Int32Array,
  slaMs: number,
  tables: MoveTables,
  only?: Uint8Array,
): void {
  const used = usage(c, assign);
  const around = new Neighbourhood(c);
  // After the first sweep, only tasks next to a move (or moved) are visited again: elsewhere the
  // prices are unchanged and windows rarely widen.
  let visit = only ? Uint8Array.from(only) : new Uint8Array(c.n).fill(1);
  // Kept across sweeps: a sweep changes no finish before its first visited task (every task that
  // moved in the last sweep is visited again), nor a latest start after its last move.
  const ef = new Float64Array(c.n);
  const ls = new Float64Array(c.n);
  let first = 0;
  let lastMove = c.n - 1;
  for (let round = 0; round < 8; round++) {
    latestStarts(c, assign, slaMs, ls, lastMove);
    const next = new Uint8Array(c.n);
    let nextFirst = c.n;
    lastMove = -1;
    for (let h = first; h < c.n; h++) {
      const i = c.order[h]!;
      if (visit[i]) {
        const k = bestSingleMove(c, assign, used, ef, ls, slaMs, tables, i, around);
        if (k >= 0) {
          used[assign[i]!]! -= c.units[i]![assign[i]!]!;
          used[k]! += c.units[i]![k]!;
          assign[i] = k;
          lastMove = h;
          nextFirst = Math.min(nextFirst, markAround(c, i, next, only));
        }
      }
      ef[i] = startOf(c, assign, ef, i, assign[i]!) + c.p.timeMs[i]![assign[i]!]!;
    }
    if (lastMove < 0) return;
    visit = next;
    first = nextFirst;
  }
}

/**
 * Marks task i and its neighbours in `out` (those in `only`, when given); returns the earliest
 * position in the topological order it marked (c.n if none).
 */
function markAround(c: Compiled, i: number, out: Uint8Array, only?: Uint8Array): number {
  let first = c.n;
  const mark = (x: number) => {
    if (only && !only[x]) return;
    out[x] = 1;
    first = Math.min(first, c.rank[x]!);
  };
  mark(i);
  for (const e of c.predEdges[i]!) mark(c.edges[e]!.u);
  for (const e of c.succEdges[i]!) mark(c.edges[e]!.v);
  return first;
}

/**
 * The class task i gains most by moving to within its window and the counts, or -1: each class
 * priced by its own row and its neighbourhood (see Neighbourhood), exact without γ, else a lower
 * bound checked before the exact price.
 */
function bestSingleMove(
  c: Compiled,
  assign: Int32Array,
  used: Float64Array,
  ef: Float64Array,
  ls: Float64Array,
  slaMs: number,
  tables: MoveTables,
  i: number,
  around: Neighbourhood,
): number {
  const a = assign[i]!;
  const coefA = c.coef[i]![a]!;
  const units = c.units[i]!;
  let best = -1;
  let bestDelta = -EPS * Math.abs(coefA);
  if (c.priced) {
    around.group[0] = i;
    around.group.length = 1;
    around.mark[i] = 1;
    around.measure(c, assign);
    around.mark[i] = 0;
  }
  const offset = c.priced ? around.offset : 0;
  const own = tables.own[i]!;
  const prefs = tables.prefs[i]!;
  const exact = c.gamma === 0;
  const time = c.p.timeMs[i]!;
  const room = windowBound(c, ef, ls, i, slaMs);
  // A class no neighbour sits on costs at least the task's least own row: when even that gains
  // nothing, only the classes a neighbour sits on are priced (most tasks, once the plan is good).
  // Either way classes are tried in index order, so the same class wins.
  const anyClass = tables.least[i]! - coefA + offset < bestDelta;
  if (!anyClass && c.priced) around.sortMet();
  const classes = anyClass ? prefs : around.met;
  const count = anyClass ? prefs.length : c.priced ? around.metCount : 0;
  for (let h = 0; h < count; h++) {
    const k = classes[h]!;
    let bound = own[k]! - coefA + offset;
    if (c.priced) bound -= around.savingOn(k);
    if (!(bound < bestDelta) || k === a) continue;
    if (time[k]! > room || used[k]! + units[k]! > c.cap[k]!) continue;
    const d = exact ? bound : deltaCost(c, assign, i, k);
    if (d < bestDelta && fitsWindow(c, assign, ef, ls, i, k, slaMs)) {
      best = k;
      bestDelta = d;
    }
  }
  return best;
}

/**
 * Moves both ends of a colocated edge to a cheaper common class: transfers make single moves out
 * of a colocated cluster look infeasible even when moving the pair is fine. Classes the pair's
 * neighbours sit on are priced exactly, the others by the pair's own rows (see MoveTables). The
 * window check uses the current schedule (exact unless another path joins the pair), so every
 * accepted move is verified with a full forward pass and reverted if it breaks the SLA. With
 * `only`, just edges with a marked end are tried.
 */
export function pairDescend(
  c: Compiled,
  assign: Int32Array,
  slaMs: number,
  tables: MoveTables,
  only?: Uint8Array,
): boolean {
  const used = usage(c, assign);
  const live = new LiveSchedule(c, assign, slaMs);
  let improved = false;
  const around = new Neighbourhood(c);
  const { mark, group } = around;
  const exact = c.gamma === 0;
  for (let e = 0; e < c.edges.length; e++) {
    const edge = c.edges[e]!;
    const { u, v } = edge;
    const a = assign[u]!;
    if (assign[v] !== a || (only && !only[u] && !only[v])) continue;
    const coefU = c.coef[u]!;
    const coefV = c.coef[v]!;
    const ownU = tables.own[u]!;
    const ownV = tables.own[v]!;
    const coefA = coefU[a]! + coefV[a]!;
    let best = -1;
    let bestDelta = -EPS * (Math.abs(coefU[a]!) + Math.abs(coefV[a]!));
    group[0] = u;
    group[1] = v;
    group.length = 2;
    if (c.priced) {
      mark[u] = 1;
      mark[v] = 1;
      around.measure(c, assign);
    }
    const offset = c.priced ? around.offset : 0;
    const at = e * c.m;
    const sendE = c.send[e]!;
    const recvE = c.recv[e]!;
    for (let k = 0; k < c.m; k++) {
      if (k === a) continue;
      // The pair's own edge stays colocated: its two sides come out of the own rows.
      let delta = ownU[k]! + ownV[k]! - coefA + offset;
      if (c.priced) delta -= sendE[k]! + recvE[k]! + 2 * c.gamma * c.tau[at + k]! + around.savingOn(k);
      if (!(delta < bestDelta)) continue;
      if (!exact) {
        delta = coefU[k]! + coefV[k]! - coefA + crossingDelta(c, assign, group, mark, k);
        if (!(delta < bestDelta)) continue;
      }
      if (used[k]! + c.units[u]![k]! + c.units[v]![k]! > c.cap[k]!) continue;
      if (!pairFits(c, assign, live.ef, live.ls, e, k, slaMs)) continue;
      best = k;
      bestDelta = delta;
    }
    mark[u] = 0;
    mark[v] = 0;
    if (best < 0) continue;
    assign[u] = best;
    assign[v] = best;
    if (live.update(group) > slaMs + EPS) {
      assign[u] = a;
      assign[v] = a;
      live.update(group);
      continue;
    }
    used[a]! -= c.units[u]![a]! + c.units[v]![a]!;
    used[best]! += c.units[u]![best]! + c.units[v]![best]!;
    improved = true;
  }
  return improved;
}

function pairFits(
  c: Compiled,
  assign: Int32Array,
  ef: Float64Array,
  ls: Float64Array,
  e: number,
  k: number,
  slaMs: number,
): boolean {
  const { u, v } = c.edges[e]!;
  const endU = startOf(c, assign, ef, u, k) + c.p.timeMs[u]![k]!;
  let startV = 0;
  for (const pe of c.predEdges[v]!) {
    const p = c.edges[pe]!.u;
    const arrive = p === u ? endU : ef[p]! + transferMs(c, pe, assign[p]!, k);
    if (arrive > startV) startV = arrive;
  }
  const endV = startV + c.p.timeMs[v]![k]!;
  if (endU > slaMs + EPS || endV > slaMs + EPS) return false;
  for (const [x, end] of [
    [u, endU],
    [v, endV],
  ] as const) {
    for (const se of c.succEdges[x]!) {
      const w = c.edges[se]!.v;
      if (w === v) continue;
      if (end + transferMs(c, se, k, assign[w]!) > ls[w]! + EPS) return false;
    }
  }
  return true;
}

/**
 * The longest task i could take on any class: from its predecessors' latest finish to its
 * successors' earliest latest start (or the SLA), transfers left out. A cheap test before fitsWindow.
 */
function windowBound(c: Compiled, ef: Float64Array, ls: Float64Array, i: number, slaMs: number): number {
  let from = 0;
  for (const e of c.predEdges[i]!) {
    const f = ef[c.edges[e]!.u]!;
    if (f > from) from = f;
  }
  let to = slaMs;
  for (const e of c.succEdges[i]!) {
    const l = ls[c.edges[e]!.v]!;
    if (l < to) to = l;
  }
  return to - from + EPS;
}

/** Whether task i on class k still meets every successor's latest start and the SLA. */
export function fitsWindow(
  c: Compiled,
  assign: Int32Array,
  ef: Float64Array,
  ls: Float64Array,
  i: number,
  k: number,
  slaMs: number,
): boolean {
  const end = startOf(c, assign, ef, i, k) + c.p.timeMs[i]![k]!;
  if (end > slaMs + EPS) return false;
  for (const e of c.succEdges[i]!) {
    const w = c.edges[e]!.v;
    if (end + transferMs(c, e, k, assign[w]!) > ls[w]! + EPS) return false;
  }
  return true;
}

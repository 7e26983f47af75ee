import { clusterDescend, crossingDelta } from './cluster.js';
import {
  cheapestOrder,
  constructTopo,
  flowSearch,
  initial,
  leastChoiceFirst,
  weightSearch,
} from './construct.js';
import { type Compiled, transferCost, transferMs } from './problem.js';
import { forward, latestStarts, type Schedule, startOf, totalCost, usage } from './schedule.js';

export interface HeuristicOutcome {
  /** Best assignment found that meets the SLA, or null. */
  assign: Int32Array | null;
  /** Lowest latency any assignment the heuristic visited reached. */
  bestLatencyMs: number;
  /** Why no assignment was found: a task no class with room can run, or the SLA. */
  failure?: 'capacity' | 'sla';
}

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

/** What task i's incident edges cost now: the most moving i alone can save on crossings. */
function incidentCost(c: Compiled, assign: Int32Array, i: number): number {
  let sum = 0;
  for (const e of c.predEdges[i]!) sum += transferCost(c, e, assign[c.edges[e]!.u]!, assign[i]!);
  for (const e of c.succEdges[i]!) sum += transferCost(c, e, assign[i]!, assign[c.edges[e]!.v]!);
  return sum;
}

function hasNeighbourOn(c: Compiled, assign: Int32Array, i: number, k: number): boolean {
  for (const e of c.predEdges[i]!) if (assign[c.edges[e]!.u] === k) return true;
  for (const e of c.succEdges[i]!) if (assign[c.edges[e]!.v] === k) return true;
  return false;
}

/** Path-local latency gain of moving critical task i to class k (its time and its tight edges). */
function criticalGain(
  c: Compiled,
  assign: Int32Array,
  s: Schedule,
  ls: Float64Array,
  i: number,
  k: number,
): number {
  const a = assign[i]!;
  let gainIn = Infinity;
  for (const e of c.predEdges[i]!) {
    const u = c.edges[e]!.u;
    const au = assign[u]!;
    if (ls[u]! - s.es[u]! > EPS || s.ef[u]! + transferMs(c, e, au, a) < s.es[i]! - EPS) continue;
    gainIn = Math.min(gainIn, transferMs(c, e, au, a) - transferMs(c, e, au, k));
  }
  let gainOut = Infinity;
  for (const e of c.succEdges[i]!) {
    const w = c.edges[e]!.v;
    const aw = assign[w]!;
    if (ls[w]! - s.es[w]! > EPS || s.ef[i]! + transferMs(c, e, a, aw) < s.es[w]! - EPS) continue;
    gainOut = Math.min(gainOut, transferMs(c, e, a, aw) - transferMs(c, e, k, aw));
  }
  const dt = c.p.timeMs[i]![a]! - c.p.timeMs[i]![k]!;
  return dt + (Number.isFinite(gainIn) ? gainIn : 0) + (Number.isFinite(gainOut) ? gainOut : 0);
}

/**
 * Upgrades critical-path tasks by best Δcost/Δlatency until the SLA holds or nothing helps. Marks
 * each task it moves in `moved` when given.
 */
export function repair(
  c: Compiled,
  assign: Int32Array,
  slaMs: number,
  maxIter: number,
  moved?: Uint8Array,
): number {
  const used = usage(c, assign);
  let s = forward(c, assign);
  for (let iter = 0; iter < maxIter && s.latencyMs > slaMs + EPS; iter++) {
    const ls = latestStarts(c, assign, s.latencyMs);
    let best: { i: number; k: number; ratio: number } | null = null;
    for (let i = 0; i < c.n; i++) {
      if (ls[i]! - s.es[i]! > EPS) continue;
      for (let k = 0; k < c.m; k++) {
        if (k === assign[i] || !Number.isFinite(c.coef[i]![k]!)) continue;
        if (used[k]! + c.units[i]![k]! > c.cap[k]!) continue;
        const gain = criticalGain(c, assign, s, ls, i, k);
        if (gain <= EPS) continue;
        const ratio = deltaCost(c, assign, i, k) / gain;
        if (!best || ratio < best.ratio) best = { i, k, ratio };
      }
    }
    if (!best) break;
    used[assign[best.i]!]! -= c.units[best.i]![assign[best.i]!]!;
    used[best.k]! += c.units[best.i]![best.k]!;
    assign[best.i] = best.k;
    if (moved) moved[best.i] = 1;
    s = forward(c, assign);
  }
  return s.latencyMs;
}

/**
 * Moves single tasks to cheaper classes while every path through them still meets the SLA.
 * One sweep visits tasks in topological order: predecessors' finish times are current (already
 * swept) and successors' latest starts are exact (nothing downstream has moved yet), so a move is
 * safe iff ef(pred) + transfer + t_new + transfer ≤ ls(succ) on all incident edges. With `only`,
 * just the marked tasks may move (an incremental re-plan); `prefs` need only cover those.
 */
export function descend(
  c: Compiled,
  assign: Int32Array,
  slaMs: number,
  prefs: Int32Array[],
  only?: Uint8Array,
): void {
  const used = usage(c, assign);
  for (let round = 0; round < 8; round++) {
    const ls = latestStarts(c, assign, slaMs);
    const ef = new Float64Array(c.n);
    let moved = false;
    for (const i of c.order) {
      if (only && !only[i]) {
        ef[i] = startOf(c, assign, ef, i, assign[i]!) + c.p.timeMs[i]![assign[i]!]!;
        continue;
      }
      const a = assign[i]!;
      // A move saves at most what i's crossings cost now; prefs ascend in coef, so once a class's
      // extra op cost reaches that, no later class is cheaper (without prices: from i's own class).
      // A dearer class is only tried when a neighbour sits there (joining it removes a crossing).
      const room = c.priced ? incidentCost(c, assign, i) : 0;
      for (const k of prefs[i]!) {
        const extra = c.coef[i]![k]! - c.coef[i]![a]!;
        if (extra >= room) break;
        if (extra >= 0 && !hasNeighbourOn(c, assign, i, k)) continue;
        if (used[k]! + c.units[i]![k]! > c.cap[k]!) continue;
        if (deltaCost(c, assign, i, k) >= -EPS * Math.abs(c.coef[i]![assign[i]!]!)) continue;
        if (!fitsWindow(c, assign, ef, ls, i, k, slaMs)) continue;
        used[assign[i]!]! -= c.units[i]![assign[i]!]!;
        used[k]! += c.units[i]![k]!;
        assign[i] = k;
        moved = true;
        break;
      }
      ef[i] = startOf(c, assign, ef, i, assign[i]!) + c.p.timeMs[i]![assign[i]!]!;
    }
    if (!moved) return;
  }
}

/**
 * Moves both ends of a colocated edge to a cheaper common class: transfers make single moves out
 * of a colocated cluster look infeasible even when moving the pair is fine. The window check uses
 * the current schedule (exact unless another path joins the pair), so every accepted move is
 * verified with a full forward pass and reverted if it breaks the SLA. With `only`, just edges with
 * a marked end are tried.
 */
export function pairDescend(c: Compiled, assign: Int32Array, slaMs: number, only?: Uint8Array): boolean {
  const used = usage(c, assign);
  let s = forward(c, assign);
  let ls = latestStarts(c, assign, slaMs);
  let improved = false;
  const mark = new Uint8Array(c.n);
  for (let e = 0; e < c.edges.length; e++) {
    const { u, v } = c.edges[e]!;
    const a = assign[u]!;
    if (assign[v] !== a || (only && !only[u] && !only[v])) continue;
    let best = -1;
    let bestDelta = -EPS * (Math.abs(c.coef[u]![a]!) + Math.abs(c.coef[v]![a]!));
    // The pair's own edge stays colocated, so its crossings cost what both ends' cost now.
    const room = c.priced ? incidentCost(c, assign, u) + incidentCost(c, assign, v) : 0;
    mark[u] = 1;
    mark[v] = 1;
    for (let k = 0; k < c.m; k++) {
      if (k === a) continue;
      let delta = c.coef[u]![k]! + c.coef[v]![k]! - c.coef[u]![a]! - c.coef[v]![a]!;
      if (!(delta - room < bestDelta)) continue;
      // As in descend: a dearer class only to join a neighbour there.
      if (delta >= 0 && !hasNeighbourOn(c, assign, u, k) && !hasNeighbourOn(c, assign, v, k)) continue;
      if (c.priced) delta += crossingDelta(c, assign, [u, v], mark, k);
      if (!(delta < bestDelta)) continue;
      if (used[k]! + c.units[u]![k]! + c.units[v]![k]! > c.cap[k]!) continue;
      if (!pairFits(c, assign, s.ef, ls, e, k, slaMs)) continue;
      best = k;
      bestDelta = delta;
    }
    mark[u] = 0;
    mark[v] = 0;
    if (best < 0) continue;
    assign[u] = best;
    assign[v] = best;
    const s2 = forward(c, assign);
    if (s2.latencyMs > slaMs + EPS) {
      assign[u] = a;
      assign[v] = a;
      continue;
    }
    used[a]! -= c.units[u]![a]! + c.units[v]![a]!;
    used[best]! += c.units[u]![best]! + c.units[v]![best]!;
    s = s2;
    ls = latestStarts(c, assign, slaMs);
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

/** Placements that get the full descent. */
const STARTS_DESCENDED = 4;
/** Upgrade steps of one critical-path repair. */
const REPAIR_MAX_ITER = 400;

/** Below this many (task, class) pairs the solver also tries downgrade-then-repair moves. */
const KICK_LIMIT = 20000;

/**
 * Ejection moves that single-move descent cannot make: downgrade one of the largest-saving tasks
 * even though the SLA breaks, repair the critical path by cheapest upgrades, and keep the result
 * if the total cost fell. Bounded: a few candidates per round, a few rounds.
 */
function kick(c: Compiled, assign: Int32Array, slaMs: number, prefs: Int32Array[]): void {
  let cost = totalCost(c, assign);
  for (let round = 0; round < 4; round++) {
    const moves: { i: number; k: number; save: number }[] = [];
    for (let i = 0; i < c.n; i++) {
      for (const k of prefs[i]!) {
        if (k === assign[i]) break;
        moves.push({ i, k, save: c.coef[i]![assign[i]!]! - c.coef[i]![k]! });
      }
    }
    moves.sort((x, y) => y.save - x.save);
    let improved = false;
    for (const mv of moves.slice(0, 12)) {
      const trial = Int32Array.from(assign);
      trial[mv.i] = mv.k;
      if (usage(c, trial)[mv.k]! > c.cap[mv.k]!) continue;
      if (repair(c, trial, slaMs, 30) > slaMs + EPS) continue;
      descend(c, trial, slaMs, prefs);
      const tc = totalCost(c, trial);
      if (tc < cost * (1 - 1e-9)) {
        assign.set(trial);
        cost = tc;
        improved = true;
        break;
      }
    }
    if (!improved) return;
  }
}

/**
 * Weight searches for placements that meet the SLA (critical-path repair by best Δcost/Δlatency
 * when none does), then descent on the cheapest few: single moves, colocated pairs and, on small
 * problems, downgrade-then-repair moves. Keeps the cheapest placement found.
 */
export function solveHeuristic(c: Compiled, slaMs: number): HeuristicOutcome {
  const prefs = cheapestOrder(c);
  let budget = 0;
  for (let i = 0; i < c.n; i++) budget += c.coef[i]![prefs[i]![0] ?? 0]!;
  const mu0 = Math.max(budget, EPS) / Math.max(slaMs, EPS);
  const order = leastChoiceFirst(c, prefs);
  const independent = (mu: number) => initial(c, prefs, order, () => mu);
  const found = [
    ...weightSearch(c, slaMs, mu0, independent),
    ...weightSearch(c, slaMs, mu0, (mu) => constructTopo(c, prefs, mu)),
  ];
  if (found.length === 0) return { assign: null, bestLatencyMs: Infinity, failure: 'capacity' };
  const meets = found.filter((x) => x.latencyMs <= slaMs + EPS);
  const refined = meets.length > 0 ? flowSearch(c, slaMs, prefs, order, meets[0]!.mu) : [];
  refined.sort((a, b) => totalCost(c, a.assign) - totalCost(c, b.assign));
  // Descent is the expensive part: run it on the cheapest few placements that meet the SLA, and
  // repair only when none does.
  const ok = [...meets, ...refined].sort((a, b) => totalCost(c, a.assign) - totalCost(c, b.assign));
  const starts = ok.length > 0 ? ok.slice(0, STARTS_DESCENDED) : found;
  let bestLatencyMs = Infinity;
  let best: Int32Array | null = null;
  let bestCost = Infinity;
  for (const start of starts) {
    const assign = start.assign;
    let lat = start.latencyMs;
    if (lat > slaMs + EPS) lat = repair(c, assign, slaMs, Math.min(20 * c.n, REPAIR_MAX_ITER));
    bestLatencyMs = Math.min(bestLatencyMs, lat);
    if (lat > slaMs + EPS) continue;
    descend(c, assign, slaMs, prefs);
    for (let round = 0; round < 4 && pairDescend(c, assign, slaMs); round++) descend(c, assign, slaMs, prefs);
    const cost = totalCost(c, assign);
    if (cost < bestCost) {
      best = assign;
      bestCost = cost;
    }
  }
  // Whole-cluster moves (priced crossings only) on the winner alone: each round re-runs descent.
  for (let round = 0; best && round < 4 && clusterDescend(c, best, slaMs); round++)
    descend(c, best, slaMs, prefs);
  if (best && c.n * c.m <= KICK_LIMIT) kick(c, best, slaMs, prefs);
  return best ? { assign: best, bestLatencyMs } : { assign: null, bestLatencyMs, failure: 'sla' };
}

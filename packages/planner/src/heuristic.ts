import { clusterDescend } from './cluster.js';
import {
  type Candidate,
  constructTopo,
  floodCoefs,
  flowSearch,
  initial,
  leastChoiceFirst,
  weightSearch,
} from './construct.js';
import { deltaCost, descend, pairDescend } from './descent.js';
import { type Compiled, transferMs } from './problem.js';
import { forward, latestStarts, type Schedule, totalCost, usage } from './schedule.js';
import { type MoveTables, tablesOf } from './tables.js';

export interface HeuristicOutcome {
  /** Best assignment found that meets the SLA, or null. */
  assign: Int32Array | null;
  /** Lowest latency any assignment the heuristic visited reached. */
  bestLatencyMs: number;
  /** Why no assignment was found: a task no class with room can run, or the SLA. */
  failure?: 'capacity' | 'sla';
}

const EPS = 1e-9;

/** The edges into and out of critical task i that are tight (on a critical path through i). */
function tightEdges(c: Compiled, assign: Int32Array, s: Schedule, ls: Float64Array, i: number) {
  const a = assign[i]!;
  const into: number[] = [];
  const out: number[] = [];
  for (const e of c.predEdges[i]!) {
    const u = c.edges[e]!.u;
    if (ls[u]! - s.es[u]! > EPS || s.ef[u]! + transferMs(c, e, assign[u]!, a) < s.es[i]! - EPS) continue;
    into.push(e);
  }
  for (const e of c.succEdges[i]!) {
    const w = c.edges[e]!.v;
    if (ls[w]! - s.es[w]! > EPS || s.ef[i]! + transferMs(c, e, a, assign[w]!) < s.es[w]! - EPS) continue;
    out.push(e);
  }
  return { into, out };
}

/**
 * Path-local latency gain of moving critical task i to class k: its time and its tight edges
 * (see tightEdges).
 */
function criticalGain(
  c: Compiled,
  assign: Int32Array,
  i: number,
  k: number,
  tight: { into: number[]; out: number[] },
): number {
  const a = assign[i]!;
  let gainIn = Infinity;
  for (const e of tight.into) {
    const au = assign[c.edges[e]!.u]!;
    gainIn = Math.min(gainIn, transferMs(c, e, au, a) - transferMs(c, e, au, k));
  }
  let gainOut = Infinity;
  for (const e of tight.out) {
    const aw = assign[c.edges[e]!.v]!;
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
      const tight = tightEdges(c, assign, s, ls, i);
      for (let k = 0; k < c.m; k++) {
        if (k === assign[i] || !Number.isFinite(c.coef[i]![k]!)) continue;
        if (used[k]! + c.units[i]![k]! > c.cap[k]!) continue;
        const gain = criticalGain(c, assign, i, k, tight);
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

/** Upgrade steps of one critical-path repair. */
const REPAIR_MAX_ITER = 400;

/** Up to this many (task, class) pairs the solver also tries downgrade-then-repair moves. */
const KICK_LIMIT = 20000;
/** Descended placements dearer than the cheapest by more than this share are not polished. */
const POLISH_WITHIN = 0.05;
/** Up to this many (task, class) pairs it searches widely (see breadth). */
const WIDE_LIMIT = 4000;

/**
 * Ejection moves that single-move descent cannot make: downgrade one of the largest-saving tasks
 * even though the SLA breaks, repair the critical path by cheapest upgrades, and keep the result
 * if the total cost fell. Bounded: a few candidates per round, a few rounds.
 */
function kick(c: Compiled, assign: Int32Array, slaMs: number, tables: MoveTables): void {
  let cost = totalCost(c, assign);
  for (let round = 0; round < 4; round++) {
    const moves: { i: number; k: number; save: number }[] = [];
    for (let i = 0; i < c.n; i++) {
      const coef = c.coef[i]!;
      for (const k of tables.prefs[i]!) {
        const save = coef[assign[i]!]! - coef[k]!;
        if (save > 0) moves.push({ i, k, save });
      }
    }
    moves.sort((x, y) => y.save - x.save);
    let improved = false;
    for (const mv of moves.slice(0, 12)) {
      const trial = Int32Array.from(assign);
      trial[mv.i] = mv.k;
      if (usage(c, trial)[mv.k]! > c.cap[mv.k]!) continue;
      if (repair(c, trial, slaMs, 30) > slaMs + EPS) continue;
      descend(c, trial, slaMs, tables);
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
 * Rounds of colocated-pair moves, then of whole-cluster moves, each followed by single-move descent.
 * After the first round of each only what changed, and its neighbours, is looked at again. With
 * `only`, just the marked tasks move (an incremental re-plan).
 */
export function polish(
  c: Compiled,
  assign: Int32Array,
  slaMs: number,
  tables: MoveTables,
  only?: Uint8Array,
): void {
  const moves = [
    (focus?: Uint8Array) => pairDescend(c, assign, slaMs, tables, focus),
    (focus?: Uint8Array) => clusterDescend(c, assign, slaMs, focus),
  ];
  for (const move of moves) {
    let focus = only;
    for (let round = 0; round < 4; round++) {
      const before = Int32Array.from(assign);
      if (!move(focus)) break;
      focus = changedAround(c, before, assign, only);
      descend(c, assign, slaMs, tables, focus);
      focus = changedAround(c, before, assign, only);
    }
  }
}

/** Tasks whose class differs between two assignments, and their neighbours (those in `only`). */
function changedAround(c: Compiled, before: Int32Array, after: Int32Array, only?: Uint8Array): Uint8Array {
  const out = new Uint8Array(c.n);
  for (const { u, v } of c.edges) {
    if (before[u] !== after[u] || before[v] !== after[v]) {
      out[u] = 1;
      out[v] = 1;
    }
  }
  for (let i = 0; i < c.n; i++) {
    if (before[i] !== after[i]) out[i] = 1;
    if (only && !only[i]) out[i] = 0;
  }
  return out;
}

/**
 * How widely the heuristic searches, per family of starts (task-by-task weighings, chain
 * constructions): small problems get many starts, each cheap there.
 */
function breadth(c: Compiled): { flood: boolean; descended: number; polished: number; kicked: number } {
  const pairs = c.n * c.m;
  if (pairs <= WIDE_LIMIT) return { flood: c.priced, descended: 12, polished: 3, kicked: 1 };
  return { flood: false, descended: 1, polished: 1, kicked: pairs <= KICK_LIMIT ? 1 : 0 };
}

/** The cheapest `count` distinct candidates that meet the SLA, or (none meeting it) the fastest. */
function cheapest(c: Compiled, cands: Candidate[], slaMs: number, count: number): Candidate[] {
  const meets = cands.filter((x) => x.latencyMs <= slaMs + EPS);
  // None meets the SLA: the fastest go to the (costly) critical-path repair.
  if (meets.length === 0) return [...cands].sort((a, b) => a.latencyMs - b.latencyMs).slice(0, count);
  const cost = new Map(meets.map((x) => [x, totalCost(c, x.assign)]));
  meets.sort((a, b) => cost.get(a)! - cost.get(b)!);
  const out: Candidate[] = [];
  for (const x of meets) {
    if (out.length === count) break;
    if (!out.some((y) => cost.get(y) === cost.get(x) && y.assign.every((k, i) => x.assign[i] === k)))
      out.push(x);
  }
  return out;
}

/**
 * Weight searches for placements that meet the SLA in two families — each task weighed on its own
 * (with priced crossings by its own rows: coef plus its side of every edge, as if all crossed, so
 * a class with a slow, dear link looks as dear as its crossings can make it; on small problems also
 * each class in turn as a flood), and chains built in topological order — then per family single-
 * move descent on the cheapest few (critical-path repair first when none meets the SLA), pair and
 * cluster moves on the cheapest of those and, on small problems, downgrade-then-repair moves.
 * Keeps the cheapest placement found.
 */
export function solveHeuristic(c: Compiled, slaMs: number): HeuristicOutcome {
  const tables = tablesOf(c);
  const { prefs } = tables;
  const wide = breadth(c);
  let budget = 0;
  for (let i = 0; i < c.n; i++) budget += Math.min(...c.coef[i]!);
  const mu0 = Math.max(budget, EPS) / Math.max(slaMs, EPS);
  const order = leastChoiceFirst(c, prefs);
  const search = (coefs: Float64Array[]) =>
    weightSearch(c, slaMs, mu0, (mu) => initial(c, prefs, order, () => mu, coefs));
  const base = c.priced ? tables.own : c.coef;
  const rows = search(base);
  if (wide.flood) for (let k = 0; k < c.m; k++) rows.push(...search(floodCoefs(c, tables.own, k)));
  const meets = rows.find((x) => x.latencyMs <= slaMs + EPS);
  if (meets) rows.push(...flowSearch(c, slaMs, prefs, order, meets.mu, base));
  const chains = weightSearch(c, slaMs, mu0, (mu) => constructTopo(c, prefs, mu));
  if (rows.length + chains.length === 0)
    return { assign: null, bestLatencyMs: Infinity, failure: 'capacity' };
  let bestLatencyMs = Infinity;
  const descended = [rows, chains].map((family) => {
    const out: { assign: Int32Array; cost: number }[] = [];
    for (const start of cheapest(c, family, slaMs, wide.descended)) {
      const assign = start.assign;
      let lat = start.latencyMs;
      if (lat > slaMs + EPS) lat = repair(c, assign, slaMs, Math.min(20 * c.n, REPAIR_MAX_ITER));
      bestLatencyMs = Math.min(bestLatencyMs, lat);
      if (lat > slaMs + EPS) continue;
      descend(c, assign, slaMs, tables);
      out.push({ assign, cost: totalCost(c, assign) });
    }
    return out.sort((a, b) => a.cost - b.cost);
  });
  // Polishing gains a few per cent: a family whose best is further behind is not polished.
  const leader = Math.min(...descended.map((d) => d[0]?.cost ?? Infinity));
  const polished: Int32Array[] = [];
  for (const family of descended) {
    for (const { assign, cost } of family.slice(0, wide.polished)) {
      if (cost > leader * (1 + POLISH_WITHIN)) break;
      polish(c, assign, slaMs, tables);
      polished.push(assign);
    }
  }
  const byCost = polished.map((assign) => ({ assign, cost: totalCost(c, assign) }));
  byCost.sort((a, b) => a.cost - b.cost);
  for (const x of byCost.slice(0, wide.kicked)) {
    kick(c, x.assign, slaMs, tables);
    x.cost = totalCost(c, x.assign);
  }
  byCost.sort((a, b) => a.cost - b.cost);
  const best = byCost[0]?.assign;
  return best ? { assign: best, bestLatencyMs } : { assign: null, bestLatencyMs, failure: 'sla' };
}

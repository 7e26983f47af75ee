import { weightSearch } from './construct.js';
import { deltaCost, descend, fitsWindow, moveTables } from './descent.js';
import { polish, repair } from './heuristic.js';
import {
  checkOptions,
  feasible,
  type PlanOptions,
  type PlanResult,
  placementFailure,
  planHeuristic,
} from './plan.js';
import { type Compiled, compile, type EdgeSpec, type PlacementProblem } from './problem.js';
import { forward, LiveSchedule, totalCost, usage } from './schedule.js';

/** The plan being updated: the problem it was made for and the class id of each task. */
export interface PreviousPlan {
  problem: PlacementProblem;
  placement: readonly string[];
}

export type IncrementalResult = PlanResult & {
  /** Tasks the re-plan considered moving (changed inputs, their neighbours, evicted, repaired). */
  revisited: number;
  /** True when the change was not local (a class added or repriced, tasks added) and a full heuristic plan ran. */
  fullReplan: boolean;
};

const EPS = 1e-9;

function sameRow(a: readonly number[] | undefined, b: readonly number[], map: Int32Array): boolean {
  if (!a) return false;
  if (a === b && a.length === map.length) return map.every((pj, j) => pj === j);
  for (let j = 0; j < b.length; j++) if (a[map[j]!] !== b[j]) return false;
  return true;
}

/**
 * Marks the tasks whose inputs changed: their time, devices or explicit cost on any class, an
 * incident edge, or a class they sat on that is gone. Returns null when the change is not local.
 */
function changedTasks(prev: PlacementProblem, next: PlacementProblem, c: Compiled): Uint8Array | null {
  const prevClass = new Map(prev.classes.map((k, j) => [k.id, j]));
  const map = new Int32Array(c.m);
  for (let j = 0; j < c.m; j++) {
    const cls = next.classes[j]!;
    const pj = prevClass.get(cls.id);
    if (pj === undefined) return null;
    const old = prev.classes[pj]!;
    if (
      old.usdPerHour !== cls.usdPerHour ||
      old.linkGBps !== cls.linkGBps ||
      (old.egressUsdPerGB ?? 0) !== (cls.egressUsdPerGB ?? 0)
    )
      return null;
    map[j] = pj;
  }
  const prevTask = new Map(prev.tasks.map((t, i) => [t.id, i]));
  const dirty = new Uint8Array(c.n);
  for (let i = 0; i < c.n; i++) {
    const pi = prevTask.get(next.tasks[i]!.id);
    if (pi === undefined) return null;
    const cost = next.usdPerRequest?.[i];
    if (
      !sameRow(prev.timeMs[pi], next.timeMs[i]!, map) ||
      !sameRow(prev.devices[pi], next.devices[i]!, map) ||
      (cost !== undefined && !sameRow(prev.usdPerRequest?.[pi], cost, map))
    )
      dirty[i] = 1;
  }
  const same = (a: EdgeSpec, b: EdgeSpec) =>
    a.from === b.from &&
    a.to === b.to &&
    a.bytes === b.bytes &&
    a.transferMs === b.transferMs &&
    a.usdPerTransfer === b.usdPerTransfer;
  const key = (e: EdgeSpec) =>
    `${e.from}\u0000${e.to}\u0000${e.bytes}\u0000${e.transferMs}\u0000${e.usdPerTransfer}`;
  // Edges usually come in the same order: compare pairwise, and by content only where that fails.
  let before: Set<string> | null = null;
  c.edges.forEach((e, k) => {
    const spec = next.edges[k]!;
    const old = prev.edges[k];
    if (old && same(old, spec)) return;
    before ??= new Set(prev.edges.map(key));
    if (!before.has(key(spec))) {
      dirty[e.u] = 1;
      dirty[e.v] = 1;
    }
  });
  return dirty;
}

/**
 * After task i left class k for `to`, its neighbours still on k follow it while that is their best
 * move and costs no more than the next candidate: priced crossings make evicting a colocated
 * chain together cheaper than evicting its members one by one into different classes.
 */
function follow(
  c: Compiled,
  assign: Int32Array,
  i: number,
  k: number,
  to: number,
  nextDelta: number,
  bestMove: (i: number) => { to: number; delta: number; fits: boolean },
  move: (i: number, to: number) => void,
  used: number[],
): void {
  const stack = [i];
  while (stack.length > 0 && used[k]! > c.cap[k]!) {
    const x = stack.pop()!;
    for (const e of [...c.predEdges[x]!, ...c.succEdges[x]!]) {
      const { u, v } = c.edges[e]!;
      const w = u === x ? v : u;
      if (assign[w] !== k || used[k]! <= c.cap[k]!) continue;
      const mv = bestMove(w);
      if (mv.to !== to || !mv.fits || mv.delta > nextDelta) continue;
      move(w, to);
      stack.push(w);
    }
  }
}

/**
 * Moves tasks off over-full classes, marking each one moved. Tasks go in order of their cheapest
 * move that keeps every path through them within the SLA (checked against the current schedule,
 * which is recomputed after each move); when no such move is left, the move that adds the least
 * time (the SLA repair runs next).
 */
function evict(c: Compiled, assign: Int32Array, slaMs: number, dirty: Uint8Array): boolean {
  const used = usage(c, assign);
  for (let k = 0; k < c.m; k++) {
    if (used[k]! <= c.cap[k]!) continue;
    const live = new LiveSchedule(c, assign, slaMs);
    const bestMove = (i: number): { to: number; delta: number; fits: boolean } => {
      let to = -1;
      let delta = Infinity;
      let fits = false;
      const t = c.p.timeMs[i]!;
      for (let j = 0; j < c.m; j++) {
        if (j === k || used[j]! + c.units[i]![j]! > c.cap[j]!) continue;
        const ok = fitsWindow(c, assign, live.ef, live.ls, i, j, slaMs);
        const d = ok ? deltaCost(c, assign, i, j) : t[j]! - t[k]!;
        if ((ok && !fits) || (ok === fits && d < delta)) {
          to = j;
          delta = d;
          fits = ok;
        }
      }
      return { to, delta, fits };
    };
    const on: { i: number; delta: number }[] = [];
    for (let i = 0; i < c.n; i++) {
      if (assign[i] !== k) continue;
      const mv = bestMove(i);
      on.push({ i, delta: mv.fits ? mv.delta : Infinity });
    }
    on.sort((a, b) => a.delta - b.delta);
    const move = (i: number, to: number) => {
      used[k]! -= c.units[i]![k]!;
      used[to]! += c.units[i]![to]!;
      assign[i] = to;
      dirty[i] = 1;
      live.update([i]);
    };
    for (let h = 0; h < on.length && used[k]! > c.cap[k]!; h++) {
      const i = on[h]!.i;
      if (assign[i] !== k) continue;
      const mv = bestMove(i);
      if (mv.to < 0) continue;
      move(i, mv.to);
      if (c.priced) follow(c, assign, i, k, mv.to, on[h + 1]?.delta ?? Infinity, bestMove, move, used);
    }
    if (used[k]! > c.cap[k]!) return false;
  }
  return true;
}

/**
 * Tasks whose class is gone: each takes argmin coef + μ·t among classes with room, the others
 * staying put, and the weight search of the full heuristic picks the cheapest μ that meets the SLA
 * (so the slack is shared among them rather than taken by the first).
 */
function placeOrphans(c: Compiled, assign: Int32Array, orphans: number[], slaMs: number): Int32Array | null {
  const base = new Float64Array(c.m);
  for (let i = 0; i < c.n; i++) if (assign[i]! >= 0) base[assign[i]!]! += c.units[i]![assign[i]!]!;
  const used = new Float64Array(c.m);
  const build = (mu: number): Int32Array | null => {
    const out = Int32Array.from(assign);
    used.set(base);
    const fastest = !Number.isFinite(mu);
    for (const i of orphans) {
      const coef = c.coef[i]!;
      const time = c.p.timeMs[i]!;
      let best = -1;
      let bestKey = Infinity;
      for (let k = 0; k < c.m; k++) {
        if (!Number.isFinite(coef[k]!) || used[k]! + c.units[i]![k]! > c.cap[k]!) continue;
        const key = fastest ? time[k]! : coef[k]! + mu * time[k]!;
        if (key < bestKey) {
          best = k;
          bestKey = key;
        }
      }
      if (best < 0) return null;
      out[i] = best;
      used[best]! += c.units[i]![best]!;
    }
    return out;
  };
  let budget = 0;
  for (const i of orphans) budget += Math.min(...c.coef[i]!);
  const found = weightSearch(c, slaMs, Math.max(budget, EPS) / Math.max(slaMs, EPS), build);
  const meets = found.filter((x) => x.latencyMs <= slaMs + EPS);
  if (meets.length > 0)
    return meets.reduce((a, b) => (totalCost(c, b.assign) < totalCost(c, a.assign) ? b : a)).assign;
  // None meets the SLA with the other tasks fixed: the fastest goes to the critical-path repair.
  if (found.length === 0) return null;
  return found.reduce((a, b) => (b.latencyMs < a.latencyMs ? b : a)).assign;
}

/** The marked tasks and every task one edge away from them. */
function withNeighbours(c: Compiled, marked: Uint8Array): Uint8Array {
  const out = Uint8Array.from(marked);
  for (const e of c.edges) {
    if (marked[e.u] || marked[e.v]) {
      out[e.u] = 1;
      out[e.v] = 1;
    }
  }
  return out;
}

/**
 * Re-plans after a local change (op costs, device counts, classes removed) by revisiting only the
 * ops it touches: ops whose times changed or whose class is gone or over-full are moved (first to
 * their fastest class with room, then down to the cheapest that keeps every path within the SLA),
 * their neighbours may move down into freed slack, and a broken SLA is repaired on the critical
 * path; then single, pair and cluster moves over those ops (over every op when some had to leave a
 * class). Any other change (a class added or repriced, new tasks) runs the full
 * heuristic. Options should be those of the previous plan.
 */
export function planIncremental(
  previous: PreviousPlan,
  problem: PlacementProblem,
  o: PlanOptions,
): IncrementalResult {
  checkOptions(o);
  const c = compile(problem, o.rate ?? 0, o.gamma ?? 0);
  const bad = placementFailure(c, 'heuristic');
  if (bad) return { ...bad, revisited: 0, fullReplan: false };
  const t0 = Date.now();
  const dirty = changedTasks(previous.problem, problem, c);
  const classIndex = new Map(problem.classes.map((k, j) => [k.id, j]));
  const prevIndex = new Map(previous.problem.tasks.map((t, i) => [t.id, i]));
  if (!dirty || previous.placement.length !== previous.problem.tasks.length) {
    return { ...planHeuristic(problem, o), revisited: c.n, fullReplan: true };
  }
  const assign = new Int32Array(c.n);
  for (let i = 0; i < c.n; i++) {
    const k = classIndex.get(previous.placement[prevIndex.get(problem.tasks[i]!.id)!]!);
    if (k === undefined || !Number.isFinite(c.coef[i]![k]!)) {
      dirty[i] = 1;
      assign[i] = -1;
    } else assign[i] = k;
  }
  const orphans: number[] = [];
  for (let i = 0; i < c.n; i++) if (assign[i]! < 0) orphans.push(i);
  if (orphans.length > 0) {
    const placed = placeOrphans(c, assign, orphans, o.slaMs);
    if (!placed) return { ...planHeuristic(problem, o), revisited: c.n, fullReplan: true };
    assign.set(placed);
  }
  const beforeEvict = Int32Array.from(assign);
  if (!evict(c, assign, o.slaMs, dirty))
    return { ...planHeuristic(problem, o), revisited: c.n, fullReplan: true };
  const displaced = orphans.length > 0 || assign.some((k, i) => k !== beforeEvict[i]);
  // Neighbours of a changed task may use its freed (or lost) slack.
  const visit = withNeighbours(c, dirty);
  if (forward(c, assign).latencyMs > o.slaMs + EPS) {
    const moved = new Uint8Array(c.n);
    repair(c, assign, o.slaMs, Math.min(20 * c.n, 400), moved);
    // A repaired task's neighbours may follow it when crossings have a price.
    if (c.priced) visit.set(withNeighbours(c, moved).map((x, i) => x | visit[i]!));
    else for (let i = 0; i < c.n; i++) visit[i]! |= moved[i]!;
  }
  const latency = forward(c, assign).latencyMs;
  if (latency > o.slaMs + EPS) return { ...planHeuristic(problem, o), revisited: c.n, fullReplan: true };
  // Ops that had to leave a class (its count fell, or it is gone) move the plan away from where
  // the rest was chosen: every op may move then. From a plan this close to a local optimum the
  // descent converges in a few sweeps, and a full re-plan's cost comes within reach.
  if (displaced) visit.fill(1);
  let revisited = 0;
  for (let i = 0; i < c.n; i++) revisited += visit[i]!;
  const tables = moveTables(c, visit);
  descend(c, assign, o.slaMs, tables, visit);
  polish(c, assign, o.slaMs, tables, visit);
  const solveMs = Date.now() - t0;
  return {
    ...feasible(c, assign, { status: 'feasible', solver: 'heuristic', slackMs: 0, solveMs }),
    revisited,
    fullReplan: false,
  };
}

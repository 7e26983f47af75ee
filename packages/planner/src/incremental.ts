import { type Change, changeBetween } from './change.js';
import { clusterDescend } from './cluster.js';
import { descend, pairDescend } from './descent.js';
import { placeDisplaced } from './displaced.js';
import { evict } from './evict.js';
import { repair } from './heuristic.js';
import { checkOptions, feasible, type PlanOptions, type PlanResult, planHeuristic } from './plan.js';
import type { Compiled, PlacementProblem } from './problem.js';
import { compileChanged } from './recompile.js';
import { forward } from './schedule.js';
import { type MoveTables, tablesAfter } from './tables.js';

/** The plan being updated: the problem it was made for and the class id of each task. */
export interface PreviousPlan {
  problem: PlacementProblem;
  placement: readonly string[];
}

export type IncrementalResult = PlanResult & {
  /**
   * Tasks the local search revisited: those whose inputs changed, whose class is gone, that left an
   * over-full class or that the repair moved, and their neighbours.
   */
  revisited: number;
  /** True when the change was not local (a class added or repriced, tasks added) and a full heuristic plan ran. */
  fullReplan: boolean;
};

const EPS = 1e-9;

/** The previous placement in the new problem's indexes, −1 where the class is gone or can no longer run the op. */
function carry(previous: PreviousPlan, c: Compiled, change: Change): Int32Array {
  const prevClass = new Map(previous.problem.classes.map((k, j) => [k.id, j]));
  const assign = new Int32Array(c.n);
  for (let i = 0; i < c.n; i++) {
    const pk = prevClass.get(previous.placement[change.fromTask[i]!]!);
    const k = pk === undefined ? -1 : change.toClass[pk]!;
    assign[i] = k >= 0 && c.coef[i]![k]! < Infinity ? k : -1;
  }
  return assign;
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
 * One round of the heuristic's colocated-pair and whole-cluster moves over the revisited ops, then
 * single moves around whatever they moved.
 */
function regroup(
  c: Compiled,
  assign: Int32Array,
  slaMs: number,
  tables: MoveTables,
  visit: Uint8Array,
): void {
  const before = Int32Array.from(assign);
  pairDescend(c, assign, slaMs, tables, visit);
  clusterDescend(c, assign, slaMs, visit);
  const moved = new Uint8Array(c.n);
  for (let i = 0; i < c.n; i++) moved[i] = before[i] === assign[i] ? 0 : 1;
  const around = withNeighbours(c, moved);
  for (let i = 0; i < c.n; i++) around[i]! &= visit[i]!;
  descend(c, assign, slaMs, tables, around);
}

/**
 * Re-plans after a local change (op costs, device counts, classes removed) by revisiting only the
 * ops it touches. Ops whose class is gone are placed again with every other op fixed (see
 * placeDisplaced); ops leave a class whose count no longer holds them in order of least added
 * cost (see evict); a broken SLA is repaired on the critical path. Then single moves over the
 * changed and moved ops and their neighbours (which may use freed slack, or follow a moved
 * neighbour when crossings have a price), and one round of pair and cluster moves over them. Any
 * other change (a class added or repriced, new tasks) runs the full heuristic, as does an op left
 * with no class or an SLA the repair cannot restore. Options should be those of the previous plan.
 */
export function planIncremental(
  previous: PreviousPlan,
  problem: PlacementProblem,
  o: PlanOptions,
): IncrementalResult {
  checkOptions(o);
  const t0 = Date.now();
  const full = (): IncrementalResult => ({
    ...planHeuristic(problem, o),
    revisited: problem.tasks.length,
    fullReplan: true,
  });
  const change =
    previous.placement.length === previous.problem.tasks.length
      ? changeBetween(previous.problem, problem)
      : null;
  if (!change) return full();
  const { compiled: c, from } = compileChanged(
    previous.problem,
    problem,
    change,
    o.rate ?? 0,
    o.gamma ?? 0,
    o.sharedRate ?? 0,
  );
  const assign = carry(previous, c, change);
  const { dirty } = change;
  const used = new Float64Array(c.m);
  for (let i = 0; i < c.n; i++) if (assign[i]! >= 0) used[assign[i]!]! += c.units[i]![assign[i]!]!;
  // The ops whose class is gone, and those on a class that no longer holds every op on it (some of
  // which leave), move before the local search.
  let orphans = 0;
  let overfull = false;
  for (let i = 0; i < c.n; i++) {
    const k = assign[i]!;
    if (k < 0) {
      orphans++;
      dirty[i] = 1;
    } else if (used[k]! > c.cap[k]!) overfull = true;
  }
  const tables = tablesAfter(c, from, change);
  // Every op that stays is on a class that runs it, with room: the problem can be unplaceable only
  // if an orphan finds no class or a class cannot shed enough ops, and the full heuristic then
  // says why. Orphans that cannot meet the SLA around the fixed ops go there too: the repair
  // rarely restores it then (2 of 14 generated cases), and the full heuristic repairs its own starts.
  if (orphans > 0) {
    const placed = placeDisplaced(c, assign, tables.own, o.slaMs);
    if (!placed) return full();
    assign.set(placed);
  }
  if (overfull && !evict(c, assign, o.slaMs, tables.own, dirty)) return full();
  const visit = withNeighbours(c, dirty);
  if (forward(c, assign).latencyMs > o.slaMs + EPS) {
    const moved = new Uint8Array(c.n);
    if (repair(c, assign, o.slaMs, Math.min(20 * c.n, 400), moved) > o.slaMs + EPS) return full();
    // A repaired op's neighbours may follow it when crossings have a price.
    visit.set(withNeighbours(c, moved).map((x, i) => x | visit[i]!));
  }
  let revisited = 0;
  for (let i = 0; i < c.n; i++) revisited += visit[i]!;
  descend(c, assign, o.slaMs, tables, visit);
  regroup(c, assign, o.slaMs, tables, visit);
  const solveMs = Date.now() - t0;
  return {
    ...feasible(c, assign, { status: 'feasible', solver: 'heuristic', slackMs: 0, solveMs }),
    revisited,
    fullReplan: false,
  };
}

import { weightSearch } from './construct.js';
import { type Compiled, joinSaves, rowViews } from './problem.js';
import { totalCost } from './schedule.js';

// Placement of the ops an incremental re-plan must move because their class is gone (or can no
// longer run them), while every other op stays where it is.

const EPS = 1e-9;

/**
 * What each displaced op costs on each class with its fixed neighbours where they are: its own
 * row (coefficient plus its side of every incident edge, as if every edge crossed; see
 * MoveTables), less, on each class a fixed neighbour sits on, the part of that edge's price that
 * colocation saves.
 */
function displacedRows(
  c: Compiled,
  assign: Int32Array,
  own: Float64Array[],
  free: readonly number[],
): Float64Array[] {
  const rows = rowViews(free.length, c.m);
  return free.map((i, h) => {
    const row = rows[h]!;
    row.set(own[i]!);
    if (!c.priced) return row;
    for (const e of c.predEdges[i]!) {
      const b = assign[c.edges[e]!.u]!;
      if (b >= 0) row[b]! -= joinSaves(c, e, b);
    }
    for (const e of c.succEdges[i]!) {
      const b = assign[c.edges[e]!.v]!;
      if (b >= 0) row[b]! -= joinSaves(c, e, b);
    }
    return row;
  });
}

/**
 * Places the displaced ops (`assign` −1) with every other op fixed: in topological order each
 * takes argmin row + μ·t among the classes with room, and the heuristic's weight search picks the
 * cheapest μ whose placement meets the SLA, so the slack is shared among them rather than taken by
 * the first. `own`: the own rows of MoveTables. Null when no μ meets the SLA or
 * some op finds no class with room.
 */
export function placeDisplaced(
  c: Compiled,
  assign: Int32Array,
  own: Float64Array[],
  slaMs: number,
): Int32Array | null {
  const free: number[] = [];
  for (const i of c.order) if (assign[i]! < 0) free.push(i);
  const rows = displacedRows(c, assign, own, free);
  const base = new Float64Array(c.m);
  for (let i = 0; i < c.n; i++) if (assign[i]! >= 0) base[assign[i]!]! += c.units[i]![assign[i]!]!;
  const used = new Float64Array(c.m);
  const { m, cap } = c;
  const build = (mu: number): Int32Array | null => {
    const out = Int32Array.from(assign);
    used.set(base);
    // μ = ∞ (the weight search's last resort) is the fastest class with room.
    const timeOnly = !Number.isFinite(mu);
    for (let h = 0; h < free.length; h++) {
      const i = free[h]!;
      const time = c.p.timeMs[i]!;
      const units = c.units[i]!;
      const row = rows[h]!;
      let best = -1;
      let bestKey = Infinity;
      // The count is checked only for a class that would win (it rarely binds); a class that
      // cannot run the op has an infinite (or, at μ = 0, NaN) key.
      for (let k = 0; k < m; k++) {
        const key = timeOnly ? time[k]! : row[k]! + mu * time[k]!;
        if (key < bestKey && used[k]! + units[k]! <= cap[k]!) {
          best = k;
          bestKey = key;
        }
      }
      if (best < 0) return null;
      out[i] = best;
      used[best]! += units[best]!;
    }
    return out;
  };
  let budget = 0;
  for (const row of rows) {
    let least = Infinity;
    for (const x of row) if (x < least) least = x;
    budget += Math.max(least, 0);
  }
  const found = weightSearch(c, slaMs, Math.max(budget, EPS) / Math.max(slaMs, EPS), build);
  let best: Int32Array | null = null;
  let bestCost = Infinity;
  for (const x of found) {
    if (x.latencyMs > slaMs + EPS) continue;
    const cost = totalCost(c, x.assign);
    if (cost < bestCost) {
      best = x.assign;
      bestCost = cost;
    }
  }
  return best;
}

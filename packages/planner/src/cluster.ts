import { type Compiled, transferCost, transferMs } from './problem.js';
import { LiveSchedule, usage } from './schedule.js';

const EPS = 1e-9;

/**
 * Groups of tasks joined by edges whose ends share a class (colocated clusters), each in index
 * order, ordered by their first task; with `only`, just those holding a marked task (found from
 * the marked tasks, so a small change looks at a small part of the graph).
 */
function clusters(c: Compiled, assign: Int32Array, only?: Uint8Array): number[][] {
  const seen = new Uint8Array(c.n);
  const groups: number[][] = [];
  for (let s = 0; s < c.n; s++) {
    if (seen[s] || (only && !only[s])) continue;
    seen[s] = 1;
    const group = [s];
    for (let h = 0; h < group.length; h++) {
      const i = group[h]!;
      const a = assign[i]!;
      for (const e of c.predEdges[i]!) {
        const u = c.edges[e]!.u;
        if (!seen[u] && assign[u] === a) {
          seen[u] = 1;
          group.push(u);
        }
      }
      for (const e of c.succEdges[i]!) {
        const v = c.edges[e]!.v;
        if (!seen[v] && assign[v] === a) {
          seen[v] = 1;
          group.push(v);
        }
      }
    }
    groups.push(group.sort((x, y) => x - y));
  }
  return only ? groups.sort((x, y) => x[0]! - y[0]!) : groups;
}

/**
 * Δ of the crossings' cost when every task of `group` (each marked in `mark`) moves to class k:
 * edges inside the group keep their ends together, edges leaving it are re-priced.
 */
export function crossingDelta(
  c: Compiled,
  assign: Int32Array,
  group: readonly number[],
  mark: Uint8Array,
  k: number,
): number {
  let delta = 0;
  for (const i of group) {
    for (const e of c.predEdges[i]!) {
      const u = c.edges[e]!.u;
      if (mark[u]) continue;
      delta += transferCost(c, e, assign[u]!, k) - transferCost(c, e, assign[u]!, assign[i]!);
    }
    for (const e of c.succEdges[i]!) {
      const v = c.edges[e]!.v;
      if (mark[v]) continue;
      delta += transferCost(c, e, k, assign[v]!) - transferCost(c, e, assign[i]!, assign[v]!);
    }
  }
  return delta;
}

/**
 * Moves a whole colocated cluster onto the class of a task it sends to or receives from, when
 * that lowers the cost (ops plus priced crossings) within the SLA and the counts. Single and pair
 * moves cannot do this: moving one member of a cluster adds a crossing inside it. Only for
 * problems whose crossings have a price; with `only`, just clusters holding a marked task move.
 */
export function clusterDescend(c: Compiled, assign: Int32Array, slaMs: number, only?: Uint8Array): boolean {
  if (!c.priced) return false;
  const used = usage(c, assign);
  const inCluster = new Uint8Array(c.n);
  const end = new Float64Array(c.n);
  const live = new LiveSchedule(c, assign, slaMs);
  let improved = false;
  // The classes of a group's outside neighbours, in the order first met (a stamp per class).
  const targets: number[] = [];
  const stamp = new Int32Array(c.m);
  let tick = 0;
  const target = (k: number) => {
    if (stamp[k] === tick) return;
    stamp[k] = tick;
    targets.push(k);
  };
  for (const group of clusters(c, assign, only)) {
    const a = assign[group[0]!]!;
    for (const i of group) inCluster[i] = 1;
    targets.length = 0;
    tick++;
    for (const i of group) {
      for (const e of c.predEdges[i]!) if (!inCluster[c.edges[e]!.u]) target(assign[c.edges[e]!.u]!);
      for (const e of c.succEdges[i]!) if (!inCluster[c.edges[e]!.v]) target(assign[c.edges[e]!.v]!);
    }
    let best = -1;
    let tol = 0;
    for (const i of group) tol += Math.abs(c.coef[i]![a]!);
    let bestDelta = -EPS * tol;
    for (const k of targets) {
      if (k === a) continue;
      let delta = 0;
      let units = 0;
      for (const i of group) {
        delta += c.coef[i]![k]! - c.coef[i]![a]!;
        units += c.units[i]![k]!;
      }
      if (!Number.isFinite(delta) || used[k]! + units > c.cap[k]!) continue;
      delta += crossingDelta(c, assign, group, inCluster, k);
      if (delta < bestDelta) {
        best = k;
        bestDelta = delta;
      }
    }
    if (best >= 0) group.sort((x, y) => c.rank[x]! - c.rank[y]!);
    if (best >= 0 && groupFits(c, assign, live.ef, live.ls, group, inCluster, best, slaMs, end)) {
      for (const i of group) assign[i] = best;
      if (live.update(group) > slaMs + EPS) {
        for (const i of group) assign[i] = a;
        live.update(group);
      } else {
        for (const i of group) {
          used[a]! -= c.units[i]![a]!;
          used[best]! += c.units[i]![best]!;
        }
        improved = true;
      }
    }
    for (const i of group) inCluster[i] = 0;
  }
  return improved;
}

/**
 * Whether `group` (in topological order, marked in `mark`) fits on class k against the current
 * schedule: each member's finish from its outside predecessors' finish times, every outside
 * successor's latest start kept. Exact unless a path leaves the group and comes back, so a move it
 * passes is still checked with a full forward pass; it spares that pass for most that fail.
 */
function groupFits(
  c: Compiled,
  assign: Int32Array,
  ef: Float64Array,
  ls: Float64Array,
  group: readonly number[],
  mark: Uint8Array,
  k: number,
  slaMs: number,
  end: Float64Array,
): boolean {
  for (const i of group) {
    let start = 0;
    for (const e of c.predEdges[i]!) {
      const u = c.edges[e]!.u;
      const arrive = mark[u] ? end[u]! : ef[u]! + transferMs(c, e, assign[u]!, k);
      if (arrive > start) start = arrive;
    }
    end[i] = start + c.p.timeMs[i]![k]!;
    if (end[i]! > slaMs + EPS) return false;
    for (const e of c.succEdges[i]!) {
      const w = c.edges[e]!.v;
      if (!mark[w] && end[i]! + transferMs(c, e, k, assign[w]!) > ls[w]! + EPS) return false;
    }
  }
  return true;
}

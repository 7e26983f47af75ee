import { type Compiled, transferCost } from './problem.js';
import { forward, usage } from './schedule.js';

const EPS = 1e-9;

/** Groups of tasks joined by edges whose ends share a class (a colocated cluster). */
function clusters(c: Compiled, assign: Int32Array): number[][] {
  const parent = Int32Array.from({ length: c.n }, (_, i) => i);
  const root = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  for (const e of c.edges) if (assign[e.u] === assign[e.v]) parent[root(e.u)] = root(e.v);
  const groups = new Map<number, number[]>();
  for (let i = 0; i < c.n; i++) {
    const r = root(i);
    const g = groups.get(r);
    if (g) g.push(i);
    else groups.set(r, [i]);
  }
  return [...groups.values()];
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
  let improved = false;
  for (const group of clusters(c, assign)) {
    if (only && !group.some((i) => only[i])) continue;
    const a = assign[group[0]!]!;
    for (const i of group) inCluster[i] = 1;
    const targets = new Set<number>();
    for (const i of group) {
      for (const e of c.predEdges[i]!) if (!inCluster[c.edges[e]!.u]) targets.add(assign[c.edges[e]!.u]!);
      for (const e of c.succEdges[i]!) if (!inCluster[c.edges[e]!.v]) targets.add(assign[c.edges[e]!.v]!);
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
    if (best >= 0) {
      for (const i of group) assign[i] = best;
      if (forward(c, assign).latencyMs > slaMs + EPS) for (const i of group) assign[i] = a;
      else {
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

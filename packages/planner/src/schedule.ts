import { type Compiled, transferCost, transferMs } from './problem.js';

/** Earliest and latest times of an assignment (every task runs once per request). */
export interface Schedule {
  /** Earliest start per task. */
  es: Float64Array;
  /** Earliest finish per task. */
  ef: Float64Array;
  latencyMs: number;
}

export function duration(c: Compiled, assign: Int32Array, i: number): number {
  return c.p.timeMs[i]![assign[i]!]!;
}

export function forward(c: Compiled, assign: Int32Array): Schedule {
  const es = new Float64Array(c.n);
  const ef = new Float64Array(c.n);
  let latencyMs = 0;
  for (const i of c.order) {
    let s = 0;
    for (const k of c.predEdges[i]!) {
      const e = c.edges[k]!;
      const t = ef[e.u]! + transferMs(c, k, assign[e.u]!, assign[i]!);
      if (t > s) s = t;
    }
    es[i] = s;
    ef[i] = s + duration(c, assign, i);
    if (ef[i]! > latencyMs) latencyMs = ef[i]!;
  }
  return { es, ef, latencyMs };
}

/** Latest start per task such that every task still finishes by `deadline`. */
export function latestStarts(c: Compiled, assign: Int32Array, deadline: number): Float64Array {
  const ls = new Float64Array(c.n);
  for (let h = c.n - 1; h >= 0; h--) {
    const i = c.order[h]!;
    let f = deadline;
    for (const k of c.succEdges[i]!) {
      const e = c.edges[k]!;
      const t = ls[e.v]! - transferMs(c, k, assign[i]!, assign[e.v]!);
      if (t < f) f = t;
    }
    ls[i] = f - duration(c, assign, i);
  }
  return ls;
}

/** One longest path, source to sink, as task indexes. */
export function criticalPath(c: Compiled, assign: Int32Array, s: Schedule): number[] {
  let end = -1;
  for (let i = 0; i < c.n; i++) if (end < 0 || s.ef[i]! > s.ef[end]!) end = i;
  const path = [end];
  let cur = end;
  for (;;) {
    let next = -1;
    for (const k of c.predEdges[cur]!) {
      const e = c.edges[k]!;
      const arrive = s.ef[e.u]! + transferMs(c, k, assign[e.u]!, assign[cur]!);
      if (Math.abs(arrive - s.es[cur]!) <= 1e-9 * Math.max(1, arrive)) {
        next = e.u;
        break;
      }
    }
    if (next < 0) break;
    path.push(next);
    cur = next;
  }
  return path.reverse();
}

/** Objective value of an assignment: Σ coef + Σ over crossing edges of their price (and γ · ms). */
export function totalCost(c: Compiled, assign: Int32Array): number {
  let sum = 0;
  for (let i = 0; i < c.n; i++) sum += c.coef[i]![assign[i]!]!;
  if (c.priced) sum += transfersCost(c, assign);
  return sum;
}

/** The part of the objective that crossing edges cost. */
export function transfersCost(c: Compiled, assign: Int32Array): number {
  let sum = 0;
  for (let k = 0; k < c.edges.length; k++) {
    const e = c.edges[k]!;
    sum += transferCost(c, k, assign[e.u]!, assign[e.v]!);
  }
  return sum;
}

/** Devices used per class; compare with c.cap. */
export function usage(c: Compiled, assign: Int32Array): number[] {
  const used = new Array<number>(c.m).fill(0);
  for (let i = 0; i < c.n; i++) used[assign[i]!]! += c.units[i]![assign[i]!]!;
  return used;
}

/** Earliest start of task i if it ran on class k, given predecessors' finish times `ef`. */
export function startOf(c: Compiled, assign: Int32Array, ef: Float64Array, i: number, k: number): number {
  let start = 0;
  for (const e of c.predEdges[i]!) {
    const u = c.edges[e]!.u;
    start = Math.max(start, ef[u]! + transferMs(c, e, assign[u]!, k));
  }
  return start;
}

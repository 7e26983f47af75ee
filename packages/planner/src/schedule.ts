import { type Compiled, transferCost, transferMs } from './problem.js';

/** Earliest and latest times of an assignment (every task runs once per request). */
export interface Schedule {
  /** Earliest start per task. */
  es: Float64Array;
  /** Earliest finish per task. */
  ef: Float64Array;
  latencyMs: number;
}

export function forward(c: Compiled, assign: Int32Array): Schedule {
  const es = new Float64Array(c.n);
  const ef = new Float64Array(c.n);
  return { es, ef, latencyMs: forwardInto(c, assign, es, ef) };
}

/**
 * The end-to-end latency of an assignment; its earliest starts and finishes are written into `es`
 * and `ef` (scratch arrays a caller that only wants the latency reuses: a weight search runs a pass
 * per weight).
 */
export function forwardInto(c: Compiled, assign: Int32Array, es: Float64Array, ef: Float64Array): number {
  const { u, predStart, pred } = c.flat;
  const { order } = c;
  const timeMs = c.p.timeMs;
  let latencyMs = 0;
  for (let h = 0; h < c.n; h++) {
    const i = order[h]!;
    const a = assign[i]!;
    let s = 0;
    for (let q = predStart[i]!; q < predStart[i + 1]!; q++) {
      const e = pred[q]!;
      const b = assign[u[e]!]!;
      const t = ef[u[e]!]! + transferMs(c, e, a, b);
      if (t > s) s = t;
    }
    const f = s + timeMs[i]![a]!;
    es[i] = s;
    ef[i] = f;
    if (f > latencyMs) latencyMs = f;
  }
  return latencyMs;
}

/**
 * Latest start per task such that every task still finishes by `deadline`. Into `ls` when given,
 * recomputing only the tasks up to position `last` of the topological order (those after it must
 * be current there: no task after it has changed class since).
 */
export function latestStarts(
  c: Compiled,
  assign: Int32Array,
  deadline: number,
  ls = new Float64Array(c.n),
  last = c.n - 1,
): Float64Array {
  const { v, succStart, succ } = c.flat;
  const { order } = c;
  const timeMs = c.p.timeMs;
  for (let h = last; h >= 0; h--) {
    const i = order[h]!;
    const a = assign[i]!;
    let f = deadline;
    for (let q = succStart[i]!; q < succStart[i + 1]!; q++) {
      const e = succ[q]!;
      const b = assign[v[e]!]!;
      const t = ls[v[e]!]! - transferMs(c, e, a, b);
      if (t < f) f = t;
    }
    ls[i] = f - timeMs[i]![a]!;
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
export function usage(c: Compiled, assign: Int32Array): Float64Array {
  const used = new Float64Array(c.m);
  for (let i = 0; i < c.n; i++) used[assign[i]!]! += c.units[i]![assign[i]!]!;
  return used;
}

/** Earliest start of task i if it ran on class k, given predecessors' finish times `ef`. */
export function startOf(c: Compiled, assign: Int32Array, ef: Float64Array, i: number, k: number): number {
  const { u, predStart, pred } = c.flat;
  let start = 0;
  for (let q = predStart[i]!; q < predStart[i + 1]!; q++) {
    const e = pred[q]!;
    const b = assign[u[e]!]!;
    const t = ef[u[e]!]! + transferMs(c, e, b, k);
    if (t > start) start = t;
  }
  return start;
}

/**
 * Earliest finishes and latest starts (against a fixed deadline) kept current while tasks move:
 * after a move only the tasks it can reach are recomputed (downstream for finishes, upstream for
 * latest starts), in topological order, stopping where a value does not change.
 */
export class LiveSchedule {
  readonly es: Float64Array;
  readonly ef: Float64Array;
  readonly ls: Float64Array;
  latencyMs = 0;
  private readonly pending: Uint8Array;

  constructor(
    private readonly c: Compiled,
    private readonly assign: Int32Array,
    private readonly deadline: number,
  ) {
    const s = forward(c, assign);
    this.es = s.es;
    this.ef = s.ef;
    this.latencyMs = s.latencyMs;
    this.ls = latestStarts(c, assign, deadline);
    this.pending = new Uint8Array(c.n);
  }

  /** Recomputes what the class changes of `moved` reach; returns the new latency. */
  update(moved: readonly number[]): number {
    const { c, assign, es, ef, ls, pending } = this;
    const { u, v, predStart, pred, succStart, succ } = c.flat;
    const { rank, order } = c;
    const timeMs = c.p.timeMs;
    let lo = c.n;
    for (const i of moved) {
      pending[i] = 2;
      if (rank[i]! < lo) lo = rank[i]!;
    }
    for (let h = lo; h < c.n; h++) {
      const i = order[h]!;
      if (!pending[i]) continue;
      const self = pending[i] === 2;
      pending[i] = 0;
      const a = assign[i]!;
      let s = 0;
      for (let q = predStart[i]!; q < predStart[i + 1]!; q++) {
        const e = pred[q]!;
        const b = assign[u[e]!]!;
        const t = ef[u[e]!]! + transferMs(c, e, b, a);
        if (t > s) s = t;
      }
      const f = s + timeMs[i]![a]!;
      es[i] = s;
      // A moved task's successors see new transfers even when its finish stays.
      if (f === ef[i] && !self) continue;
      ef[i] = f;
      for (let q = succStart[i]!; q < succStart[i + 1]!; q++)
        if (!pending[v[succ[q]!]!]) pending[v[succ[q]!]!] = 1;
    }
    let hi = -1;
    for (const i of moved) {
      pending[i] = 2;
      if (rank[i]! > hi) hi = rank[i]!;
      for (let q = predStart[i]!; q < predStart[i + 1]!; q++) {
        const w = u[pred[q]!]!;
        if (!pending[w]) pending[w] = 1;
        if (rank[w]! > hi) hi = rank[w]!;
      }
    }
    for (let h = hi; h >= 0; h--) {
      const i = order[h]!;
      if (!pending[i]) continue;
      pending[i] = 0;
      const a = assign[i]!;
      let f = this.deadline;
      for (let q = succStart[i]!; q < succStart[i + 1]!; q++) {
        const e = succ[q]!;
        const b = assign[v[e]!]!;
        const t = ls[v[e]!]! - transferMs(c, e, a, b);
        if (t < f) f = t;
      }
      const l = f - timeMs[i]![a]!;
      if (l === ls[i]) continue;
      ls[i] = l;
      for (let q = predStart[i]!; q < predStart[i + 1]!; q++)
        if (!pending[u[pred[q]!]!]) pending[u[pred[q]!]!] = 1;
    }
    let latency = 0;
    for (let i = 0; i < c.n; i++) if (ef[i]! > latency) latency = ef[i]!;
    this.latencyMs = latency;
    return latency;
  }
}

import type { Compiled } from './problem.js';
import { criticalPath, forward, forwardInto, latestStarts } from './schedule.js';

// Starting placements for the heuristic: preference lists, weighted constructions and the
// searches over their weights.

const EPS = 1e-9;

/** Tasks with the fewest usable classes first, so capacity goes to those that need it. */
export function leastChoiceFirst(c: Compiled, prefs: Int32Array[]): number[] {
  return [...Array(c.n).keys()].sort((a, b) => prefs[a]!.length - prefs[b]!.length);
}

/**
 * Each task on argmin_k coef + w_i·t among classes with room (w_i = ∞: fastest; coef from `coefs`,
 * c.coef unless given). Hot path of the
 * weight searches, hence the plain loops.
 */
export function initial(
  c: Compiled,
  prefs: Int32Array[],
  order: number[],
  w: (i: number) => number,
  coefs: Float64Array[] = c.coef,
): Int32Array | null {
  const assign = new Int32Array(c.n).fill(-1);
  const used = new Float64Array(c.m);
  for (const i of order) {
    const wi = w(i);
    const coef = coefs[i]!;
    const time = c.p.timeMs[i]!;
    const units = c.units[i]!;
    const fastest = !Number.isFinite(wi);
    let best = -1;
    let bestKey = Infinity;
    const ks = prefs[i]!;
    for (let h = 0; h < ks.length; h++) {
      const k = ks[h]!;
      const v = fastest ? time[k]! : coef[k]! + wi * time[k]!;
      if (v < bestKey && used[k]! + units[k]! <= c.cap[k]!) {
        best = k;
        bestKey = v;
      }
    }
    if (best < 0) return null;
    assign[i] = best;
    used[best]! += units[best]!;
  }
  return assign;
}

/**
 * Coefficients that take class k as a flood: a task on k costs its coefficient alone (its edges
 * there assumed colocated), on any other class `own` (its edges assumed crossing).
 */
export function floodCoefs(c: Compiled, own: Float64Array[], k: number): Float64Array[] {
  return own.map((row, i) => {
    const out = row.slice();
    out[k] = c.coef[i]![k]!;
    return out;
  });
}

/**
 * Transfer-aware construction (HEFT-like, cost-weighted): in topological order each task takes the
 * class minimising coef + price of the crossings from its placed predecessors + μ·(finish time
 * there), where finish includes their transfers, so chains stay colocated unless moving pays.
 */
export function constructTopo(c: Compiled, prefs: Int32Array[], mu: number): Int32Array | null {
  const assign = new Int32Array(c.n).fill(-1);
  const used = new Float64Array(c.m);
  const ef = new Float64Array(c.n);
  const start = new Float64Array(c.m);
  const crossing = new Float64Array(c.m);
  const fastest = !Number.isFinite(mu);
  const { m, priced, gamma, tau, send, recv } = c;
  for (const i of c.order) {
    const ks = prefs[i]!;
    const nk = ks.length;
    start.fill(0);
    crossing.fill(0);
    const preds = c.predEdges[i]!;
    // Dense loops over every class (this runs for every task × predecessor × class); the
    // predecessor's own class, where the edge is colocated (no hop, no price), is corrected after.
    for (let p = 0; p < preds.length; p++) {
      const e = preds[p]!;
      const at = e * m;
      const u = c.edges[e]!.u;
      const au = assign[u]!;
      const base = ef[u]!;
      const tauU = tau[at + au]!;
      const sendU = send[e]![au]!;
      const recvRow = recv[e]!;
      const startAu = start[au]!;
      if (priced) {
        // transferCost inlined.
        for (let k = 0; k < m; k++) {
          const hop = Math.max(tauU, tau[at + k]!);
          if (base + hop > start[k]!) start[k] = base + hop;
          crossing[k]! += sendU + recvRow[k]! + gamma * hop;
        }
        crossing[au]! -= sendU + recvRow[au]! + gamma * tauU;
      } else {
        for (let k = 0; k < m; k++) {
          const arrive = base + Math.max(tauU, tau[at + k]!);
          if (arrive > start[k]!) start[k] = arrive;
        }
      }
      start[au] = Math.max(base, startAu);
    }
    const coef = c.coef[i]!;
    const time = c.p.timeMs[i]!;
    const units = c.units[i]!;
    let best = -1;
    let bestKey = Infinity;
    let bestEnd = 0;
    for (let h = 0; h < nk; h++) {
      const k = ks[h]!;
      if (used[k]! + units[k]! > c.cap[k]!) continue;
      const end = start[k]! + time[k]!;
      const key = fastest ? end : coef[k]! + crossing[k]! + mu * end;
      if (key < bestKey) {
        best = k;
        bestKey = key;
        bestEnd = end;
      }
    }
    if (best < 0) return null;
    assign[i] = best;
    used[best]! += units[best]!;
    ef[i] = bestEnd;
  }
  return assign;
}

export type Candidate = { assign: Int32Array; latencyMs: number; mu: number };

/**
 * Lagrangian-style placement: every task on argmin_k coef + μ·t (ties to faster). Latency falls as
 * μ grows, so a bisection on μ (log scale) finds the cheapest weight whose placement meets the SLA.
 */
export function weightSearch(
  c: Compiled,
  slaMs: number,
  mu0: number,
  build: (mu: number) => Int32Array | null,
): Candidate[] {
  const es = new Float64Array(c.n);
  const ef = new Float64Array(c.n);
  const at = (mu: number): Candidate | null => {
    const assign = build(mu);
    return assign ? { assign, latencyMs: forwardInto(c, assign, es, ef), mu } : null;
  };
  const out: Candidate[] = [];
  let lo = 0;
  const cheap = at(0);
  if (cheap) out.push(cheap);
  if (cheap && cheap.latencyMs <= slaMs + EPS) return out;
  let hi = mu0;
  let best: Candidate | null = null;
  for (let k = 0; k < 40; k++, hi *= 4) {
    const cand = at(hi);
    if (cand && cand.latencyMs <= slaMs + EPS) {
      best = cand;
      break;
    }
    lo = hi;
  }
  if (!best) {
    const fast = at(Infinity);
    if (fast) out.push(fast);
    return out;
  }
  for (let k = 0; k < 8 && hi / Math.max(lo, EPS) > 1.15; k++) {
    const mid = lo > 0 ? Math.sqrt(lo * hi) : hi / 4;
    const cand = at(mid);
    if (cand && cand.latencyMs <= slaMs + EPS) {
      best = cand;
      hi = mid;
    } else lo = mid;
  }
  out.push(best);
  const looser = at(hi * 2);
  if (looser) out.push(looser);
  return out;
}

/** Refinement rounds of the per-task weights after the global weight search. */
const FLOW_ROUNDS = 8;

/**
 * Per-task weights (a subgradient step on the Lagrangian of the latency constraints): from the
 * global μ, tasks on the critical path of an SLA-missing placement get heavier, and after a
 * placement that meets the SLA the tasks with float get lighter, so time is bought where paths
 * are tight and saved where they are not.
 */
export function flowSearch(
  c: Compiled,
  slaMs: number,
  prefs: Int32Array[],
  order: number[],
  mu: number,
  coefs: Float64Array[] = c.coef,
): Candidate[] {
  const w = new Float64Array(c.n).fill(mu);
  const out: Candidate[] = [];
  for (let round = 0; round < FLOW_ROUNDS; round++) {
    const assign = initial(c, prefs, order, (i) => w[i]!, coefs);
    if (!assign) return out;
    const s = forward(c, assign);
    if (s.latencyMs <= slaMs + EPS) {
      out.push({ assign, latencyMs: s.latencyMs, mu });
      const ls = latestStarts(c, assign, slaMs);
      for (let i = 0; i < c.n; i++) if (ls[i]! - s.es[i]! > 0.05 * slaMs) w[i]! *= 0.6;
    } else {
      for (const i of criticalPath(c, assign, s)) w[i] = Math.max(w[i]! * 1.6, mu * 0.05);
    }
  }
  return out;
}

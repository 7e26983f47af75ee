import { type PlanOptions, type PlanResult, planHeuristic } from './plan.js';
import type { PlacementProblem } from './problem.js';

export interface ParetoPoint {
  slaMs: number;
  latencyMs: number;
  /** Objective: $/h at the rate, or $ per request. */
  cost: number;
  plan: PlanResult;
}

/**
 * Cost-versus-latency frontier: SLAs spaced between the fastest and the cheapest placement,
 * each solved (by the heuristic unless `solve` is given), dominated points dropped.
 */
export function paretoFrontier(
  problem: PlacementProblem,
  o: Omit<PlanOptions, 'slaMs'> & {
    points?: number;
    solve?: (p: PlacementProblem, o: PlanOptions) => PlanResult;
  },
): ParetoPoint[] {
  const solve = o.solve ?? planHeuristic;
  const cheapest = solve(problem, { ...o, slaMs: Number.MAX_SAFE_INTEGER });
  if (cheapest.status === 'infeasible') return [];
  const probe = solve(problem, { ...o, slaMs: Number.MIN_VALUE });
  const lo = probe.status === 'infeasible' ? (probe.bestLatencyMs ?? cheapest.latencyMs) : probe.latencyMs;
  const hi = cheapest.latencyMs;
  const k = Math.max(2, o.points ?? 8);
  const pts: ParetoPoint[] = [];
  for (let s = 0; s < k; s++) {
    const slaMs = lo + ((hi - lo) * s) / (k - 1);
    const plan = solve(problem, { ...o, slaMs: slaMs * (1 + 1e-9) });
    if (plan.status === 'infeasible') continue;
    pts.push({ slaMs, latencyMs: plan.latencyMs, cost: plan.usdPerHour ?? plan.usdPerRequest, plan });
  }
  pts.sort((a, b) => a.latencyMs - b.latencyMs || a.cost - b.cost);
  const front: ParetoPoint[] = [];
  for (const p of pts) if (front.length === 0 || p.cost < front[front.length - 1]!.cost) front.push(p);
  return front;
}

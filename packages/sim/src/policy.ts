import { type PlacementProblem, planHeuristic } from '@stitch/planner';

/** What a control policy sees every control period (all figures over the last period). */
export interface Snapshot {
  /** Simulated time, seconds. */
  timeS: number;
  periodS: number;
  /** The fleet as a placement problem (class counts are the fleet). */
  problem: PlacementProblem;
  slaMs: number;
  /** Class id per task, in `problem.tasks` order. */
  placement: readonly string[];
  /** Requests per second that arrived. */
  arrivalRate: number;
  /** Busy share of each class's devices, in `problem.classes` order. */
  utilisation: readonly number[];
  /** Share of the requests completed in the period that met the SLA; null when none completed. */
  attainment: number | null;
  /** Op executions waiting in queues now. */
  queued: number;
}

/** A policy's answer: a new class per task (tasks whose class changes are migrations), or nothing. */
export interface Decision {
  placement?: readonly string[];
}

/** Invoked every control period against the simulated clock; pure: no IO, no wall clock. */
export type Policy = (snapshot: Snapshot) => Decision | null | undefined;

/** Never moves anything: the initial placement for the whole run. */
export const staticPolicy: Policy = () => null;

export interface ReplanOptions {
  /** Re-plan when any class's utilisation exceeds this. @default 0.85 */
  high?: number;
  /** …or when the period's attainment falls below this. @default 0.99 */
  minAttainment?: number;
  /** The planner sizes replicas for the observed rate × this. @default 1.25 */
  headroom?: number;
}

/**
 * Re-plans with the planner's heuristic (the same `planHeuristic` the coordinator runs) at the
 * observed rate when a class runs hot or the SLA slips; keeps the placement when the planner finds
 * nothing better that fits the fleet.
 */
export function replanOnUtilisation(o: ReplanOptions = {}): Policy {
  const high = o.high ?? 0.85;
  const minAttainment = o.minAttainment ?? 0.99;
  const headroom = o.headroom ?? 1.25;
  return (s) => {
    const hot = s.utilisation.some((u) => u > high);
    const slipping = s.attainment !== null && s.attainment < minAttainment;
    if ((!hot && !slipping) || s.arrivalRate <= 0) return null;
    const plan = planHeuristic(s.problem, { slaMs: s.slaMs, rate: s.arrivalRate * headroom });
    if (plan.status === 'infeasible') return null;
    const placement = plan.placements.map((p) => p.classId);
    return placement.some((c, i) => c !== s.placement[i]) ? { placement } : null;
  };
}

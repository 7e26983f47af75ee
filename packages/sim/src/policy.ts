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
  /** Each op over the period, in `problem.tasks` order (the simulator always fills it). */
  ops?: readonly OpPeriod[];
  /** What the policy's last decision carried in `state` (undefined before it carried any). */
  state?: unknown;
}

/** One op over the last control period, as the simulator measured it. */
export interface OpPeriod {
  /** Replicas serving it now. */
  replicas: number;
  /** Executions that reached it (all their inputs in) during the period. */
  arrivals: number;
  /** Executions that started on a replica during the period. */
  started: number;
  /** Their mean service time on one replica, ms; null when none started. */
  meanServiceMs: number | null;
  /** Executions waiting in its queue now. */
  queued: number;
}

/**
 * A policy's answer, or nothing. `placement`: a new class per task (tasks whose class changes are
 * migrations; the replicas are then set again by the run's `replicas` mode). `replicas`: replicas per
 * task id on its class after any move (tasks not named keep theirs; a rise is a scale-out, a fall a
 * scale-in). `state`: handed back in the next snapshot, so a policy that remembers stays a function.
 */
export interface Decision {
  placement?: readonly string[];
  replicas?: Readonly<Record<string, number>>;
  state?: unknown;
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

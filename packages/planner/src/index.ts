export { PlanError, PlanErrorCode } from './errors.js';
export type { GenerateOptions, Perturbation } from './generate.js';
export { generateProblem, PERTURBATIONS, perturbProblem, withBindingCounts } from './generate.js';
export type { IncrementalResult, PreviousPlan } from './incremental.js';
export { planIncremental } from './incremental.js';
export type { DemandRowLike, DerivedOptions } from './input.js';
export { placementHintApplies, problemFromDemand, problemFromProfile } from './input.js';
export type { MilpSolver } from './milp.js';
export { loadMilpSolver } from './milp.js';
export type { ParetoPoint } from './pareto.js';
export { paretoFrontier } from './pareto.js';
export type { Placement, PlanFeasible, PlanInfeasible, PlanOptions, PlanResult, Transfer } from './plan.js';
export { planExact, planHeuristic } from './plan.js';
export type { ClassSpec, EdgeSpec, PlacementProblem, TaskSpec } from './problem.js';
export type {
  ClassOption,
  OperatorObservation,
  RebalanceAction,
  RebalanceConfig,
  RebalanceResult,
  RebalanceState,
} from './rebalance.js';
export { crossingMs, rebalance } from './rebalance.js';

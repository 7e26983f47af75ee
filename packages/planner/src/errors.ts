/** Every code a `PlanError` can carry; the values are stable. Infeasible problems are results, not errors. */
export const PlanErrorCode = {
  /** A problem, profile, option or CLI flag is malformed or out of range. */
  Input: 'PLAN_INPUT',
  /** The MILP solver could not be loaded, failed, or found no placement in its time limit. */
  Solver: 'PLAN_SOLVER',
} as const;
export type PlanErrorCode = (typeof PlanErrorCode)[keyof typeof PlanErrorCode];

/** The one error class of @stitch/planner; the message says what to change. */
export class PlanError extends Error {
  readonly code: PlanErrorCode;
  /** Exit status a CLI should use: 2 for bad input, 1 for a solver failure. */
  readonly exitCode: number;

  constructor(code: PlanErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = code === PlanErrorCode.Input ? 2 : 1;
  }
}

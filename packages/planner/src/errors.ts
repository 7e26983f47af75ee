/** Stable codes of @stitch/planner errors. Infeasible problems are results, not errors. */
export type PlanErrorCode = 'PLAN_INPUT' | 'PLAN_SOLVER';

/** The one error class of @stitch/planner; the message says what to change. */
export class PlanError extends Error {
  override readonly name = 'PlanError';
  readonly code: PlanErrorCode;
  /** Exit status a CLI should use: 2 for bad input, 1 for a solver failure. */
  readonly exitCode: number;

  constructor(code: PlanErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.exitCode = code === 'PLAN_INPUT' ? 2 : 1;
  }
}

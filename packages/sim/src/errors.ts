/** Every code a `SimError` can carry; the values are stable. */
export const SimErrorCode = {
  /** An option, trace entry or policy decision is malformed or out of range. */
  Input: 'SIM_INPUT',
  /** The fleet cannot host the placement (a class has fewer devices than one replica of each op on it). */
  Capacity: 'SIM_CAPACITY',
  /** The planner found no initial placement for the fleet at the planned rate. */
  Plan: 'SIM_PLAN',
} as const;
export type SimErrorCode = (typeof SimErrorCode)[keyof typeof SimErrorCode];

/** The one error class of @stitch/sim; the message says what to change. */
export class SimError extends Error {
  readonly code: SimErrorCode;
  /** Exit status a CLI should use: 2 for bad input, 3 when the fleet or plan cannot hold the load. */
  readonly exitCode: number;

  constructor(code: SimErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = code === SimErrorCode.Input ? 2 : 3;
  }
}

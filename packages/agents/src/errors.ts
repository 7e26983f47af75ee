/** Stable codes of @stitch/agents errors; they cross NATS as the error header and are shown to users. */
export type AgentsErrorCode =
  | 'CALC_SYNTAX'
  | 'CALC_MATH'
  | 'OP_NOT_CONFIGURED'
  | 'OP_UNKNOWN'
  | 'DEPLOY_NO_NODES'
  | 'DEPLOY_INFEASIBLE'
  | 'REQUEST_FAILED';

export class AgentsError extends Error {
  readonly code: AgentsErrorCode;

  constructor(code: AgentsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AgentsError';
    this.code = code;
  }
}

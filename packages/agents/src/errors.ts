/** Every code an `AgentsError` can carry; the values are stable: they cross NATS as the error header and are shown to users. */
export const AgentsErrorCode = {
  /** A calculator expression does not parse. */
  CalcSyntax: 'CALC_SYNTAX',
  /** A calculator expression has no finite value. */
  CalcMath: 'CALC_MATH',
  /** An operator actor was asked to run before the coordinator configured it. */
  OpNotConfigured: 'OP_NOT_CONFIGURED',
  /** A `configure` message's OpConfig breaks its schema (types, sizes, estimatedMs cap, an unallowed natsUrl). */
  OpConfigInvalid: 'OP_CONFIG_INVALID',
  /** A tool or op kind this package does not implement. */
  OpUnknown: 'OP_UNKNOWN',
  /** No live node hosts operator actors. */
  DeployNoNodes: 'DEPLOY_NO_NODES',
  /** No placement of the graph on the live nodes is feasible. */
  DeployInfeasible: 'DEPLOY_INFEASIBLE',
  /** An op of a request failed for good (not a timeout that a retry would fix). */
  RequestFailed: 'REQUEST_FAILED',
  /** A privacy filter's configuration is unusable (unknown phone region, bad pattern name or syntax, too many). */
  PrivacyConfigInvalid: 'PRIVACY_CONFIG_INVALID',
  /** Input to an operator is larger than it accepts; the message names the limit. */
  InputTooLarge: 'INPUT_TOO_LARGE',
} as const;
export type AgentsErrorCode = (typeof AgentsErrorCode)[keyof typeof AgentsErrorCode];

/** The one error class of @stitch/agents; the message says what to do. */
export class AgentsError extends Error {
  readonly code: AgentsErrorCode;

  constructor(code: AgentsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

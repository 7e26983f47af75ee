/** Stable codes of the errors @stitch/cost throws; callers branch on `code`, never on the message. */
export type CostErrorCode = 'CATALOG_INVALID' | 'DEVICE_UNKNOWN' | 'MODEL_UNKNOWN' | 'COST_INPUT';

/** The one error class of @stitch/cost. Its message says what to change. */
export class CostError extends Error {
  override readonly name = 'CostError';
  readonly code: CostErrorCode;
  /** Exit status a CLI should use: every cost error comes from bad input. */
  readonly exitCode = 2;

  constructor(code: CostErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

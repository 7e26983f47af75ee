/** Every code a `CostError` can carry; the values are stable, so callers branch on `code`, never on the message. */
export const CostErrorCode = {
  /** A device catalog (built in or a user's file) is malformed or unreadable. */
  CatalogInvalid: 'CATALOG_INVALID',
  /** A device class id is not in the catalog. */
  DeviceUnknown: 'DEVICE_UNKNOWN',
  /** A model id is not in the model table. */
  ModelUnknown: 'MODEL_UNKNOWN',
  /** An option or measurement is out of range. */
  Input: 'COST_INPUT',
  /** A TCO sensitivity sweep was given a range that is empty, reversed or outside its bounds. */
  SweepRange: 'SWEEP_RANGE',
} as const;
export type CostErrorCode = (typeof CostErrorCode)[keyof typeof CostErrorCode];

/** The one error class of @stitch/cost. Its message says what to change. */
export class CostError extends Error {
  readonly code: CostErrorCode;
  /** Exit status a CLI should use: every cost error comes from bad input. */
  readonly exitCode = 2;

  constructor(code: CostErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

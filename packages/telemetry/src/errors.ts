/** The telemetry settings in the environment cannot be used as they are. */
export class TelemetryConfigError extends Error {
  readonly code = 'TELEMETRY_CONFIG';
  override readonly name = 'TelemetryConfigError';
}

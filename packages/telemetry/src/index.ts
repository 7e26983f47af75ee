import { hostname } from 'node:os';
import { newTraceparent } from '@stitch/runtime/internal';
import type { Telemetry, TelemetryOptions } from './options.js';

export { TelemetryConfigError } from './errors.js';
export {
  type ObservedCoordinator,
  type ObservedNode,
  type ObservedRequest,
  observeCoordinator,
  observeNode,
  observeRequests,
} from './observe.js';
export type { Telemetry, TelemetryOptions } from './options.js';

/**
 * Sets up OpenTelemetry for this process. Tracing exports over OTLP/HTTP (protobuf, or JSON: see
 * traceExporter) only when an endpoint is configured, sampled as OTEL_TRACES_SAMPLER /
 * OTEL_TRACES_SAMPLER_ARG say (default: parent-based, always on); it then turns on the spans of
 * @stitch/runtime. Metrics are served for Prometheus when
 * `metricsPort` is given, from the global meter provider (see observeNode, observeCoordinator).
 */
export async function startTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  const instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${newTraceparent().slice(3, 11)}`;
  const endpoint = process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint && options.metricsPort === undefined)
    return { instanceId, tracing: false, metricsUrl: undefined, shutdown: async () => undefined };
  const { startProviders } = await import('./sdk.js');
  return startProviders(options, instanceId, endpoint || undefined);
}

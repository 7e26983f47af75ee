export interface TelemetryOptions {
  /** `service.name` of this process's spans and metrics, e.g. stitch-node. */
  serviceName: string;
  /** `service.instance.id`. @default `<hostname>-<pid>-<random>`, distinct per process */
  instanceId?: string;
  /** Serve Prometheus metrics on this port (GET /metrics); none when absent. */
  metricsPort?: number;
  /** Address the metrics endpoint binds. @default all interfaces, as Prometheus exporters do */
  metricsHost?: string;
  /**
   * Make the active span follow async/await (AsyncLocalStorage), for instrumentation that relies on
   * it. stitch links its own spans through each message's traceparent and needs none of it, and on
   * Node 20 it puts a hook on every promise of the process. @default false
   */
  asyncContext?: boolean;
  /**
   * Make the runtime's spans as the SDK's spans, through the registered tracer: span processors then
   * see them start, and a handler can add attributes to its turn's span (`trace.getActiveSpan()`,
   * with `asyncContext`). Otherwise, under a parent-based sampler (the default), the runtime records
   * its spans itself and hands them to the batch processor as they end, without the SDK's sampler,
   * span limits and self-metrics on the path of the messages sampled. @default false
   */
  sdkSpans?: boolean;
}

export interface Telemetry {
  readonly instanceId: string;
  /** Whether spans are exported (OTEL_EXPORTER_OTLP_ENDPOINT or _TRACES_ENDPOINT is set). */
  readonly tracing: boolean;
  /** The Prometheus endpoint, when metricsPort was given. */
  readonly metricsUrl: string | undefined;
  /** Ends span export (flushing what is buffered) and the metrics endpoint. */
  shutdown(): Promise<void>;
}

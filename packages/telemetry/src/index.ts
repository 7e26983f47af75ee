import { hostname } from 'node:os';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  type SpanExporter,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { PRESAMPLED, setRootSampling, setTracingEnabled } from '@stitch/runtime';
import { newTraceparent } from '@stitch/runtime/internal';

export { observeCoordinator, observeNode } from './observe.js';

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

/** The telemetry settings in the environment cannot be used as they are. */
export class TelemetryConfigError extends Error {
  readonly code = 'TELEMETRY_CONFIG';
  override readonly name = 'TelemetryConfigError';
}

/**
 * The OTLP/HTTP exporter OTEL_EXPORTER_OTLP_TRACES_PROTOCOL (or OTEL_EXPORTER_OTLP_PROTOCOL) asks for:
 * `http/protobuf`, the specification's default and the cheaper to encode (half the CPU per span of
 * JSON, measured here), or `http/json`. Both read the endpoint, headers and timeout from the same
 * variables.
 */
function traceExporter(): SpanExporter {
  const protocol =
    process.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ||
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL ||
    'http/protobuf';
  if (protocol === 'http/protobuf') return new ProtobufTraceExporter();
  if (protocol === 'http/json') return new JsonTraceExporter();
  throw new TelemetryConfigError(
    `OTLP protocol ${JSON.stringify(protocol)} is not supported: set OTEL_EXPORTER_OTLP_PROTOCOL to http/protobuf (the default) or http/json`,
  );
}

/** A root sampler that keeps the roots @stitch/runtime already sampled, and samples others by ratio. */
class PresampledRoot implements Sampler {
  readonly #ratio: TraceIdRatioBasedSampler;

  constructor(ratio: number) {
    this.#ratio = new TraceIdRatioBasedSampler(ratio);
  }

  shouldSample(...args: Parameters<Sampler['shouldSample']>): SamplingResult {
    const attributes = args[4];
    if (attributes?.[PRESAMPLED] === true) return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    return this.#ratio.shouldSample(args[0], args[1]);
  }

  toString(): string {
    return `PresampledRoot{${this.#ratio.toString()}}`;
  }
}

/**
 * OTEL_TRACES_SAMPLER=parentbased_traceidratio with its ratio: the runtime decides root asks itself
 * (see setRootSampling) and the provider's root sampler keeps what it sampled. Other samplers: as the
 * SDK reads them from the environment.
 */
function ratioSampling(): { sampler: Sampler; ratio: number } | undefined {
  if (process.env.OTEL_TRACES_SAMPLER !== 'parentbased_traceidratio') return undefined;
  const ratio = Number(process.env.OTEL_TRACES_SAMPLER_ARG ?? 1);
  if (!(ratio >= 0 && ratio <= 1)) return undefined;
  return { sampler: new ParentBasedSampler({ root: new PresampledRoot(ratio) }), ratio };
}

/**
 * Sets up OpenTelemetry for this process. Tracing exports over OTLP/HTTP (protobuf, or JSON: see
 * traceExporter) only when an endpoint is configured, sampled as OTEL_TRACES_SAMPLER /
 * OTEL_TRACES_SAMPLER_ARG say (default: parent-based, always on); it then turns on the spans of
 * @stitch/runtime. Metrics are served for Prometheus when
 * `metricsPort` is given, from the global meter provider (see observeNode, observeCoordinator).
 */
export async function startTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  const instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${newTraceparent().slice(3, 11)}`;
  const resource = defaultResource().merge(
    resourceFromAttributes({ 'service.name': options.serviceName, 'service.instance.id': instanceId }),
  );
  const endpoint = process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  let tracer: NodeTracerProvider | undefined;
  if (endpoint) {
    const sampling = ratioSampling();
    tracer = new NodeTracerProvider({
      resource,
      spanProcessors: [new BatchSpanProcessor(traceExporter())],
      ...(sampling ? { sampler: sampling.sampler } : {}),
    });
    tracer.register({ contextManager: options.asyncContext ? undefined : null });
    setRootSampling(sampling?.ratio);
    setTracingEnabled(true);
  }
  let meters: MeterProvider | undefined;
  let metricsUrl: string | undefined;
  if (options.metricsPort !== undefined) {
    const host = options.metricsHost;
    const exporter = new PrometheusExporter({
      port: options.metricsPort,
      preventServerStart: true,
      ...(host ? { host } : {}),
    });
    await exporter.startServer();
    meters = new MeterProvider({ resource, readers: [exporter] });
    metrics.setGlobalMeterProvider(meters);
    metricsUrl = `http://${host ?? 'localhost'}:${options.metricsPort}/metrics`;
  }
  return {
    instanceId,
    tracing: tracer !== undefined,
    metricsUrl,
    async shutdown() {
      if (tracer) {
        setTracingEnabled(false);
        setRootSampling(undefined);
      }
      await Promise.all([tracer?.shutdown(), meters?.shutdown()]);
      // Unregistered, so that a later startTelemetry in this process can register its own.
      if (tracer) {
        trace.disable();
        context.disable();
        propagation.disable();
      }
      if (meters) metrics.disable();
    },
  };
}

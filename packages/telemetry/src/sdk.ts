// The OpenTelemetry SDK, loaded only when telemetry is configured: importing it costs a process
// about 0.2 s of CPU at start (@stitch/telemetry took 0.50 s with it, 0.30 s without), which every
// `stitch` node, coordinator and server would otherwise pay.
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
import { PRESAMPLED, setRootSampling, setSpanRecorder, setTracingEnabled } from '@stitch/runtime';
import { TelemetryConfigError } from './errors.js';
import type { Telemetry, TelemetryOptions } from './options.js';
import { recordInto } from './recorded-spans.js';

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
 * The root ratio of the parent-based sampler OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG name (the
 * SDK's default, parentbased_always_on, when unset); undefined for any other sampler, which the SDK
 * then reads from the environment itself. With a ratio the runtime decides root asks (see
 * setRootSampling) and records its own spans (see setSpanRecorder).
 */
function parentBasedRatio(): number | undefined {
  const sampler = process.env.OTEL_TRACES_SAMPLER || 'parentbased_always_on';
  if (sampler === 'parentbased_always_on') return 1;
  if (sampler === 'parentbased_always_off') return 0;
  if (sampler !== 'parentbased_traceidratio') return undefined;
  const arg = process.env.OTEL_TRACES_SAMPLER_ARG;
  const ratio = arg ? Number(arg) : 1;
  return ratio >= 0 && ratio <= 1 ? ratio : undefined;
}

/** startTelemetry's work once something is configured: `endpoint` for spans, a metrics port, or both. */
export async function startProviders(
  options: TelemetryOptions,
  instanceId: string,
  endpoint: string | undefined,
): Promise<Telemetry> {
  const resource = defaultResource().merge(
    resourceFromAttributes({ 'service.name': options.serviceName, 'service.instance.id': instanceId }),
  );
  let tracer: NodeTracerProvider | undefined;
  if (endpoint) {
    const ratio = parentBasedRatio();
    const batch = new BatchSpanProcessor(traceExporter());
    tracer = new NodeTracerProvider({
      resource,
      spanProcessors: [batch],
      ...(ratio === undefined
        ? {}
        : { sampler: new ParentBasedSampler({ root: new PresampledRoot(ratio) }) }),
    });
    tracer.register({ contextManager: options.asyncContext ? undefined : null });
    setRootSampling(ratio);
    setSpanRecorder(ratio === undefined || options.sdkSpans ? undefined : recordInto(batch, resource));
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
        setSpanRecorder(undefined);
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

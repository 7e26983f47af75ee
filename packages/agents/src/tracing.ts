import { type Attributes, type Span, SpanStatusCode, trace } from '@opentelemetry/api';

// A proxy until a tracer provider is registered (@stitch/telemetry); without one its spans are no-ops.
const tracer = trace.getTracer('@stitch/agents');

/**
 * Runs `fn` as the active span `name`: the asks it makes (and the runtime's spans for them) are the
 * span's children; a throw marks the span failed and passes on.
 */
export function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message ?? String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

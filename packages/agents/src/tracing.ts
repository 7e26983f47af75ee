import {
  type Attributes,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';

// A proxy until a tracer provider is registered (@stitch/telemetry); without one its spans are no-ops.
const tracer = trace.getTracer('@stitch/agents');

/**
 * Runs `fn` as the active span `name`, given the span and its W3C traceparent (undefined while no
 * tracer provider is registered): asks sent with it as their traceparent are the span's children,
 * whether or not the active span follows async/await. With `parent` (a W3C traceparent) the span is
 * that span's child. A throw marks the span failed and passes on.
 */
export function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span, traceparent: string | undefined) => Promise<T>,
  parent?: string,
): Promise<T> {
  // An explicit parent (a turn's traceparent): the active context may not follow the awaits before it.
  const ctx =
    parent === undefined ? context.active() : propagation.extract(ROOT_CONTEXT, { traceparent: parent });
  return tracer.startActiveSpan(name, { attributes }, ctx, async (span) => {
    const carrier: { traceparent?: string } = {};
    propagation.inject(trace.setSpan(context.active(), span), carrier);
    try {
      return await fn(span, carrier.traceparent);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message ?? String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

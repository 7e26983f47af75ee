import { type HrTime, type SpanContext, type SpanStatus, SpanStatusCode } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { RecordedSpan, SpanRecorder } from '@stitch/runtime';

const SCOPE = { name: '@stitch/runtime' };
const NONE: never[] = [];
const UNSET: SpanStatus = { code: SpanStatusCode.UNSET };

// performance.now() milliseconds as [epoch seconds, nanoseconds], the origin split once so that the
// sum keeps microseconds (an epoch in ms as one double keeps ≈ 0.25 µs).
const ORIGIN_S = Math.trunc(performance.timeOrigin / 1000);
const ORIGIN_MS = performance.timeOrigin - ORIGIN_S * 1000;

function hrTimeAt(ms: number): HrTime {
  const sinceOriginS = ORIGIN_MS + ms;
  const s = Math.floor(sinceOriginS / 1000);
  const ns = Math.round((sinceOriginS - s * 1000) * 1e6);
  return ns >= 1e9 ? [ORIGIN_S + s + 1, ns - 1e9] : [ORIGIN_S + s, ns];
}

/** A span the runtime recorded, in the form span processors and exporters read. */
class ExportedSpan implements ReadableSpan {
  readonly links = NONE;
  readonly events = NONE;
  readonly ended = true;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  readonly instrumentationScope = SCOPE;

  constructor(
    private readonly span: RecordedSpan,
    readonly resource: Resource,
  ) {}

  get name() {
    return this.span.name;
  }
  get kind() {
    return this.span.kind;
  }
  get attributes() {
    return this.span.attributes;
  }
  spanContext(): SpanContext {
    return { traceId: this.span.traceId, spanId: this.span.spanId, traceFlags: 1 };
  }
  get parentSpanContext(): SpanContext | undefined {
    const { parentSpanId, traceId, parentRemote } = this.span;
    return parentSpanId === undefined
      ? undefined
      : { traceId, spanId: parentSpanId, traceFlags: 1, isRemote: parentRemote };
  }
  get startTime(): HrTime {
    return hrTimeAt(this.span.startMs);
  }
  get endTime(): HrTime {
    return hrTimeAt(this.span.endMs);
  }
  get duration(): HrTime {
    const ns = Math.round((this.span.endMs - this.span.startMs) * 1e6);
    return [Math.floor(ns / 1e9), ns % 1e9];
  }
  get status(): SpanStatus {
    const message = this.span.error;
    return message === undefined ? UNSET : { code: SpanStatusCode.ERROR, message };
  }
}

/**
 * Hands the runtime's own spans to `processor` (the provider's batch processor), as if the provider's
 * tracer had made and ended them: they are exported with its other spans, under its resource.
 */
export function recordInto(processor: SpanProcessor, resource: Resource): SpanRecorder {
  return { record: (span) => processor.onEnd(new ExportedSpan(span, resource)) };
}

import {
  type Context,
  context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { isTraceparent } from './wire/envelope.js';
import type { Outcome } from './wire/outcome.js';

/**
 * The tracer while spans are made, set by @stitch/telemetry once it has registered a tracer provider.
 * Unset, the runtime makes no span object at all: the API's no-op spans would still cost an
 * allocation and a context lookup per message, on a path measured in single µs.
 */
let tracer: Tracer | undefined;

/** Turns the runtime's spans on (a tracer provider is registered with @opentelemetry/api) or off. */
export function setTracingEnabled(on: boolean): void {
  tracer = on ? trace.getTracer('@stitch/runtime') : undefined;
}

export function tracingEnabled(): boolean {
  return tracer !== undefined;
}

/** The context whose span a W3C traceparent names; the active context when there is none to read. */
function parentOf(traceparent: string | undefined, fallback: Context): Context {
  if (traceparent === undefined || !isTraceparent(traceparent)) return fallback;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: traceparent.slice(3, 35),
    spanId: traceparent.slice(36, 52),
    traceFlags: Number.parseInt(traceparent.slice(53), 16) & 1,
    isRemote: true,
  });
}

/** The traceparent a message carries so that its receiver's span is a child of `span`. */
function traceparentOf(span: Span): string {
  const c = span.spanContext();
  return `00-${c.traceId}-${c.spanId}-0${c.traceFlags & 1}`;
}

function failed(span: Span, code: string, message: string): void {
  span.setAttribute('stitch.outcome', code);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/**
 * Runs one ask (CLIENT span) or tell (PRODUCER span) to actor `type/id` inside a span: the message
 * goes out with the span's traceparent, so the actor's span is its child. The parent is the
 * traceparent the caller gave, else the active span (a request's, or the turn's of an asking actor).
 */
export function traceSend<O extends { traceparent?: string; mode?: string }, R>(
  kind: 'ask' | 'tell',
  type: string,
  id: string,
  options: O,
  send: (options: O) => Promise<R>,
): Promise<R> {
  const span = tracer!.startSpan(
    `${kind} ${type}`,
    {
      kind: kind === 'ask' ? SpanKind.CLIENT : SpanKind.PRODUCER,
      attributes: { 'stitch.actor.type': type, 'stitch.actor.id': id, 'stitch.mode': options.mode ?? 'fast' },
    },
    parentOf(options.traceparent, context.active()),
  );
  return send({ ...options, traceparent: traceparentOf(span) }).then(
    (r) => {
      span.setAttribute('stitch.outcome', 'ok');
      span.end();
      return r;
    },
    (err: { code?: string; message?: string }) => {
      failed(span, err?.code ?? 'error', err?.message ?? String(err));
      span.end();
      throw err;
    },
  );
}

export interface TurnInfo {
  type: string;
  id: string;
  nodeId: string;
  durable: boolean;
  message: string;
}

/**
 * Runs one handled message inside a SERVER (fast) or CONSUMER (durable) span whose parent is the
 * message's traceparent. `env.traceparent` becomes the span's, so `ctx.traceparent` and the asks the
 * handler makes (through the active context) are its children.
 */
export function traceTurn(
  info: TurnInfo,
  env: { traceparent: string },
  run: () => Outcome | Promise<Outcome>,
): Outcome | Promise<Outcome> {
  const span = tracer!.startSpan(
    `handle ${info.type}`,
    {
      kind: info.durable ? SpanKind.CONSUMER : SpanKind.SERVER,
      attributes: {
        'stitch.actor.type': info.type,
        'stitch.actor.id': info.id,
        'stitch.node.id': info.nodeId,
        'stitch.mode': info.durable ? 'durable' : 'fast',
        'stitch.message.type': info.message,
      },
    },
    parentOf(env.traceparent, ROOT_CONTEXT),
  );
  env.traceparent = traceparentOf(span);
  const done = (out: Outcome) => {
    if (out.ok) span.setAttribute('stitch.outcome', 'ok');
    else failed(span, out.code, out.message);
    span.end();
    return out;
  };
  const out = context.with(trace.setSpan(context.active(), span), run);
  return out instanceof Promise ? out.then(done) : done(out);
}

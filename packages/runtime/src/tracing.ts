import {
  type Attributes,
  type Context,
  context,
  createContextKey,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { isTraceparent, newTraceparent } from './wire/envelope.js';
import type { Outcome } from './wire/outcome.js';

/**
 * The tracer while spans are made, set by @stitch/telemetry once it has registered a tracer provider.
 * Unset, the runtime makes no span object at all: the API's no-op spans would still cost an
 * allocation and a context lookup per message, on a path measured in single µs.
 */
let tracer: Tracer | undefined;

/**
 * Whether the registered context manager carries the active context into the function `context.with`
 * runs. Without one (@stitch/telemetry registers none unless asked for `asyncContext`) `with` only
 * calls the function and the active context is always the root, so a turn that records nothing makes
 * no context to run in and an ask looks for no active span.
 */
let contextCarried = false;

const PROBE = createContextKey('stitch.context-probe');

function carriesContext(): boolean {
  const probe = ROOT_CONTEXT.setValue(PROBE, true);
  return context.with(probe, () => context.active() === probe);
}

/**
 * Turns the runtime's spans on (a tracer provider is registered with @opentelemetry/api) or off. A
 * context manager, if any, must be registered before: whether it carries the context is decided here.
 */
export function setTracingEnabled(on: boolean): void {
  tracer = on ? trace.getTracer('@stitch/runtime') : undefined;
  contextCarried = on && carriesContext();
}

/** The attribute of a root span this runtime already decided to sample (its sampler must keep it). */
export const PRESAMPLED = 'stitch.presampled';

/**
 * The share of root asks (no parent trace) sampled, when the tracer provider's sampler is
 * parent-based with this ratio at the root and keeps spans marked PRESAMPLED: the runtime then decides
 * here, so the ones sampled out cost a random number and a pooled id instead of an SDK span (the
 * sampler's decision, ids, a non-recording span: most of telemetry's cost per message at 1 %).
 * Undefined: the SDK decides every root.
 */
let rootRatio: number | undefined;

export function setRootSampling(ratio: number | undefined): void {
  rootRatio = ratio !== undefined && ratio >= 0 && ratio <= 1 ? ratio : undefined;
}

/**
 * A span the runtime recorded itself: what an exporter needs, in plain fields. Times are
 * `performance.now()` milliseconds.
 */
export interface RecordedSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly traceId: string;
  readonly spanId: string;
  /** The parent's span id; undefined for a root. */
  readonly parentSpanId: string | undefined;
  /** Whether the parent came with a message from another process. */
  readonly parentRemote: boolean;
  readonly startMs: number;
  readonly endMs: number;
  readonly attributes: Attributes;
  /** The failure's message when the ask or turn failed (status ERROR); undefined when it did not. */
  readonly error: string | undefined;
}

/** Takes the runtime's spans as they end (see setSpanRecorder). */
export interface SpanRecorder {
  record(span: RecordedSpan): void;
}

/**
 * Set: the runtime records its own spans and hands them to `recorder` as they end, instead of making
 * them through the tracer provider's SDK spans (each start and end of which goes through the SDK's
 * sampler, span limits and self-metrics, code that at 1 % sampling runs too seldom to be optimised).
 * It decides sampling as a parent-based sampler with the root ratio of setRootSampling (1 when none
 * is set) would, so it is for a provider configured that way. The active context, when a context
 * manager carries one, still holds the span, so spans the handler's own code makes are its children.
 */
let recorder: SpanRecorder | undefined;

export function setSpanRecorder(r: SpanRecorder | undefined): void {
  recorder = r;
}

/** The recorder set, if any (for benchmarks that compare it with the SDK's spans). */
export function spanRecorder(): SpanRecorder | undefined {
  return recorder;
}

export function tracingEnabled(): boolean {
  return tracer !== undefined;
}

/**
 * Whether a turn for a message carrying `traceparent` goes through traceTurn: not when spans are off,
 * nor when its parent is not sampled and no context manager carries a context (nothing to record and
 * nothing to make active: 99 % of turns at 1 % sampling).
 */
export function tracesTurn(traceparent: string): boolean {
  return tracer !== undefined && (contextCarried || !unsampledTraceparent(traceparent));
}

/**
 * Whether `traceparent` is one whose parent is not sampled (flags' low bit clear): with parent-based
 * sampling nothing under it is recorded. Read in place, without the span context `remoteParent`
 * makes, as it runs for every message when spans are on.
 */
function unsampledTraceparent(traceparent: string | undefined): boolean {
  if (traceparent === undefined || !isTraceparent(traceparent)) return false;
  const flags = traceparent.charCodeAt(54); // the flags' second hex digit: 0-9 or a-f
  return ((flags <= 57 ? flags - 48 : flags - 87) & 1) === 0;
}

/** The span context a W3C traceparent names, if it is one. */
function remoteParent(traceparent: string | undefined): SpanContext | undefined {
  if (traceparent === undefined || !isTraceparent(traceparent)) return undefined;
  return {
    traceId: traceparent.slice(3, 35),
    spanId: traceparent.slice(36, 52),
    traceFlags: Number.parseInt(traceparent.slice(53), 16) & 1,
    isRemote: true,
  };
}

/** The traceparent a message carries so that its receiver's span is a child of `c`'s span. */
function traceparentOf(c: SpanContext): string {
  return `00-${c.traceId}-${c.spanId}-0${c.traceFlags & 1}`;
}

/**
 * A parent that is not sampled: with parent-based sampling (the default, and what a ratio should be
 * configured as) nothing under it is recorded, so no span is made; the message carries the parent's
 * traceparent on, which W3C allows for a span that is not recorded.
 */
const unsampled = (c: SpanContext | undefined): c is SpanContext =>
  c !== undefined && (c.traceFlags & 1) === 0;

/** A span of the runtime's: an SDK span, or one it records itself. */
interface RuntimeSpan {
  readonly context: SpanContext;
  /** Whether it is recorded (a sampled-out SDK span is not, and ends as nothing). */
  readonly recording: boolean;
  /** Ends the span: outcome `code`, and failed with `message` when one is given. */
  end(code: string, message?: string): void;
  /** `ctx` with this span active. */
  activeIn(ctx: Context): Context;
}

class SdkSpan implements RuntimeSpan {
  readonly context: SpanContext;
  readonly recording: boolean;

  constructor(
    private readonly span: Span,
    attributes: Attributes,
  ) {
    this.context = span.spanContext();
    this.recording = span.isRecording();
    // Set on the span rather than given to startSpan, which checks them twice more for the sampler
    // (which needs none of them here).
    if (this.recording) span.setAttributes(attributes);
  }

  end(code: string, message?: string): void {
    this.span.setAttribute('stitch.outcome', code);
    if (message !== undefined) this.span.setStatus({ code: SpanStatusCode.ERROR, message });
    this.span.end();
  }

  activeIn(ctx: Context): Context {
    return trace.setSpan(ctx, this.span);
  }
}

class OwnSpan implements RuntimeSpan, RecordedSpan {
  readonly context: SpanContext;
  readonly recording = true;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly parentRemote: boolean;
  readonly startMs = performance.now();
  endMs = 0;
  error: string | undefined;

  constructor(
    private readonly to: SpanRecorder,
    readonly name: string,
    readonly kind: SpanKind,
    parent: SpanContext | undefined,
    readonly attributes: Attributes,
  ) {
    const ids = newTraceparent();
    this.traceId = parent?.traceId ?? ids.slice(3, 35);
    this.spanId = ids.slice(36, 52);
    this.parentSpanId = parent?.spanId;
    this.parentRemote = parent?.isRemote === true;
    this.context = { traceId: this.traceId, spanId: this.spanId, traceFlags: 1 };
  }

  end(code: string, message?: string): void {
    this.endMs = performance.now();
    this.attributes['stitch.outcome'] = code;
    this.error = message;
    this.to.record(this);
  }

  activeIn(ctx: Context): Context {
    return trace.setSpanContext(ctx, this.context);
  }
}

/**
 * Starts one of the runtime's spans under `parent` (a sampled one, or none for a root): recorded here
 * when a recorder is set (its callers have sampled it), else through the tracer, whose sampler may
 * still leave it unrecorded. `presampled`: a root the caller already sampled.
 */
function startSpan(
  name: string,
  kind: SpanKind,
  parent: SpanContext | undefined,
  parentContext: Context,
  presampled: boolean,
  attributes: Attributes,
): RuntimeSpan {
  if (recorder) return new OwnSpan(recorder, name, kind, parent, attributes);
  const options = { kind, ...(presampled ? { attributes: { [PRESAMPLED]: true } } : {}) };
  return new SdkSpan(tracer!.startSpan(name, options, parentContext), attributes);
}

/**
 * Runs `run` with `span` active, when a context manager carries the active context (without one
 * there is nothing to make active: a handler's asks find their parent through its traceparent).
 */
function withActive<T>(span: RuntimeSpan, run: () => T): T {
  return contextCarried ? context.with(span.activeIn(context.active()), run) : run();
}

/** The code and message a rejected ask ends its span with. */
const failure = (err: unknown): [string, string] => {
  const e = err as { code?: string; message?: string } | undefined;
  return [e?.code ?? 'error', e?.message ?? String(err)];
};

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
  if (unsampledTraceparent(options.traceparent)) return send(options);
  const given = remoteParent(options.traceparent);
  const active = given || !contextCarried ? undefined : trace.getSpanContext(context.active());
  if (unsampled(active)) return send({ ...options, traceparent: traceparentOf(active) });
  const root = given === undefined && active === undefined && rootRatio !== undefined;
  // A root sampled out here: its receiver sees a parent that is not sampled and records nothing either.
  if (root && Math.random() >= rootRatio!) return send({ ...options, traceparent: newTraceparent(false) });
  const span = startSpan(
    `${kind} ${type}`,
    kind === 'ask' ? SpanKind.CLIENT : SpanKind.PRODUCER,
    given ?? active,
    given ? trace.setSpanContext(ROOT_CONTEXT, given) : context.active(),
    root,
    { 'stitch.actor.type': type, 'stitch.actor.id': id, 'stitch.mode': options.mode ?? 'fast' },
  );
  const traceparent = traceparentOf(span.context);
  // Sampled out at this root: nothing to record or end.
  if (!span.recording) return send({ ...options, traceparent });
  const sent = send({ ...options, traceparent });
  // The span ends on a branch beside the caller's promise, which is returned as it is: a promise
  // chained to it would settle the caller a microtask later than an unsampled ask, after the tick's
  // asks have gone out as one batch, so its next ask would go alone, and in a pipelined caller that
  // lane stayed out of step with the others (the bench's batches halved at 1 % sampling).
  sent.then(
    () => span.end('ok'),
    (err: unknown) => span.end(...failure(err)),
  );
  return sent;
}

export interface TurnInfo {
  type: string;
  id: string;
  nodeId: string;
  durable: boolean;
  message: string;
}

/**
 * Runs one handled message (one that tracesTurn lets through) inside a SERVER (fast) or CONSUMER
 * (durable) span whose parent is the message's traceparent. `env.traceparent` becomes the span's, so
 * `ctx.traceparent` and the asks the handler makes (through the active context) are its children.
 */
export function traceTurn(
  info: TurnInfo,
  env: { traceparent: string },
  run: () => Outcome | Promise<Outcome>,
): Outcome | Promise<Outcome> {
  let parent = remoteParent(env.traceparent);
  // A root the recorder samples out (the tracer's sampler decides the others): a new trace, flagged
  // not sampled, which the turn then runs in as under any unsampled parent.
  if (parent === undefined && recorder && Math.random() >= (rootRatio ?? 1)) {
    env.traceparent = newTraceparent(false);
    parent = remoteParent(env.traceparent);
  }
  // Active all the same, so that the handler's asks stay in the (unsampled) trace.
  if (unsampled(parent)) return context.with(trace.setSpanContext(ROOT_CONTEXT, parent), run);
  const span = startSpan(
    `handle ${info.type}`,
    info.durable ? SpanKind.CONSUMER : SpanKind.SERVER,
    parent,
    parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT,
    false,
    {
      'stitch.actor.type': info.type,
      'stitch.actor.id': info.id,
      'stitch.node.id': info.nodeId,
      'stitch.mode': info.durable ? 'durable' : 'fast',
      'stitch.message.type': info.message,
    },
  );
  env.traceparent = traceparentOf(span.context);
  const done = (out: Outcome) => {
    if (out.ok) span.end('ok');
    else span.end(out.code, out.message);
    return out;
  };
  const out = withActive(span, run);
  if (!(out instanceof Promise)) return done(out);
  // Ended beside the turn's promise, not chained to it, for the reason given in traceSend.
  out.then(done, (err: unknown) => span.end('error', String(err)));
  return out;
}

import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import {
  type Context,
  type ContextManager,
  context,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanStatus,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { newTraceparent } from '../src/internal.js';
import {
  type RecordedSpan,
  setRootSampling,
  setSpanRecorder,
  setTracingEnabled,
  traceSend,
  tracesTurn,
  traceTurn,
} from '../src/tracing.js';
import type { Outcome } from '../src/wire/outcome.js';

/** A recording span that remembers what was done to it. */
class FakeSdkSpan {
  readonly attributes: Record<string, unknown> = {};
  status: SpanStatus | undefined;
  ended = false;
  readonly #context: SpanContext;

  constructor(parent: SpanContext | undefined) {
    const id = newTraceparent();
    this.#context = { traceId: parent?.traceId ?? id.slice(3, 35), spanId: id.slice(36, 52), traceFlags: 1 };
  }
  spanContext(): SpanContext {
    return this.#context;
  }
  isRecording(): boolean {
    return true;
  }
  setAttribute(k: string, v: unknown): this {
    this.attributes[k] = v;
    return this;
  }
  setAttributes(a: Record<string, unknown>): this {
    Object.assign(this.attributes, a);
    return this;
  }
  setStatus(s: SpanStatus): this {
    this.status = s;
    return this;
  }
  end(): void {
    this.ended = true;
  }
}

/** Registers a tracer that records every span it starts, and turns the runtime's spans on. */
function recordSpans(): FakeSdkSpan[] {
  const spans: FakeSdkSpan[] = [];
  const tracer = {
    startSpan: (_name: string, _options: unknown, ctx: Context = ROOT_CONTEXT) => {
      const span = new FakeSdkSpan(trace.getSpanContext(ctx));
      spans.push(span);
      return span as unknown as Span;
    },
  } as unknown as Tracer;
  trace.setGlobalTracerProvider({ getTracer: () => tracer });
  setTracingEnabled(true);
  return spans;
}

/** A context manager that carries the active context through `with` (synchronously). */
class StackContextManager implements ContextManager {
  #active = ROOT_CONTEXT;
  active(): Context {
    return this.#active;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const previous = this.#active;
    this.#active = ctx;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.#active = previous;
    }
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#active = ROOT_CONTEXT;
    return this;
  }
}

const info = { type: 'echo', id: 'e1', nodeId: 'n1', durable: false, message: 'echo' };

afterEach(() => {
  setTracingEnabled(false);
  trace.disable();
  context.disable();
});

test('an unsampled turn skips traceTurn unless a context manager would carry its context', () => {
  const unsampled = newTraceparent(false);
  assert.equal(tracesTurn(newTraceparent()), false, 'spans off');
  recordSpans();
  assert.equal(tracesTurn(unsampled), false);
  assert.equal(tracesTurn(`${unsampled.slice(0, 53)}0a`), false, 'flags 0x0a: not sampled');
  assert.equal(tracesTurn(newTraceparent()), true, 'sampled parent');
  assert.equal(tracesTurn(`${unsampled.slice(0, 53)}0b`), true, 'flags 0x0b: sampled');
  assert.equal(tracesTurn(''), true, 'no parent: a root');
  assert.equal(tracesTurn(unsampled.toUpperCase()), true, 'not a traceparent: a root');
  // With a context manager the unsampled parent is made active, so the handler's asks stay in its trace.
  context.setGlobalContextManager(new StackContextManager());
  setTracingEnabled(true);
  assert.equal(tracesTurn(unsampled), true);
  let active: SpanContext | undefined;
  traceTurn(info, { traceparent: unsampled }, () => {
    active = trace.getSpanContext(context.active());
    return { ok: true, data: new Uint8Array() };
  });
  assert.equal(active?.spanId, unsampled.slice(36, 52));
});

test('a sampled ask and turn hand back the promise they were given and end their span beside it', async () => {
  const spans = recordSpans();
  const sampled = newTraceparent();
  const sent = Promise.resolve('reply');
  let carried: string | undefined;
  const asked = traceSend('ask', 'echo', 'e1', { traceparent: sampled }, (o) => {
    carried = o.traceparent;
    return sent;
  });
  // The same promise: a chained one would settle the caller a microtask later than an unsampled ask.
  assert.equal(asked, sent);
  assert.equal(await asked, 'reply');
  assert.equal(spans.length, 1);
  assert.ok(spans[0]!.ended);
  assert.equal(spans[0]!.attributes['stitch.outcome'], 'ok');
  assert.equal(carried?.slice(36, 52), spans[0]!.spanContext().spanId, 'the message carries the span');

  const failure = Object.assign(new Error('gone'), { code: 'Timeout' });
  const failing = Promise.reject(failure);
  const failed = traceSend('ask', 'echo', 'e1', { traceparent: sampled }, () => failing);
  assert.equal(failed, failing);
  await assert.rejects(failed, /gone/);
  assert.ok(spans[1]!.ended);
  assert.equal(spans[1]!.attributes['stitch.outcome'], 'Timeout');

  const outcome: Promise<Outcome> = Promise.resolve({ ok: true, data: new Uint8Array() });
  const env = { traceparent: sampled };
  assert.equal(
    traceTurn(info, env, () => outcome),
    outcome,
  );
  await outcome;
  assert.ok(spans[2]!.ended);
  assert.equal(env.traceparent.slice(36, 52), spans[2]!.spanContext().spanId);
});

test('with a span recorder the runtime records its spans itself, sampled as a parent-based sampler would', async () => {
  const sdkSpans = recordSpans(); // a tracer that must not be asked for a span while a recorder is set
  const recorded: RecordedSpan[] = [];
  setSpanRecorder({ record: (s) => recorded.push(s) });
  try {
    // A root ask with the root ratio 1: recorded, its message carries the new span.
    setRootSampling(1);
    let carried = '';
    await traceSend('ask', 'echo', 'e1', {} as { traceparent?: string }, async (o) => {
      carried = o.traceparent!;
    });
    assert.equal(recorded.length, 1);
    const root = recorded[0]!;
    assert.deepEqual([root.name, root.kind, root.parentSpanId], ['ask echo', SpanKind.CLIENT, undefined]);
    assert.equal(carried, `00-${root.traceId}-${root.spanId}-01`);
    assert.equal(root.attributes['stitch.outcome'], 'ok');
    assert.ok(root.startMs <= root.endMs);
    // Ratio 0: a root goes out flagged not sampled, and nothing is recorded for it.
    setRootSampling(0);
    await traceSend('ask', 'echo', 'e1', {} as { traceparent?: string }, async (o) => {
      carried = o.traceparent!;
    });
    assert.equal(recorded.length, 1);
    assert.match(carried, /-00$/);
    // A turn under a sampled remote parent: a child span, the failure in its status.
    const env = { traceparent: carried.replace(/-00$/, '-01') };
    const out = traceTurn({ ...info, durable: true }, env, () => ({
      ok: false,
      code: 'HANDLER_ERROR',
      message: 'no',
      name: 'HandlerError',
    }));
    assert.equal((out as Outcome).ok, false);
    const turn = recorded[1]!;
    assert.deepEqual(
      [turn.name, turn.kind, turn.parentSpanId, turn.parentRemote, turn.error],
      ['handle echo', SpanKind.CONSUMER, carried.slice(36, 52), true, 'no'],
    );
    assert.equal(turn.traceId, carried.slice(3, 35));
    assert.equal(env.traceparent, `00-${turn.traceId}-${turn.spanId}-01`, 'the handler sees its span');
    // A turn under a parent not sampled records nothing; nor does a root turn the ratio samples out,
    // which runs in a new trace flagged not sampled.
    traceTurn(info, { traceparent: newTraceparent(false) }, () => ({ ok: true, data: new Uint8Array() }));
    const rootTurn = { traceparent: '' };
    traceTurn(info, rootTurn, () => ({ ok: true, data: new Uint8Array() }));
    assert.equal(recorded.length, 2);
    assert.match(rootTurn.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    // With a context manager the recorded turn is the active span, so asks made in it are its children.
    context.setGlobalContextManager(new StackContextManager());
    setTracingEnabled(true);
    const parent = newTraceparent();
    let inner: SpanContext | undefined;
    traceTurn(info, { traceparent: parent }, () => {
      inner = trace.getSpanContext(context.active());
      void traceSend('tell', 'echo', 'e2', {}, async () => undefined);
      return { ok: true, data: new Uint8Array() };
    });
    await new Promise((resolve) => setImmediate(resolve));
    const [tell, handled] = [recorded[3]!, recorded[2]!];
    assert.equal(inner?.spanId, handled.spanId);
    assert.deepEqual([tell.name, tell.parentSpanId, tell.parentRemote], ['tell echo', handled.spanId, false]);
    assert.equal(sdkSpans.length, 0, 'no SDK span was made');
  } finally {
    setSpanRecorder(undefined);
    setRootSampling(undefined);
  }
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectCluster, defineActor, startEmbeddedNats } from '@stitch/runtime';
import {
  observeCoordinator,
  observeNode,
  observeRequests,
  startTelemetry,
  TelemetryConfigError,
  type TelemetryOptions,
} from '../src/index.js';
import { freePort, type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './otlp-receiver.js';

const Echo = defineActor({
  type: 'echo',
  handlers: {
    echo: (_s: unknown, m: { text: string }) => m.text,
    fail: (_s: unknown, _m: { text: string }) => {
      throw new Error('refused on purpose');
    },
  },
});

/**
 * Starts telemetry as `options` and the environment say, makes a fast ask, a durable ask and a failing
 * ask to a new echo actor, and checks the spans exported: each ask a CLIENT span and its turn a child
 * SERVER (CONSUMER when durable) span in the same trace, within the ask's time, with outcome and
 * status, under this process's resource.
 */
async function checkAskSpans(
  receiver: OtlpReceiver,
  natsUrl: string,
  options: Partial<TelemetryOptions> & { instanceId: string },
  /**
   * Whether the spans have one clock (the runtime's own: the monotonic clock from its origin). The
   * SDK's start at Date.now() and add the monotonic clock's time to their end, so between two of them
   * only durations compare: on a VM under load the wall clock was seen to step 3 ms ahead in the 3 ms
   * of an ask, its turn then starting after the ask had ended.
   */
  oneClock: boolean,
): Promise<void> {
  const telemetry = await startTelemetry({ serviceName: 'test', ...options });
  const cluster = await connectCluster({ nats: natsUrl, name: options.instanceId, log: () => undefined });
  const before = Date.now();
  try {
    assert.equal(telemetry.tracing, true);
    await cluster.startNode({ actors: [Echo] });
    const ref = await cluster.spawn(Echo, { id: options.instanceId });
    assert.equal(await ref.ask({ type: 'echo', text: 'hi' }), 'hi');
    assert.equal(await ref.ask({ type: 'echo', text: 'kept' }, { mode: 'durable' }), 'kept');
    await assert.rejects(ref.ask({ type: 'fail', text: 'x' }), /refused on purpose/);
  } finally {
    await telemetry.shutdown(); // flushes the batch
    await cluster.close();
  }
  const after = Date.now();
  const spans = receiver.spans.filter((s) => s.resource['service.instance.id'] === options.instanceId);
  const askOf = (mode: string, outcome: string) =>
    spans.find(
      (s) =>
        s.name === 'ask echo' &&
        s.attributes['stitch.mode'] === mode &&
        s.attributes['stitch.outcome'] === outcome,
    );
  const turnOf = (ask: ReceivedSpan) => spans.find((s) => s.parentSpanId === ask.spanId);
  for (const [mode, outcome, turnKind] of [
    ['fast', 'ok', 2],
    ['durable', 'ok', 5],
    ['fast', 'HANDLER_ERROR', 2],
  ] as const) {
    const what = `${mode} ask, ${outcome}, in ${spans.map((s) => `${s.name}/${s.attributes['stitch.outcome']}`)}`;
    const ask = askOf(mode, outcome);
    assert.ok(ask, what);
    assert.equal(ask.kind, 3, what);
    assert.equal(ask.attributes['stitch.actor.id'], options.instanceId);
    assert.equal(ask.resource['service.name'], 'test');
    const turn = turnOf(ask);
    assert.ok(turn, `the turn is a child of the ${what}`);
    assert.equal(turn.name, 'handle echo');
    assert.equal(turn.traceId, ask.traceId);
    assert.equal(turn.kind, turnKind, what);
    assert.equal(turn.attributes['stitch.mode'], mode);
    assert.equal(turn.attributes['stitch.outcome'], outcome);
    // Times: within the test's (Date.now() and the monotonic clock may differ, more so if the wall clock
    // was stepped: a second's room still tells epoch milliseconds from anything else), and the turn
    // within its ask (by durations where the clocks differ; 1 µs for rounding to nanoseconds).
    const times = `${what}: ${JSON.stringify({ before, ask: [ask.startMs, ask.endMs], turn: [turn.startMs, turn.endMs], after })}`;
    assert.ok(before - 1000 <= ask.startMs && ask.endMs <= after + 1000, times);
    assert.ok(
      turn.startMs <= turn.endMs && turn.endMs - turn.startMs <= ask.endMs - ask.startMs + 0.001,
      times,
    );
    if (oneClock) assert.ok(ask.startMs <= turn.startMs && turn.endMs <= ask.endMs, times);
    for (const span of [ask, turn])
      if (outcome === 'ok') assert.equal(span.status.code, 0, `${what}: status unset`);
      else
        assert.deepEqual(
          [span.status.code, /refused on purpose/.test(span.status.message)],
          [2, true],
          `${what}: ${JSON.stringify(span.status)}`,
        );
  }
}

test('without an OTLP endpoint nothing is traced; with one an ask and its turn are parent and child', async () => {
  delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const off = await startTelemetry({ serviceName: 'test' });
  assert.equal(off.tracing, false);
  await off.shutdown();

  const receiver = await startOtlpReceiver();
  const nats = await startEmbeddedNats();
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
  try {
    // The default sampler (parent-based, always on): the runtime records its spans itself.
    await checkAskSpans(receiver, nats.url, { instanceId: 'own-spans' }, true);
    // OTLP's default encoding: protobuf.
    assert.deepEqual(new Set(receiver.contentTypes), new Set(['application/x-protobuf']));
    // The same through the SDK's spans: asked for, or under a sampler that is not parent-based.
    await checkAskSpans(receiver, nats.url, { instanceId: 'sdk-spans', sdkSpans: true }, false);
    process.env.OTEL_TRACES_SAMPLER = 'always_on';
    await checkAskSpans(receiver, nats.url, { instanceId: 'always-on' }, false);
  } finally {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.OTEL_TRACES_SAMPLER;
    await nats.stop();
    await receiver.close();
  }
});

test('parent-based ratio sampling: the runtime decides root asks, and neither side records a sampled-out one', async () => {
  const receiver = await startOtlpReceiver();
  const nats = await startEmbeddedNats();
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
  process.env.OTEL_TRACES_SAMPLER = 'parentbased_traceidratio';
  const run = async (ratio: string, asks: number) => {
    process.env.OTEL_TRACES_SAMPLER_ARG = ratio;
    const telemetry = await startTelemetry({ serviceName: 'test', instanceId: `ratio-${ratio}` });
    const cluster = await connectCluster({
      nats: nats.url,
      name: `ratio${ratio.replace('.', '')}`,
      log: () => undefined,
    });
    try {
      await cluster.startNode({ actors: [Echo] });
      const ref = await cluster.spawn(Echo, { id: 'e2' });
      for (let i = 0; i < asks; i++) assert.equal(await ref.ask({ type: 'echo', text: `m${i}` }), `m${i}`);
    } finally {
      await telemetry.shutdown();
      await cluster.close();
    }
    return receiver.spans.filter((s) => s.resource['service.instance.id'] === `ratio-${ratio}`);
  };
  try {
    // Ratio 0: no ask and no turn is recorded (the turn's parent says "not sampled").
    assert.deepEqual(await run('0', 50), []);
    // Ratio 1: every root ask is sampled by the runtime, kept by the root sampler, and its turn follows.
    const spans = await run('1', 5);
    const asks = spans.filter((s) => s.name === 'ask echo');
    assert.equal(asks.length, 5);
    assert.ok(asks.every((s) => s.parentSpanId === undefined));
    for (const a of asks)
      assert.ok(spans.some((s) => s.name === 'handle echo' && s.parentSpanId === a.spanId));
  } finally {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.OTEL_TRACES_SAMPLER;
    delete process.env.OTEL_TRACES_SAMPLER_ARG;
    await nats.stop();
    await receiver.close();
  }
});

test('the Prometheus endpoint serves the node and coordinator metrics', async () => {
  const port = await freePort();
  const telemetry = await startTelemetry({
    serviceName: 'test',
    metricsPort: port,
    metricsHost: '127.0.0.1',
  });
  try {
    const mailbox = { depth: 3, running: 1, maxDepth: 5, processed: 7, rejected: 0, shed: 6 };
    const quantiles = { p50: 1.5, p99: 4, max: 9 };
    observeNode({
      id: 'n1',
      inspect: () => ({
        actors: [
          {
            type: 'op',
            id: 'a',
            nodeId: 'n1',
            mailbox: { ...mailbox, turnMs: quantiles, waitMs: quantiles },
            durable: { delivered: 10, redelivered: 2, duplicatesSkipped: 1, unconfirmed: 5 },
          },
          {
            type: 'op',
            id: 'fast-only',
            nodeId: 'n1',
            mailbox: { ...mailbox, turnMs: quantiles, waitMs: quantiles },
            durable: { delivered: 0, redelivered: 0, duplicatesSkipped: 0 },
          },
        ],
        migrations: {
          out: 3,
          in: 2,
          failed: 1,
          pausedMs: { p50: 3.5, p99: 8, max: 8 },
          underWay: 1,
          arriving: 8,
          waiting: 3,
        },
        shedding: { reason: 'its heap is 95 % full', shed: 12 },
        typeSlots: { 'http-tool': { slots: 4, busy: 4, queued: 9 } },
        reminders: { tracked: 40, owned: 13, fired: 21, retried: 2 },
      }),
      record: () => ({
        eventLoopLagMs: { p99: 2, max: 6 },
        load: { devices: [{ device: 'h100', modelled: true, slots: 2, busy: 1, queued: 4 }] },
      }),
    } as unknown as Parameters<typeof observeNode>[0]);
    observeCoordinator({
      metrics: () => ({
        deploys: 1,
        migrations: 2,
        operatorsMoved: 3,
        movesFailed: 0,
        replicasAdded: 5,
        replicasRemoved: 4,
        leading: true,
      }),
      deployments: ['agent'],
      deployment: () => ({
        ops: [{ id: 'decode', replicas: [{}, {}] }, { id: 'calc' }],
        slaMs: 2000,
        latencyMs: 2809.5,
      }),
    });
    const heard = observeRequests();
    const ops = [{ id: 'calc', op: 'tool.invoke', ms: 3 }];
    heard({ deployment: 'agent', slaMs: 100, ok: true, latencyMs: 40, usd: 0.25, ops });
    heard({ deployment: 'agent', slaMs: 100, ok: true, latencyMs: 150, usd: 0.5, ops });
    heard({ deployment: 'agent', slaMs: 100, ok: false, latencyMs: 30, usd: 0, ops: [] });
    const text = await (await fetch(telemetry.metricsUrl!)).text();
    // SLA attainment is within ÷ all: 1 of 3 here (one answered late, one failed fast).
    const requests = (labels: string) =>
      Number(text.match(new RegExp(`stitch_requests_total\\{${labels}[^}]*\\} (\\d+)`))?.[1]);
    assert.equal(requests('deployment="agent",outcome="ok",within_sla="true"'), 1);
    assert.equal(requests('deployment="agent",outcome="ok",within_sla="false"'), 1);
    assert.equal(requests('deployment="agent",outcome="failed",within_sla="false"'), 1);
    assert.match(text, /stitch_request_ms[a-z_]*_bucket\{[^}]*deployment="agent"[^}]*le="50"\} 2/);
    assert.match(text, /stitch_request_ms[a-z_]*_count\{[^}]*deployment="agent"[^}]*\} 3/);
    assert.match(text, /stitch_operator_ask_ms[a-z_]*_bucket\{[^}]*op_id="calc"[^}]*le="5"\} 2/);
    assert.match(text, /stitch_usd_accrued[a-z_]*\{[^}]*deployment="agent"[^}]*\} 0.75/);
    assert.match(text, /stitch_actor_mailbox_depth\{[^}]*actor_type="op"[^}]*\} 3/);
    assert.match(
      text,
      /stitch_actor_durable_messages[a-z_]*\{[^}]*actor_id="a"[^}]*kind="redelivered"[^}]*\} 2/,
    );
    assert.match(text, /stitch_actor_durable_messages[a-z_]*\{[^}]*kind="duplicates_skipped"[^}]*\} 1/);
    assert.match(text, /stitch_actor_durable_unconfirmed\{[^}]*actor_id="a"[^}]*\} 5/);
    assert.doesNotMatch(text, /stitch_actor_durable_messages[a-z_]*\{[^}]*actor_id="fast-only"/);
    assert.match(text, /stitch_actor_turn_ms[a-z_]*\{[^}]*quantile="0.99"[^}]*\} 4/);
    assert.match(text, /stitch_node_event_loop_lag_ms[a-z_]*\{[^}]*quantile="1"[^}]*\} 6/);
    assert.match(text, /stitch_node_migrations[a-z_]*\{[^}]*kind="out"[^}]*\} 3/);
    assert.match(text, /stitch_node_migrations[a-z_]*\{[^}]*kind="failed"[^}]*\} 1/);
    assert.match(text, /stitch_node_migration_paused_ms[a-z_]*\{[^}]*quantile="0.5"[^}]*\} 3.5/);
    assert.match(text, /stitch_node_migrations_under_way\{[^}]*\} 1/);
    assert.match(text, /stitch_node_migrations_into\{[^}]*state="under_way"[^}]*\} 8/);
    assert.match(text, /stitch_node_migrations_into\{[^}]*state="waiting"[^}]*\} 3/);
    assert.match(text, /stitch_node_messages_shed[a-z_]*\{[^}]*node_id="n1"[^}]*\} 12/);
    assert.match(text, /stitch_node_shedding\{[^}]*node_id="n1"[^}]*\} 1/);
    assert.match(text, /stitch_node_reminders[a-z_]*\{[^}]*kind="fired"[^}]*\} 21/);
    assert.match(text, /stitch_node_reminders[a-z_]*\{[^}]*kind="retried"[^}]*\} 2/);
    assert.match(text, /stitch_node_reminders_owned\{[^}]*node_id="n1"[^}]*\} 13/);
    assert.match(text, /stitch_actor_messages_shed[a-z_]*\{[^}]*actor_id="a"[^}]*\} 6/);
    assert.match(text, /stitch_actor_type_slots\{[^}]*actor_type="http-tool"[^}]*state="total"[^}]*\} 4/);
    assert.match(text, /stitch_actor_type_slots\{[^}]*actor_type="http-tool"[^}]*state="queued"[^}]*\} 9/);
    assert.match(text, /stitch_coordinator_operators_moved[a-z_]*\{[^}]*\} 3/);
    assert.match(text, /stitch_coordinator_replicas_added[a-z_]*\{[^}]*\} 5/);
    assert.match(text, /stitch_device_slots\{[^}]*device="h100"[^}]*state="queued"[^}]*\} 4/);
    assert.match(text, /stitch_operator_activations\{deployment="agent",op_id="decode"[^}]*\} 3/);
    assert.match(text, /stitch_operator_activations\{deployment="agent",op_id="calc"[^}]*\} 1/);
    // A best-effort plan above its SLA shows as planned > SLA.
    assert.match(text, /stitch_deployment_sla_ms[a-z_]*\{deployment="agent"[^}]*\} 2000/);
    assert.match(text, /stitch_deployment_planned_ms[a-z_]*\{deployment="agent"[^}]*\} 2809.5/);
  } finally {
    await telemetry.shutdown();
  }
});

test('OTEL_EXPORTER_OTLP_PROTOCOL=http/json exports the same spans as JSON; a protocol it cannot speak is refused', async () => {
  const receiver = await startOtlpReceiver();
  const nats = await startEmbeddedNats();
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
  process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
  const telemetry = await startTelemetry({ serviceName: 'test', instanceId: 'json-1' });
  const cluster = await connectCluster({ nats: nats.url, name: 'teljson', log: () => undefined });
  try {
    await cluster.startNode({ actors: [Echo] });
    const ref = await cluster.spawn(Echo, { id: 'e3' });
    assert.equal(await ref.ask({ type: 'echo', text: 'j' }), 'j');
    await telemetry.shutdown();
    assert.deepEqual(new Set(receiver.contentTypes), new Set(['application/json']));
    const ask = receiver.spans.find((s) => s.name === 'ask echo' && s.attributes['stitch.actor.id'] === 'e3');
    assert.ok(ask, `an ask span in ${receiver.spans.map((s) => s.name)}`);
    assert.ok(receiver.spans.some((s) => s.name === 'handle echo' && s.parentSpanId === ask.spanId));
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'grpc';
    await assert.rejects(
      startTelemetry({ serviceName: 'test' }),
      (e: unknown) =>
        e instanceof TelemetryConfigError &&
        e.code === 'TELEMETRY_CONFIG' &&
        /http\/protobuf/.test(e.message),
    );
  } finally {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.OTEL_EXPORTER_OTLP_PROTOCOL;
    await cluster.close();
    await nats.stop();
    await receiver.close();
  }
});

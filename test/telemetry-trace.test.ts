// One request through a graph deployed on `stitch node` processes is one trace: the client's request
// span, a CLIENT span per op ask and an actor span per op, exported over OTLP by the processes that
// did the work (distinct service.instance.id). The nodes and the coordinator serve Prometheus metrics.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Deployment, GraphRunner, loadDeployment } from '@stitch/agents';
import { connectCluster, type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';
import { startTelemetry } from '@stitch/telemetry';
import { freePort, type OtlpReceiver, startOtlpReceiver } from '../packages/telemetry/test/otlp-receiver.js';

const BIN = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const ACTORS = fileURLToPath(new URL('../packages/agents/dist/actors.js', import.meta.url));
const SAMPLE = fileURLToPath(new URL('../packages/ir/samples/tool-agent.tiny-llama.mlir', import.meta.url));
const SPAN_KIND = { server: 2, client: 3 };
const children: ChildProcess[] = [];
let nats: EmbeddedNats | undefined;
let receiver: OtlpReceiver | undefined;
const metricsPorts = { node: 0, coordinator: 0 };

/**
 * A `stitch` process exporting spans to the receiver (every trace sampled: the default sampler,
 * parentbased_always_on, under which the runtime records its own spans; exported within 200 ms).
 */
function stitch(args: string[]): { waitFor: (re: RegExp) => Promise<void> } {
  const env = {
    ...process.env,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver!.url,
    OTEL_BSP_SCHEDULE_DELAY: '200',
  };
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (b: Buffer) => {
    out += b.toString();
    for (const w of waiters) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const waitFor = (re: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${re} in:\n${out}`)), 60_000);
      const check = () => {
        if (!re.test(out)) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      waiters.add(check);
      check();
    });
  return { waitFor };
}

before(async () => {
  receiver = await startOtlpReceiver();
  nats = await startEmbeddedNats();
  metricsPorts.node = await freePort();
  metricsPorts.coordinator = await freePort();
  const common = ['--nats', nats.url, '--name', 'traced'];
  const node = (id: string, more: string[]) =>
    stitch(['node', ...common, '--id', id, '--no-calibrate', '--actors', ACTORS, ...more]);
  const n1 = node('n1', ['--metrics-port', String(metricsPorts.node)]);
  const n2 = node('n2', ['--virtual', 'h100']);
  await Promise.all([n1.waitFor(/node n1 joined/), n2.waitFor(/node n2 joined/)]);
  const coord = stitch([
    'coordinator',
    ...common,
    '--deploy',
    SAMPLE,
    '--metrics-port',
    String(metricsPorts.coordinator),
  ]);
  await coord.waitFor(/deployed tool_agent/);
});

after(async () => {
  const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
  const exited = running.map((c) => new Promise((resolve) => c.once('exit', resolve)));
  for (const c of running) c.kill('SIGKILL');
  await Promise.all(exited);
  await nats?.stop();
  await receiver?.close();
});

test('one request is one trace: an ask span and an actor span for every op, from several processes', {
  timeout: 120_000,
}, async () => {
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver!.url;
  const telemetry = await startTelemetry({ serviceName: 'test-client' });
  delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const client = await connectCluster({ nats: nats!.url, name: 'traced', log: () => undefined });
  let d: Deployment | undefined;
  try {
    d = await loadDeployment(client, 'tool_agent');
    assert.ok(d, 'the deployment record is in KV');
    const r = await new GraphRunner(client).run(d, 'traced-1', { query: 'q', expr: '40+2', search: 'MLIR' });
    assert.deepEqual((r.answer as { calc?: unknown }).calc, { expr: '40+2', value: 42 });
  } finally {
    await client.close();
    await telemetry.shutdown(); // exports the client's spans
  }
  const request = receiver!.spans.find((s) => s.name === 'request tool_agent');
  assert.ok(request, 'the client exported the request span');
  const ops = d.ops;
  const inTrace = () => receiver!.spans.filter((s) => s.traceId === request.traceId);
  const of = (kind: number, actorId: string) =>
    inTrace().find((s) => s.kind === kind && s.attributes['stitch.actor.id'] === actorId);
  // The nodes export on their own schedule.
  await receiver!.until(() => ops.every((o) => of(SPAN_KIND.server, o.actorId)));
  const instances = new Set<unknown>();
  for (const op of ops) {
    const ask = of(SPAN_KIND.client, op.actorId);
    const turn = of(SPAN_KIND.server, op.actorId);
    assert.ok(ask, `an ask span for ${op.id}`);
    assert.ok(turn, `an actor span for ${op.id}`);
    assert.equal(turn.parentSpanId, ask.spanId, `${op.id}: the actor span is the ask's child`);
    assert.equal(turn.attributes['stitch.actor.type'], op.actorType);
    assert.equal(turn.attributes['stitch.outcome'], 'ok');
    assert.equal(turn.resource['service.name'], 'stitch-node');
    assert.equal(turn.attributes['stitch.node.id'], op.node);
    instances.add(ask.resource['service.instance.id']);
    instances.add(turn.resource['service.instance.id']);
  }
  assert.ok(instances.size >= 2, `spans from ${[...instances].join(', ')}`);
  // Each op's own work (kernels for the LLM ops) is a span inside its actor's turn.
  await receiver!.until(() => ops.every((o) => inTrace().some((s) => s.name === `compute ${o.op}`)));
  for (const op of ops) {
    const compute = inTrace().find(
      (s) =>
        s.name === `compute ${op.op}` &&
        s.attributes['stitch.device'] !== undefined &&
        s.parentSpanId === of(SPAN_KIND.server, op.actorId)?.spanId,
    );
    assert.ok(compute, `${op.id}: a compute span inside its turn`);
    // The LLM's kernels run as a span of their own inside the op's compute span.
    if (op.op === 'llm.prefill' || op.op === 'llm.decode') {
      const name = `kernel ${op.op}`;
      await receiver!.until(() =>
        inTrace().some((s) => s.name === name && s.parentSpanId === compute.spanId),
      );
      const kernel = inTrace().find((s) => s.name === name && s.parentSpanId === compute.spanId)!;
      assert.match(String(kernel.attributes['stitch.llm.model']), /TINY_LLAMA|checkpoint/);
    }
  }
  assert.ok(
    ops.some((o) => o.op === 'llm.decode'),
    'the deployed graph has a decode op (its kernel span is checked)',
  );
  // The coordinator exports on its own schedule too.
  await receiver!.until(() => receiver!.spans.some((s) => s.name === 'coordinator deploy'));
  const deploy = receiver!.spans.find((s) => s.name === 'coordinator deploy');
  assert.equal(deploy?.resource['service.name'], 'stitch-coordinator');
  // Planning: the graph's analysis and the solve are the deploy's children, with what the solver did.
  for (const name of ['solve analyse', 'solve plan']) {
    const solve = receiver!.spans.find((s) => s.name === name && s.parentSpanId === deploy!.spanId);
    assert.ok(solve, `${name}: a child of the deploy span`);
  }
  const plan = receiver!.spans.find((s) => s.name === 'solve plan')!;
  assert.match(String(plan.attributes['stitch.solver']), /milp|heuristic/);
  assert.equal(typeof plan.attributes['stitch.solve_ms.heuristic'], 'number');
});

test('stitch node and stitch coordinator serve Prometheus metrics', async () => {
  const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const node = await scrape(metricsPorts.node);
  assert.match(node, /stitch_actor_mailbox_depth\{[^}]*node_id="n1"/);
  assert.match(node, /stitch_actor_turn_ms[a-z_]*\{[^}]*quantile="0.99"/);
  assert.match(node, /stitch_node_event_loop_lag_ms[a-z_]*\{[^}]*node_id="n1"/);
  assert.match(
    node,
    /stitch_node_migrations[a-z_]*\{[^}]*kind="out"[^}]*node_id="n1"|stitch_node_migrations[a-z_]*\{[^}]*node_id="n1"[^}]*kind="out"/,
  );
  const coordinator = await scrape(metricsPorts.coordinator);
  assert.match(coordinator, /stitch_coordinator_deploys[a-z_]*(\{[^}]*\})? 1/);
  assert.match(coordinator, /stitch_coordinator_operators_moved/);
  assert.match(coordinator, /stitch_operator_activations\{deployment="tool_agent",op_id="[^"]+"[^}]*\} 1/);
});

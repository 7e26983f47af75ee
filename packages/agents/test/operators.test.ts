import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Llama, referenceOps, syntheticWeights } from '@stitch/kernels';
import { type Cluster, connectCluster } from '@stitch/runtime';
import {
  closeMemoryConnections,
  type Deployment,
  GraphRunner,
  MAX_REQUEST_LISTENERS,
  OPERATOR_ACTORS,
  type OpConfig,
  type OpReply,
  type RequestOutcome,
  TINY_LLAMA,
} from '../src/index.js';

let cluster: Cluster;

before(async () => {
  cluster = await connectCluster({ name: 'agentsops', log: () => undefined });
  await cluster.startNode({ id: 'n1', actors: OPERATOR_ACTORS, virtual: ['h100'] });
});

after(async () => {
  await closeMemoryConnections();
  await cluster?.close();
});

function config(op: string, attrs: OpConfig['attrs'] = {}, modelled = false, estimatedMs = 0): OpConfig {
  return {
    deployment: 'dep',
    opId: op.replace('.', '_'),
    op,
    attrs,
    device: modelled ? 'h100' : 'cpu',
    modelled,
    estimatedMs,
    natsUrl: cluster.url,
    cluster: cluster.name,
  };
}

async function operator(kind: string, id: string, cfg: OpConfig) {
  const ref = await cluster.spawn(`op-${kind}`, { id });
  await ref.ask({ type: 'configure', config: cfg }, { timeoutMs: 60_000 });
  return (rid: string, ctx: Record<string, unknown>) =>
    ref.ask({ type: 'run', rid, ctx }, { timeoutMs: 30_000 }) as Promise<OpReply>;
}

test('tools: calculator and web_search run for real on cpu', async () => {
  const calc = await operator('tool', 't-calc', config('tool.invoke', { tool: 'calculator' }));
  const r = await calc('r1', { expr: '6*7' });
  assert.deepEqual(r.out.calc, { expr: '6*7', value: 42 });
  assert.equal(r.modelled, false);
  assert.equal(r.device, 'cpu');
  const search = await operator('tool', 't-search', config('tool.invoke', { tool: 'web_search' }));
  const s = await search('r1', { search: 'Gaudi 3 accelerator' });
  assert.equal((s.out.hits as { title: string }[])[0]?.title, 'Gaudi 3');
});

test('memory: store then load through the JetStream KV bucket', async () => {
  const store = await operator('memory', 'm-store', config('memory.store', { key: 'profile' }));
  const load = await operator('memory', 'm-load', config('memory.load', { key: 'profile' }));
  await store('r1', { calc: { value: 7 } });
  const r = await load('r2', {});
  assert.equal(r.out.recall, JSON.stringify({ value: 7 }));
});

test('llm: prefill + decode on compiled kernels match the TypeScript reference model', async () => {
  const prefill = await operator('llm', 'l-prefill', config('llm.prefill'));
  const decode = await operator('llm', 'l-decode', config('llm.decode'));
  const ids = [...new TextEncoder().encode('hello stitch')];
  const p = await prefill('r1', { ids });
  const d = await decode('r1', { ...p.out, ids });
  const ref = new Llama(syntheticWeights(TINY_LLAMA, 7), referenceOps(TINY_LLAMA));
  const expected = await ref.generate(ids, (d.out.tokens as number[]).length);
  assert.deepEqual(d.out.tokens, expected);
});

test('modelled executor takes the predicted time and says so', async () => {
  const kv = await operator('kv', 'k-model', config('kv.transfer', {}, true, 120));
  const t0 = performance.now();
  const r = await kv('r1', {});
  assert.ok(performance.now() - t0 >= 115);
  assert.equal(r.ms, 120);
  assert.equal(r.modelled, true);
  assert.equal(r.device, 'virtual:h100');
});

test('ops on one modelled device share its slots: with one slot, two ops run one after the other', async () => {
  const a = await operator('kv', 'k-slot-a', config('kv.transfer', {}, true, 100));
  const b = await operator('kv', 'k-slot-b', config('kv.transfer', {}, true, 100));
  const t0 = performance.now();
  const done = await Promise.all([a('r1', {}), b('r1', {})].map((p) => p.then(() => performance.now() - t0)));
  // Lower bounds only: the second op waited for the device's one slot (h100 on n1 has one).
  assert.ok(Math.max(...done) >= 195, `both done after ${done.map((x) => x.toFixed(0)).join(', ')} ms`);
  // The wait is reported apart from the work: one of the two waited about a whole turn of the other.
  const actors = (await cluster.inspectNode('n1'))!.actors.filter((x) => x.id.startsWith('k-slot-'));
  assert.equal(actors.length, 2);
  assert.ok(
    Math.max(...actors.map((x) => x.slotWaitMs ?? 0)) >= 90,
    JSON.stringify(actors.map((x) => x.slotWaitMs)),
  );
});

test('a repeated request is answered from the record; counts survive stop + respawn', async () => {
  const run = await operator('tool', 't-dup', config('tool.invoke', { tool: 'calculator' }));
  const a = await run('same', { expr: '1+1' });
  const b = await run('same', { expr: '1+1' });
  assert.equal(a.replay, false);
  assert.equal(b.replay, true);
  const ref = cluster.ref({ type: 'op-tool', id: 't-dup' });
  await cluster.stop(ref);
  await cluster.spawn('op-tool', { id: 't-dup', node: 'n1' });
  const counts = (await ref.ask({ type: 'counts' })) as { applied: number; replays: number };
  assert.deepEqual([counts.applied, counts.replays], [1, 1]);
  const c = await run('same', { expr: '1+1' });
  assert.equal(c.replay, true);
});

test("configure refuses an older coordinator epoch (a deposed leader's) and keeps the newer config, across a restart", async () => {
  const ref = await cluster.spawn('op-tool', { id: 't-fenced' });
  const calc = config('tool.invoke', { tool: 'calculator' });
  const search = config('tool.invoke', { tool: 'web_search' });
  const configure = (cfg: OpConfig, epoch?: unknown) =>
    ref.ask({ type: 'configure', config: cfg, epoch }, { timeoutMs: 10_000 });
  const tool = async () => ((await ref.ask({ type: 'counts' })) as { config: OpConfig }).config.attrs.tool;
  const stale = (e: { code?: string; message?: string }) =>
    e.code === 'STALE_FENCE' && /epoch 2 was refused: epoch 3 has taken over/.test(e.message ?? '');
  await configure(calc, 3);
  await assert.rejects(configure(search, 2), stale);
  assert.equal(await tool(), 'calculator');
  await configure(search, 3);
  assert.equal(await tool(), 'web_search');
  await assert.rejects(configure(calc, 0), (e: { code?: string }) => e.code === 'OP_CONFIG_INVALID');
  await assert.rejects(configure(calc, 'x'), (e: { code?: string }) => e.code === 'OP_CONFIG_INVALID');
  // The epoch travels with the snapshot: the restarted operator still refuses the old one.
  await cluster.stop(ref);
  await cluster.spawn('op-tool', { id: 't-fenced', node: 'n1' });
  await assert.rejects(configure(calc, 2), stale);
  assert.equal(await tool(), 'web_search');
  // Without an epoch (a coordinator without a lease) a configure is not fenced.
  await configure(calc);
  assert.equal(await tool(), 'calculator');
});

test('an unconfigured operator refuses work with a code that says what is missing', async () => {
  const ref = await cluster.spawn('op-text', { id: 'unconfigured' });
  await assert.rejects(
    ref.ask({ type: 'run', rid: 'x', ctx: {} }),
    (e: { code?: string }) => e.code === 'OP_NOT_CONFIGURED',
  );
});

test('configure rejects a hostile config with OP_CONFIG_INVALID and stays unconfigured', async () => {
  const ref = await cluster.spawn('op-kv', { id: 'hostile-config' });
  const configure = (cfg: unknown) => ref.ask({ type: 'configure', config: cfg }, { timeoutMs: 10_000 });
  const invalid = (what: RegExp) => (e: { code?: string; message?: string }) =>
    e.code === 'OP_CONFIG_INVALID' && what.test(e.message ?? '');
  // A modelled op would sleep this long on every request.
  await assert.rejects(configure(config('kv.transfer', {}, true, 1e12)), invalid(/estimatedMs/));
  await assert.rejects(configure(config('kv.transfer', {}, true, Number.NaN)), invalid(/estimatedMs/));
  await assert.rejects(configure(config('kv.transfer', {}, true, -5)), invalid(/estimatedMs/));
  // The operator opens connections only to its own NATS server, never to one a message names.
  for (const natsUrl of ['http://127.0.0.1:1', 'nats://127.0.0.1:1', 'nats://user:pw@127.0.0.1:4222']) {
    await assert.rejects(configure({ ...config('memory.load'), natsUrl }), invalid(/natsUrl/));
  }
  await assert.rejects(configure(config('kv.transfer', { big: 'x'.repeat(100_000) })), invalid(/attrs/));
  await assert.rejects(configure({ ...config('kv.transfer'), cluster: 'a.b>' }), invalid(/cluster/));
  await assert.rejects(configure(null), invalid(/config/));
  await assert.rejects(
    ref.ask({ type: 'run', rid: 'x', ctx: {} }),
    (e: { code?: string }) => e.code === 'OP_NOT_CONFIGURED',
  );
  // Within the limits it is accepted.
  await configure(config('kv.transfer', {}, true, 60_000));
});

test("a reply too large for the runtime's duplicate record is answered to a retry from the operator's own record", async () => {
  const cfg = config('text.tts');
  const tts = await cluster.spawn('op-text', { id: 'tts-big' });
  await tts.ask({ type: 'configure', config: cfg }, { timeoutMs: 60_000 });
  // Long text: a reply of megabytes (speech), and slow enough that a 60 ms ask times out while it runs.
  const ctx = { reply: 'the operator keeps what the runtime cannot. '.repeat(30) };
  const d = {
    name: 'dep',
    usdPerHour: {},
    ops: [
      {
        id: 'speak',
        op: 'text.tts',
        deps: [],
        actorType: 'op-text',
        actorId: 'tts-big',
        classId: 'cpu',
        node: 'n1',
      },
    ],
  } as unknown as Deployment;
  const r = await new GraphRunner(cluster, { timeoutMs: 60 }).run(d, 'big-1', ctx);
  assert.ok(r.retries > 0, 'the first ask timed out');
  assert.equal(r.ops.speak!.replay, true, 'the retry was answered from the record, not run again');
  const counts = (await tts.ask({ type: 'counts' })) as { applied: number };
  assert.equal(counts.applied, 1);
  const speech = (r.answer as { speech: Uint8Array }).speech;
  assert.ok(speech.byteLength > 64 * 1024, `${speech.byteLength} bytes`);
  await assert.rejects(
    tts.ask({ type: 'result', rid: 'never-ran' }),
    (e) =>
      (e as { code?: string }).code === 'REQUEST_FAILED' && /no recorded reply/.test((e as Error).message),
  );
});

test('a runner tells its request listeners how each request ended: answered or failed, time, $ and ops', async () => {
  await operator('tool', 'l-calc', config('tool.invoke', { tool: 'calculator' }));
  await operator('tool', 'l-search', config('tool.invoke', { tool: 'web_search' }));
  const op = (id: string, actorId: string, deps: string[]) => ({
    id,
    op: 'tool.invoke',
    deps,
    actorType: 'op-tool',
    actorId,
    classId: 'cpu',
    node: 'n1',
  });
  const d = {
    name: 'listened',
    slaMs: 60_000,
    usdPerHour: { cpu: 3.6e6 }, // $1 a millisecond: every answered request accrues its ops' time
    ops: [op('calc', 'l-calc', []), op('search', 'l-search', ['calc'])],
  } as unknown as Deployment;
  const runner = new GraphRunner(cluster, { timeoutMs: 5000, retries: 0 });
  const heard: RequestOutcome[] = [];
  const stop = runner.onRequest((o) => heard.push(o));
  runner.onRequest(() => {
    throw new Error('a listener that fails changes nothing');
  });
  const r = await runner.run(d, 'l-1', { expr: '1+1', search: 'Gaudi 3 accelerator' });
  await assert.rejects(runner.run(d, 'l-2', { expr: '1 +', search: 'x' }), /request l-2: op calc failed/);
  assert.equal(heard.length, 2);
  const [ok, failed] = heard as [RequestOutcome, RequestOutcome];
  assert.deepEqual(
    [ok.deployment, ok.slaMs, ok.ok, ok.latencyMs, ok.usd],
    ['listened', 60_000, true, r.latencyMs, r.usd],
  );
  assert.ok(ok.usd > 0);
  assert.deepEqual(
    ok.ops.map((o) => [o.id, o.op, o.ms]),
    [
      ['calc', 'tool.invoke', r.ops.calc!.askMs],
      ['search', 'tool.invoke', r.ops.search!.askMs],
    ],
  );
  assert.deepEqual([failed.ok, failed.usd, failed.ops], [false, 0, []]);
  assert.ok(failed.latencyMs > 0);
  stop();
  await runner.run(d, 'l-3', { expr: '2+2', search: 'x' });
  assert.equal(heard.length, 2, 'a removed listener hears nothing');
  for (let i = 1; i < MAX_REQUEST_LISTENERS; i++) runner.onRequest(() => undefined);
  assert.throws(
    () => runner.onRequest(() => undefined),
    (e: { code?: string }) => e.code === 'TOO_MANY_LISTENERS',
  );
});

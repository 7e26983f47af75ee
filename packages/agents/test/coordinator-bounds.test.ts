// The coordinator against a stub cluster: what it keeps per event is bounded, and what it sends to
// operators passes their configure schema.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Cluster } from '@stitch/runtime';
import { waitUntil } from '../../../test/fixtures/wait.js';
import {
  allowOperatorNatsUrls,
  Coordinator,
  MAX_DEPLOY_BYTES,
  MAX_DEPLOYMENTS,
  MAX_MIGRATIONS,
  type OpConfig,
  validateOpConfig,
} from '../src/index.js';

const sample = readFileSync(new URL('../../ir/samples/tool-agent.tiny-llama.mlir', import.meta.url), 'utf8');

/** One healthy cpu node; every operator is "somewhere else", so each re-plan moves all of them. */
function stubCluster(url: string) {
  const configs: OpConfig[] = [];
  const store = new Map<string, string>();
  const revisions = new Map<string, number>();
  let revision = 0;
  const kv = {
    put: async (k: string, v: string) => {
      store.set(k, v);
      revisions.set(k, ++revision);
      return revision;
    },
    get: async (k: string) => {
      const v = store.get(k);
      if (v === undefined) return null;
      return {
        operation: 'PUT',
        revision: revisions.get(k),
        value: Buffer.from(v),
        json: () => JSON.parse(v),
      };
    },
    create: async (k: string, v: string) => {
      if (store.has(k)) throw new Error('wrong last sequence');
      return kv.put(k, v);
    },
    update: async (k: string, v: string, rev: number) => {
      if (revisions.get(k) !== rev) throw new Error('wrong last sequence');
      return kv.put(k, v);
    },
    keys: async () => (async function* () {})(),
  };
  const node = {
    nodeId: 'a',
    healthy: true,
    actorTypes: ['op-tool'],
    devices: [{ kind: 'cpu' }],
    load: { actors: 0, queued: 0 },
  };
  const cluster = {
    name: 'bounds',
    url,
    kv: async () => kv,
    nodes: async () => [node],
    locate: async () => ({ node: 'gone' }),
    isNodeAlive: async () => false,
    stop: async () => undefined,
    spawn: async () => ({}),
    ref: () => ({
      ask: async (msg: { config: OpConfig }) => {
        configs.push(msg.config);
        return { applied: 0 };
      },
    }),
    onMembership: async () => () => undefined,
    kvKeys: async () => [...store.keys()],
    fence: () => undefined,
    announceFence: async () => [],
    isNodeDraining: async () => false,
  };
  return { cluster: cluster as unknown as Cluster, configs, store };
}

test('the migration list keeps only the most recent keepMigrations events', async () => {
  const { cluster } = stubCluster('nats://127.0.0.1:4222');
  const c = new Coordinator(cluster, { keepMigrations: 5 });
  await c.deploy(sample, 'd');
  for (let i = 0; i < 12; i++) assert.ok(await c.replan('d', `event ${i}`));
  assert.equal(c.migrations.length, 5);
  assert.deepEqual(
    c.migrations.map((m) => m.reason),
    ['event 7', 'event 8', 'event 9', 'event 10', 'event 11'],
  );
  assert.equal(MAX_MIGRATIONS, 100);
  assert.throws(() => new Coordinator(cluster, { keepMigrations: 0 }), /keepMigrations/);
});

test('the default keeps MAX_MIGRATIONS', async () => {
  const { cluster } = stubCluster('nats://127.0.0.1:4222');
  const c = new Coordinator(cluster);
  await c.deploy(sample, 'd');
  for (let i = 0; i < MAX_MIGRATIONS + 3; i++) await c.replan('d', `event ${i}`);
  assert.equal(c.migrations.length, MAX_MIGRATIONS);
  assert.equal(c.migrations[0]!.reason, 'event 3');
});

test('configs name the server as a nats:// URL even when the cluster reports host:port', async () => {
  allowOperatorNatsUrls('any');
  const { cluster, configs } = stubCluster('127.0.0.1:4222');
  await new Coordinator(cluster).deploy(sample, 'd');
  assert.ok(configs.length > 0);
  for (const cfg of configs) {
    assert.equal(cfg.natsUrl, 'nats://127.0.0.1:4222');
    validateOpConfig(cfg);
  }
  allowOperatorNatsUrls('first');
});

test('a deploy from the bus is checked: graph text, name, and how many deployments one coordinator keeps', async () => {
  const { cluster } = stubCluster('nats://127.0.0.1:4222');
  const c = new Coordinator(cluster, { maxDeployments: 2 });
  const invalid = (e: unknown) => (e as { code?: string }).code === 'DEPLOY_INVALID';
  await assert.rejects(c.deploy(42 as unknown as string), invalid);
  await assert.rejects(c.deploy('x'.repeat(MAX_DEPLOY_BYTES + 1)), invalid);
  // The name becomes a KV key: one without spaces or dots, checked before any operator is placed.
  await assert.rejects(c.deploy(sample, 'has space'), invalid);
  await assert.rejects(c.deploy(sample, 'a.b'), invalid);
  await c.deploy(sample, 'one');
  await c.deploy(sample, 'two');
  await assert.rejects(c.deploy(sample, 'three'), /maxDeployments/);
  // Redeploying a kept name is not a new deployment.
  await c.deploy(sample, 'two');
  assert.deepEqual(c.deployments.sort(), ['one', 'two']);
  assert.equal(MAX_DEPLOYMENTS, 64);
});

test('malformed measurements are skipped, not trusted', async () => {
  const { cluster } = stubCluster('nats://127.0.0.1:4222');
  const c = new Coordinator(cluster);
  await c.deploy(sample, 'd');
  const e = await c.deploy(sample, 'e');
  const infinite = e.ops.map((op) => ({ deployment: 'd', opId: op.id, ms: Number.POSITIVE_INFINITY }));
  // A batch is charged to the deployment its first measurement names; those of another are skipped.
  const mixed = [
    { deployment: 'd', opId: 'no such op', ms: 1 },
    ...e.ops.map((op) => ({ deployment: 'e', opId: op.id, ms: 1000 })),
  ];
  for (const bad of [
    null,
    'x',
    5,
    [null],
    [{ deployment: 'd' }],
    [{ deployment: 'd', opId: 1, ms: 'a' }],
    infinite,
    mixed,
  ])
    c.observe(bad as never);
  assert.deepEqual(c.correction.snapshot(), new Coordinator(cluster).correction.snapshot());
});

test('measurements correct each op by its own factor, forgotten when its deployment is deployed again', async () => {
  const { cluster } = stubCluster('nats://127.0.0.1:4222');
  const c = new Coordinator(cluster);
  const d = await c.deploy(sample, 'd');
  const est = (id: string) => d.rawMs[id]!.cpu!;
  // Two llm ops the model misjudges in opposite directions (each estimate is over MIN_CORRECTED_MS).
  const batch = [
    { deployment: 'd', opId: 'plan_prefill', ms: est('plan_prefill') * 4, modelled: false },
    { deployment: 'd', opId: 'plan_ids', ms: est('plan_ids') / 2, modelled: false },
  ];
  for (let k = 0; k < 3; k++) c.observe(batch);
  const own = c.correction.snapshot();
  assert.ok(Math.abs(own['d/plan_prefill@cpu']!.factor - 4) < 1e-9);
  assert.ok(Math.abs(own['d/plan_ids@cpu']!.factor - 0.5) < 1e-9);
  assert.equal(own['llm@cpu']!.samples, 6);
  await c.deploy(sample, 'd');
  assert.deepEqual(Object.keys(c.correction.snapshot()), ['llm@cpu']);
});

test("reported requests are counted against their deployment's SLA; malformed or unknown ones are not", async () => {
  const { cluster } = stubCluster('nats://127.0.0.1:4222');
  const c = new Coordinator(cluster);
  const d = await c.deploy(sample, 'd');
  const report = (request: unknown) => c.observe([], request as never);
  report({ deployment: 'd', ok: true, latencyMs: d.slaMs, usd: 0.5 });
  report({ deployment: 'd', ok: true, latencyMs: d.slaMs + 1, usd: 0.25 });
  report({ deployment: 'd', ok: false, latencyMs: 3, usd: 0 });
  for (const bad of [
    null,
    'x',
    { deployment: 'other', ok: true, latencyMs: 1, usd: 0 },
    { deployment: 'd', ok: 'yes', latencyMs: 1, usd: 0 },
    { deployment: 'd', ok: true, latencyMs: -1, usd: 0 },
    { deployment: 'd', ok: true, latencyMs: Number.NaN, usd: 0 },
    { deployment: 'd', ok: true, latencyMs: 1, usd: Number.POSITIVE_INFINITY },
  ])
    report(bad);
  assert.deepEqual(c.requestCounts(), { d: { answered: 2, failed: 1, withinSla: 1, usd: 0.75 } });
});

test('recorded deployments that do not check are skipped at start, the valid one taken over', async () => {
  const { cluster, store } = stubCluster('nats://127.0.0.1:4222');
  const d = await new Coordinator(cluster).deploy(sample, 'good');
  const bad = {
    'no-ops': { ...d, name: 'no-ops', ops: undefined },
    'bad-replicas': { ...d, name: 'bad-replicas', ops: d.ops.map((o) => ({ ...o, replicas: 5 })) },
    'no-estimates': { ...d, name: 'no-estimates', rawMs: undefined },
    'no-graph': { ...d, name: 'no-graph', mlir: 42 },
    renamed: { ...d, name: 'other' },
  };
  for (const [k, v] of Object.entries(bad)) store.set(k, JSON.stringify(v));
  const lines: string[] = [];
  const c = new Coordinator(cluster, { leaseMs: 200, log: (l) => lines.push(l) });
  await c.start();
  try {
    assert.deepEqual(c.deployments, ['good']);
    for (const k of Object.keys(bad))
      assert.ok(
        lines.some((l) => l.startsWith(`deployment record ${k} skipped`)),
        `${k} skipped: ${lines.join(' | ')}`,
      );
  } finally {
    await c.stop();
  }
});

test('a take-over keeps a deployment this process holds newer than the bucket, not the older record', async () => {
  const { cluster, store } = stubCluster('nats://127.0.0.1:4222');
  const lines: string[] = [];
  const c = new Coordinator(cluster, { leaseMs: 200, log: (l) => lines.push(l) });
  await c.deploy(sample, 'd');
  const v1 = store.get('d')!;
  await c.replan('d', 'one');
  await c.replan('d', 'two');
  assert.equal(c.deployment('d')!.version, 3);
  // The bucket is behind what this process holds (an operation under way has not saved yet).
  store.set('d', v1);
  await c.start();
  try {
    await waitUntil(() => lines.some((l) => l.startsWith('take-over (epoch')), 10_000);
    assert.ok(c.deployment('d')!.version > 3, `version ${c.deployment('d')!.version}`);
  } finally {
    await c.stop();
  }
});

test('a coordinator stopped while it starts opens nothing more and does not lead', async () => {
  const { cluster } = stubCluster('nats://127.0.0.1:4222');
  const c = new Coordinator(cluster, { leaseMs: 200 });
  const started = c.start();
  await c.stop();
  await started;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(c.leading, false);
  assert.equal(c.metrics().elected, 0);
});

test('a deploy queued when the coordinator stops is refused, opening no solver; a restart solves again', async () => {
  const { cluster } = stubCluster('nats://127.0.0.1:4222');
  const c = new Coordinator(cluster, { leaseMs: 200 });
  await c.deploy(sample, 'd');
  const stopped = (e: unknown) =>
    (e as { code?: string }).code === 'COORDINATOR_NOT_LEADER' && /stopped/.test((e as Error).message);
  // Waits in the deploy queue while stop() closes the solver threads.
  const queued = c.deploy(sample, 'e').then(
    () => 'deployed',
    (e: unknown) => e,
  );
  await c.stop();
  const outcome = await queued;
  assert.ok(stopped(outcome), `refused as stopped, not ${String(outcome)}`);
  await assert.rejects(c.deploy(sample, 'f'), stopped);
  assert.deepEqual(c.deployments, ['d']);
  // Recorded by another coordinator meanwhile: the restart's load analyses it on new solver threads.
  const other = new Coordinator(cluster);
  await other.deploy(sample, 'x');
  await other.stop();
  await c.start();
  try {
    assert.deepEqual(c.deployments.sort(), ['d', 'x']);
    await c.deploy(sample, 'g');
    assert.deepEqual(c.deployments.sort(), ['d', 'g', 'x']);
  } finally {
    await c.stop();
  }
});

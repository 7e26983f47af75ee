import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ActorInspection } from '@stitch/runtime';
import type { NodeView } from '@stitch/serve';
import {
  actorsText,
  type ClusterStatus,
  STATUS_ACTORS_PER_NODE,
  STATUS_MIGRATIONS,
  statusText,
} from '../src/status-text.js';

const node = (id: string, extra: Partial<NodeView> = {}): NodeView => ({
  id,
  host: 'h',
  pid: 7,
  healthy: true,
  draining: false,
  shedding: false,
  devices: ['cpu: m, 2 cores'],
  classId: 'cpu',
  modelled: false,
  hostsOperators: true,
  load: { actors: 3, queued: 12, running: 1, loadAvg1: 0.5 },
  lagP99Ms: 4.25,
  rssBytes: 96 * 1024 * 1024,
  calibrated: null,
  ...extra,
});

const base: ClusterStatus = {
  at: Date.UTC(2026, 11, 7),
  cluster: 'c',
  nodes: [
    node('a'),
    node('b', { classId: 'h100', modelled: true, draining: true, shedding: true, healthy: false }),
  ],
  deployments: [
    {
      name: 'g',
      slaMs: 500,
      solver: 'milp',
      latencyMs: 12.345,
      usdPerRequest: 0.00012,
      ops: [
        {
          id: 'decode',
          op: 'llm.decode',
          kind: 'llm',
          deps: [],
          node: 'b',
          classId: 'h100',
          modelled: true,
          estimatedMs: 10,
          replicas: ['a'],
          mailbox: null,
        },
      ],
    },
  ],
  coordinator: { ok: false, error: 'stitch-coordinator/main did not answer: timeout' },
  usdPerHour: 1,
  sla: { answered: 0, failed: 0, withinSla: 0 },
};

test('status text: each node with what it is doing, operators with their node and replicas, a silent coordinator said so', () => {
  const lines = statusText(base, 'main');
  assert.equal(lines[0], 'cluster "c" at 2026-12-07T00:00:00.000Z: 2 node(s), 1 deployment(s)');
  assert.equal(lines[1], 'coordinator main: stitch-coordinator/main did not answer: timeout');
  const b = lines.find((l) => l.startsWith('b '))!;
  assert.match(
    b,
    /^b\s+h100 \(modelled\)\s+unhealthy, draining, shedding load\s+3\s+12\s+1\s+4\.3\s+96\s+h pid 7$/,
  );
  assert.ok(lines.includes('deployment g: SLA 500 ms, planned 12.3 ms, $1.20e-4 per request (milp)'));
  // A mailbox that did not answer shows as unknown, not as zero.
  assert.match(
    lines.find((l) => l.startsWith('  decode'))!,
    /^ {2}decode\s+llm\s+h100 \(modelled\)\s+b\s+a\s+10\.00\s+\?\s+\?$/,
  );
  assert.ok(!lines.some((l) => l.startsWith('migrations')));
  // A cluster name no node was given: said so, rather than an empty table.
  const none = statusText({ ...base, nodes: [], deployments: [] }, 'main');
  assert.ok(none.includes('no live node in cluster "c": is it the name the nodes were given (--name)?'));
  assert.ok(!none.some((l) => l.startsWith('node ')));
});

test('status text: a leading coordinator with its counts, and only the latest migrations', () => {
  const migrations = Array.from({ length: STATUS_MIGRATIONS + 2 }, (_, i) => ({
    deployment: 'g',
    reason: `move ${i}`,
    moved: [{ opId: 'decode', from: 'a', to: 'b', fromClass: 'cpu', toClass: 'h100' }],
    ms: 3,
    at: Date.UTC(2026, 11, 7, 0, 0, i),
  }));
  const metrics = {
    deploys: 1,
    migrations: migrations.length,
    operatorsMoved: 7,
    operatorsMovedLive: 6,
    movesFailed: 1,
    replansSuperseded: 0,
    replicasAdded: 0,
    replicasRemoved: 0,
    elected: 1,
    deposed: 0,
    ignoredMembership: 0,
    leading: true,
    epoch: 4,
  };
  const lines = statusText(
    {
      ...base,
      coordinator: { ok: true, metrics, migrations },
      sla: { answered: 9, failed: 1, withinSla: 8 },
    },
    'main',
  );
  assert.equal(
    lines[1],
    'coordinator main: leads (epoch 4); 7 migration(s), 7 operator(s) moved (6 live), 1 move(s) failed',
  );
  assert.equal(lines[2], 'requests reported: 9 answered (8 within SLA), 1 failed');
  const at = lines.indexOf(`migrations (the last ${STATUS_MIGRATIONS} of ${migrations.length}):`);
  assert.ok(at > 0);
  assert.deepEqual(
    lines.slice(at + 1).map((l) => l.match(/move \d+/)?.[0]),
    migrations.slice(-STATUS_MIGRATIONS).map((m) => m.reason),
  );
  assert.match(lines[at + 1]!, /^ {2}2026-12-07T00:00:02\.000Z g: move 2: decode a→b in 3 ms$/);
});

test("status --actors: each node's actors sorted, bounded per node; a node that did not answer said so", () => {
  const actor = (id: string): ActorInspection => ({
    type: 'counter',
    id,
    nodeId: 'a',
    epoch: 2,
    status: 'running',
    restarts: 1,
    durable: { delivered: 0, redelivered: 0, duplicatesSkipped: 0 },
    mailbox: {
      depth: 3,
      running: 1,
      maxDepth: 3,
      accepted: 9,
      processed: 8,
      rejected: 4,
      shed: 5,
      busyMs: 1,
      turnMs: { p50: 1, p99: 1, max: 1 },
      waitMs: { p50: 1, p99: 1, max: 1 },
    },
  });
  const many = Array.from({ length: STATUS_ACTORS_PER_NODE + 2 }, (_, i) =>
    actor(`c${String(i).padStart(3, '0')}`),
  );
  const old = actor('from-an-earlier-version');
  delete old.mailbox.shed;
  const lines = actorsText({ a: many.reverse(), b: null, c: [], d: [old] });
  assert.ok(lines.includes(`actors on a (${STATUS_ACTORS_PER_NODE + 2}):`));
  assert.match(
    lines.find((l) => l.startsWith('  counter'))!,
    /^ {2}counter\s+c000\s+running\s+2\s+1\s+3\s+1\s+8\s+4\s+5$/,
  );
  assert.match(
    lines.at(-1)!,
    /^ {2}counter\s+from-an-earlier-version\s+running\s+2\s+1\s+3\s+1\s+8\s+4\s+-$/,
  );
  assert.equal(lines.filter((l) => l.startsWith('  counter  c')).length, STATUS_ACTORS_PER_NODE);
  assert.ok(lines.includes('  … and 2 more (--json lists them all)'));
  assert.ok(lines.includes('actors on b: the node did not answer its inspection'));
  assert.ok(lines.includes('actors on c (0):'));
});

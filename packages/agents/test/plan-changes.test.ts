import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Deployment } from '../src/deployment.js';
import type { NodeClass, PlacedOp } from '../src/placement.js';
import {
  describeMigration,
  migrationEvent,
  recordAfterClassMove,
  recordAfterReplan,
} from '../src/plan-changes.js';

const op = (id: string, node: string, classId: string, extra: Partial<PlacedOp> = {}): PlacedOp => ({
  id,
  op: 'agent.tool',
  kind: 'tool',
  deps: [],
  attrs: {},
  actorType: 'op.tool',
  actorId: `d-${id}`,
  classId,
  modelled: false,
  node,
  estimatedMs: 10,
  usdPerRequest: 0,
  ...extra,
});

const record = (ops: PlacedOp[]): Deployment => ({
  name: 'd',
  mlir: '',
  slaMs: 100,
  version: 3,
  natsUrl: 'nats://127.0.0.1:4222',
  cluster: 'c',
  ops,
  solver: 'heuristic',
  solveMs: { milp: null, heuristic: 1 },
  latencyMs: 20,
  usdPerRequest: 0,
  usdPerHour: { cpu: 1, gpu: 4 },
  rawMs: { a: { cpu: 10, gpu: 2 }, b: { cpu: 10, gpu: 2 } },
  notes: [],
});

const node = (nodeId: string, classId: string): NodeClass => ({
  nodeId,
  classId,
  modelled: false,
  load: 0,
  slots: 1,
});

test('a re-plan moves the operators not where the plan wants them, from where they run', () => {
  const old = record([op('a', 'n1', 'cpu'), op('b', 'n2', 'cpu')]);
  const plan = { ...old, ops: [op('a', 'n1', 'cpu'), op('b', 'n3', 'gpu')] };
  // b's node left: it runs nowhere live, so it moves from where the record had it.
  const r = recordAfterReplan(old, plan, [node('n1', 'cpu'), node('n3', 'gpu')], ['n1', undefined]);
  assert.equal(r.next.version, 4);
  assert.deepEqual(
    r.moves.map((m) => [m.op.id, m.from, m.op.node, m.was.classId]),
    [['b', 'n2', 'n3', 'cpu']],
  );
  assert.equal(r.dropped.length, 0);
});

test('replicas stay on live nodes of their op class; the rest are retired, and the plan adds none', () => {
  const replicas = [
    { actorId: 'd-a~1', node: 'n2' },
    { actorId: 'd-a~2', node: 'gone' },
    { actorId: 'd-a~3', node: 'n3' },
  ];
  const old = record([op('a', 'n1', 'cpu', { replicas })]);
  const plan = { ...old, ops: [op('a', 'n1', 'cpu', { replicas: [{ actorId: 'new', node: 'n2' }] })] };
  const nodes = [node('n1', 'cpu'), node('n2', 'cpu'), node('n3', 'gpu')];
  const r = recordAfterReplan(old, plan, nodes, ['n1']);
  assert.deepEqual(r.next.ops[0]!.replicas, [{ actorId: 'd-a~1', node: 'n2' }]);
  assert.deepEqual(
    r.dropped.map((d) => d.replica.actorId),
    ['d-a~2', 'd-a~3'],
  );
  assert.equal(r.moves.length, 0);
  assert.equal(r.behind, false);
});

test('a record whose operators a dead leader moved is behind though nothing moves', () => {
  const old = record([op('a', 'n1', 'cpu')]);
  const plan = { ...old, ops: [op('a', 'n2', 'cpu')] };
  const r = recordAfterReplan(old, plan, [node('n2', 'cpu')], ['n2']);
  assert.equal(r.moves.length, 0);
  assert.equal(r.behind, true);
});

test('a move to another class scales the estimate as measured on the old class, and the totals follow', () => {
  // Measured 15 ms where the plan said 10 on cpu: 1.5 × the plan's 2 ms on gpu.
  const a = op('a', 'n1', 'cpu', { estimatedMs: 15 });
  const old = record([a, op('b', 'n1', 'cpu', { deps: ['a'] })]);
  const next = recordAfterClassMove(old, a, node('g1', 'gpu'));
  const moved = next.ops[0]!;
  assert.equal(moved.node, 'g1');
  assert.equal(moved.classId, 'gpu');
  assert.equal(moved.estimatedMs, 3);
  assert.equal(moved.usdPerRequest, (3 / 3.6e6) * 4);
  assert.equal(next.version, 4);
  assert.equal(next.latencyMs, 20 + (3 + 10) - (15 + 10));
  assert.deepEqual(next.ops[1], old.ops[1]);
});

test('a migration event rounds each phase to 0.1 ms and its log line names each operator', () => {
  const was = op('a', 'n1', 'cpu');
  const phases = {
    how: 'live' as const,
    precopyMs: 1.26,
    pausedMs: 0.44,
    stopMs: 0,
    spawnMs: 0,
    configureMs: 2.05,
  };
  const ev = migrationEvent(
    'd',
    'node n1 left',
    [{ op: op('a', 'g1', 'gpu'), was, from: 'n1', phases }],
    12.3,
  );
  assert.deepEqual(ev.moved, [
    {
      opId: 'a',
      from: 'n1',
      to: 'g1',
      fromClass: 'cpu',
      toClass: 'gpu',
      phases: { how: 'live', precopyMs: 1.3, pausedMs: 0.4, stopMs: 0, spawnMs: 0, configureMs: 2.1 },
    },
  ]);
  assert.equal(
    describeMigration(ev),
    'migrated 1 operator(s) of d (node n1 left) in 12 ms: a cpu→gpu (live: copy 1.3 ms while serving, paused 0.4 + configure 2.1 ms)',
  );
});

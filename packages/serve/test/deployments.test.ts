// The deployments the API routes to, read from the coordinator's KV bucket, which anyone on the bus
// may write: a record whose shape the runner would trip over is not a deployment.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Deployment, PlacedOp } from '@stitch/agents';
import type { Cluster } from '@stitch/runtime';
import { Deployments, deploymentsBucket, isDeployment } from '../src/deployments.js';

const op = (id: string, deps: string[] = []): PlacedOp => ({
  id,
  op: 'tool.invoke',
  kind: 'tool',
  deps,
  attrs: {},
  actorType: 'stitch-tool',
  actorId: `${id}-1`,
  classId: 'cpu',
  modelled: false,
  node: 'node-a',
  estimatedMs: 1,
  usdPerRequest: 0,
});

const record = (name: string, ops: PlacedOp[] = [op('a'), op('b', ['a'])]): Deployment => ({
  name,
  mlir: '',
  slaMs: 100,
  version: 1,
  natsUrl: 'nats://127.0.0.1:4222',
  cluster: 'c',
  ops,
  solver: 'heuristic',
  solveMs: { milp: null, heuristic: 1 },
  latencyMs: 2,
  usdPerRequest: 0,
  usdPerHour: { cpu: 1 },
  rawMs: {},
  notes: [],
});

/** `record` with op `b`'s replicas set to `replicas`, whatever its type. */
const withReplicas = (name: string, replicas: unknown) => {
  const d = record(name);
  return { ...d, ops: [d.ops[0], { ...d.ops[1], replicas }] };
};

const MALFORMED_REPLICAS: unknown[] = [
  5,
  'node-b',
  null,
  { actorId: 'b-2', node: 'node-b' },
  [null],
  [{ actorId: 'b-2' }],
  [{ actorId: 'b-2', node: 7 }],
];

test('a record whose replicas are not a list of { actorId, node } is not a deployment', () => {
  assert.ok(isDeployment(record('d')));
  assert.ok(isDeployment(withReplicas('d', [{ actorId: 'b-2', node: 'node-b' }])));
  for (const replicas of MALFORMED_REPLICAS)
    assert.equal(isDeployment(withReplicas('d', replicas)), false, JSON.stringify(replicas));
});

/** A cluster whose deployments bucket holds `records` (by key), written at `created`. */
function clusterWith(records: Record<string, unknown>, created: Date): Cluster {
  const bucket = deploymentsBucket('c');
  return {
    name: 'c',
    kv: async (name: string) => {
      assert.equal(name, bucket);
      return {
        get: async (key: string) => ({ operation: 'PUT', created, json: () => records[key] }),
      };
    },
    kvKeys: async (name: string) => {
      assert.equal(name, bucket);
      return Object.keys(records);
    },
  } as unknown as Cluster;
}

test('the deployments listed skip a record with malformed replicas, as other malformed records', async () => {
  const created = new Date(1_700_000_000_000);
  const deployments = new Deployments(
    clusterWith(
      {
        good: record('good'),
        scaled: withReplicas('scaled', [{ actorId: 'b-2', node: 'node-b' }]),
        'bad-replicas': withReplicas('bad-replicas', 5),
        'no-ops': { ...record('no-ops'), ops: undefined },
      },
      created,
    ),
  );
  const listed = await deployments.list();
  assert.deepEqual(listed.map((l) => l.deployment.name).sort(), ['good', 'scaled']);
  assert.ok(listed.every((l) => l.updatedAt === created.getTime()));
  assert.equal(await deployments.get('bad-replicas'), undefined);
});

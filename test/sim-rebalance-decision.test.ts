// The fleet simulator's rebalance policy and the live coordinator's control loop decide the same on
// the same state. The coordinator's side is its own code: a round's per-actor counters over the
// window become observations (observeDeployment) and free slots per class (freeSlotsByNode, summed
// per class as its round does), then the planner's `rebalance`. The simulator's side is a control
// snapshot holding the same per-op figures, through `rebalancePolicy`. Pure: no NATS.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Deployment, NodeClass, PlacedOp } from '@stitch/agents';
import { type PlacementProblem, type RebalanceConfig, type RebalanceState, rebalance } from '@stitch/planner';
import { classRoom, freeSlotsByNode, observeDeployment } from '../packages/agents/dist/autoscaler.js';
import {
  type OpPeriod,
  rebalanceInputs,
  rebalancePolicy,
  type Snapshot,
} from '../packages/sim/dist/index.js';

const NOW_MS = 90_000;
const WINDOW_MS = 3000;
const CONFIG: RebalanceConfig = { cooldownMs: 20_000 };
const STATE: RebalanceState = { changedAt: { rerank: 30_000 }, scaledOutAt: { rerank: 30_000 } };

const NODES: NodeClass[] = [
  { nodeId: 'c1', classId: 'cpu', modelled: false, load: 0, slots: 4 },
  { nodeId: 'g1', classId: 'gaudi3', modelled: true, load: 0, slots: 2 },
  { nodeId: 'g2', classId: 'gaudi3', modelled: true, load: 0, slots: 2 },
];

/** An op as planDeployment places it; `nodes` beyond the first are its replicas. */
function op(id: string, kind: string, classId: string, estimatedMs: number, nodes: string[]): PlacedOp {
  return {
    id,
    op: `${kind}.${id}`,
    kind,
    deps: [],
    attrs: {},
    actorType: `op-${kind}`,
    actorId: `d-${id}`,
    classId,
    modelled: classId !== 'cpu',
    node: nodes[0]!,
    estimatedMs,
    usdPerRequest: 0,
    replicas: nodes.slice(1).map((node, k) => ({ actorId: `d-${id}-r${k + 1}`, node })),
  };
}

const OPS = [
  op('decode', 'llm', 'gaudi3', 280, ['g1']), // hot: 6 req/s × 300 ms on one replica
  op('rerank', 'llm', 'gaudi3', 40, ['g1', 'g2']), // idle over two replicas
  op('search', 'vector', 'cpu', 20, ['c1']), // hot, but a vector op: pinned
  op('prompt', 'text', 'cpu', 5, ['c1']), // nothing processed in the window: the estimate stands in
];

/** Each activation's counters over the window: arrived, processed, busy ms (own work), queued now. */
const COUNTERS: Record<string, [number, number, number, number]> = {
  'op-llm/d-decode': [18, 9, 2700, 7],
  'op-llm/d-rerank': [3, 3, 120, 0],
  'op-llm/d-rerank-r1': [3, 3, 120, 0],
  'op-vector/d-search': [120, 110, 2200, 6],
  'op-text/d-prompt': [0, 0, 0, 0],
};

const deltas = new Map(
  OPS.flatMap((o) =>
    [{ actorId: o.actorId, node: o.node }, ...(o.replicas ?? [])].map((r) => {
      const [arrived, processed, busyMs, depth] = COUNTERS[`${o.actorType}/${r.actorId}`]!;
      return [
        `${o.actorType}/${r.actorId}`,
        { node: r.node, arrived, processed, busyMs, slotWaitMs: 0, depth, shed: 0 },
      ] as const;
    }),
  ),
);

const deployment: Deployment = {
  name: 'd',
  mlir: '',
  slaMs: 2000,
  version: 1,
  natsUrl: '',
  cluster: 'c',
  ops: OPS,
  solver: 'heuristic',
  solveMs: { milp: null, heuristic: 0 },
  // As the simulator's problem below has them: each op takes its estimate on either class, at $1/h;
  // the ops do not depend on each other, so the latency is the longest estimate.
  latencyMs: Math.max(...OPS.map((o) => o.estimatedMs)),
  usdPerRequest: 0,
  usdPerHour: { cpu: 1, gaudi3: 1 },
  rawMs: Object.fromEntries(OPS.map((o) => [o.id, { cpu: o.estimatedMs, gaudi3: o.estimatedMs }])),
  notes: [],
};

/** The coordinator's round: its observations, and free slots per class as it sums them. */
function coordinator() {
  const observations = observeDeployment(deployment, deltas, WINDOW_MS, new Set(NODES.map((n) => n.classId)));
  const freeSlots = classRoom(NODES, freeSlotsByNode(NODES, deltas, WINDOW_MS)).slots;
  return { observations, freeSlots };
}

/**
 * The same state in the simulator: a control period as long as the window, each op's figures summed
 * over its replicas, and each class as many devices as its replicas hold plus what the coordinator
 * counts free (the simulator's free capacity is devices no replica holds).
 */
function snapshot(freeSlots: Record<string, number>, state?: RebalanceState): Snapshot {
  const classes = ['cpu', 'gaudi3'];
  const sums = OPS.map((o) =>
    [o.actorId, ...(o.replicas ?? []).map((r) => r.actorId)]
      .map((a) => COUNTERS[`${o.actorType}/${a}`]!)
      .reduce((x, y) => x.map((v, k) => v + y[k]!) as typeof x),
  );
  const ops = OPS.map((o, i): OpPeriod => {
    const [arrived, processed, busyMs, depth] = sums[i]!;
    return {
      replicas: 1 + (o.replicas?.length ?? 0),
      arrivals: arrived,
      started: processed,
      meanServiceMs: processed > 0 ? busyMs / processed : null,
      queued: depth,
    };
  });
  const held = (c: string) => OPS.reduce((a, o, i) => a + (o.classId === c ? ops[i]!.replicas : 0), 0);
  const problem: PlacementProblem = {
    tasks: OPS.map((o) => ({ id: o.id, op: o.op, deps: [] })),
    classes: classes.map((id) => ({ id, usdPerHour: 1, linkGBps: 10, count: held(id) + freeSlots[id]! })),
    timeMs: OPS.map((o) => classes.map(() => o.estimatedMs)),
    devices: OPS.map(() => classes.map(() => 1)),
    edges: [],
  };
  return {
    timeS: NOW_MS / 1e3,
    periodS: WINDOW_MS / 1e3,
    problem,
    slaMs: 2000,
    placement: OPS.map((o) => o.classId),
    arrivalRate: 6,
    utilisation: [0.5, 0.9],
    attainment: 0.9,
    queued: 13,
    ops,
    state,
  };
}

/**
 * The live round as the simulator can see it: without waits for a device slot (its replicas hold
 * devices whole), nor replicas that do not serve (its nodes never shed load: every replica serves).
 */
function simulatorView(live: ReturnType<typeof coordinator>) {
  return {
    ...live,
    observations: live.observations.map(({ slotWaitMs: _w, servingReplicas, ...o }) => {
      assert.equal(servingReplicas, o.replicas);
      return o;
    }),
  };
}

test('the simulator and the live coordinator make the same rebalance decision on the same state', () => {
  const live = coordinator();
  const sim = rebalanceInputs(snapshot(live.freeSlots));
  assert.deepEqual(sim, { ...simulatorView(live), nowMs: NOW_MS });
  const decided = rebalance(live.observations, live.freeSlots, CONFIG, NOW_MS, STATE);
  // Not a trivial round: decode scales out, rerank in, the pinned vector op stays.
  assert.deepEqual(
    decided.actions.map((a) => [a.kind, a.opId, a.from, a.to]),
    [
      ['scale-out', 'decode', 1, 3],
      ['scale-in', 'rerank', 2, 1],
    ],
  );
  assert.deepEqual(rebalancePolicy(CONFIG)(snapshot(live.freeSlots, STATE)), {
    replicas: { decode: 3, rerank: 1 },
    state: decided.state,
  });
});

// The simulator decides as the live coordinator does: the coordinator hands the planner's `rebalance`
// one observation per operator and the free slots per class; the simulator's policy builds the same
// from its own measurements of a control period. Given a simulated state equivalent to a set of
// observations, both paths reach `rebalance` with the same inputs and return the same actions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type OperatorObservation,
  type PlacementProblem,
  type RebalanceConfig,
  type RebalanceState,
  rebalance,
} from '@stitch/planner';
import { type OpPeriod, rebalanceInputs, rebalancePolicy, type Snapshot } from '../src/index.js';

const NOW_MS = 120_000;
const PERIOD_S = 3;
const CONFIG: RebalanceConfig = { cooldownMs: 20_000, maxChangesPerRound: 3 };
/** tts changed 1 s ago (inside the short cooldown); decode scaled out long ago. */
const STATE: RebalanceState = {
  changedAt: { tts: NOW_MS - 1_000, decode: NOW_MS - 60_000 },
  scaledOutAt: { decode: NOW_MS - 60_000 },
};

/** What the coordinator would observe (before the classes each op could move to): one op of each kind of decision. */
const MEASURED: OperatorObservation[] = [
  // 20 % busy on its one replica: left alone.
  {
    opId: 'embed',
    classId: 'cpu',
    replicas: 1,
    arrivalPerS: 20,
    serviceMs: 10,
    queueDepth: 0,
    pinned: false,
  },
  // 240 % busy with a queue: wants 4 replicas, the gpu class has room for 2 more.
  {
    opId: 'decode',
    classId: 'gpu',
    replicas: 1,
    arrivalPerS: 60,
    serviceMs: 40,
    queueDepth: 12,
    pinned: false,
  },
  // 2.5 % busy over 4 replicas: scaled in to 1.
  {
    opId: 'rerank',
    classId: 'gpu',
    replicas: 4,
    arrivalPerS: 5,
    serviceMs: 20,
    queueDepth: 0,
    pinned: false,
  },
  // Hot, but it changed a second ago.
  { opId: 'tts', classId: 'gpu', replicas: 1, arrivalPerS: 30, serviceMs: 50, queueDepth: 3, pinned: false },
  // Hot, but a vector op (per-key state in one activation): pinned.
  {
    opId: 'search',
    classId: 'cpu',
    replicas: 1,
    arrivalPerS: 60,
    serviceMs: 30,
    queueDepth: 9,
    pinned: true,
  },
  // Nothing started in the period: observed at the estimate (the cost model's time), 0 % busy.
  { opId: 'notify', classId: 'cpu', replicas: 2, arrivalPerS: 0, serviceMs: 7, queueDepth: 0, pinned: false },
];
const FREE = { cpu: 4, gpu: 2 };
const PRICE: Record<string, number> = { cpu: 1, gpu: 4 };
/**
 * …and with them: every op takes 7 ms on either class in the cost model, so the other class's time
 * is the measured one; the budget is the op's 7 ms plus the SLA's slack over the chain of six (1 000 − 42).
 */
const OBSERVED: OperatorObservation[] = MEASURED.map((o) => {
  const other = o.classId === 'cpu' ? 'gpu' : 'cpu';
  return {
    ...o,
    usdPerHour: PRICE[o.classId]!,
    // The edges carry no bytes here: a move changes no transfer.
    alternatives: [{ classId: other, serviceMs: o.serviceMs, usdPerHour: PRICE[other]!, transferMs: 0 }],
    budgetMs: 7 + 958,
  };
});

/** The fleet and graph behind OBSERVED: cpu has 4 devices in use and 4 free, gpu 6 and 2. */
function problem(): PlacementProblem {
  const ops = ['embed', 'decode', 'rerank', 'tts', 'search', 'notify'];
  return {
    tasks: ops.map((id, i) => ({
      id,
      op: id === 'search' ? 'vector.search' : `llm.${id}`,
      deps: i === 0 ? [] : [ops[i - 1]!],
    })),
    classes: [
      { id: 'cpu', usdPerHour: PRICE.cpu!, linkGBps: 10, count: 8 },
      { id: 'gpu', usdPerHour: PRICE.gpu!, linkGBps: 50, count: 8 },
    ],
    // cpu, gpu: the estimate for notify on cpu is 7 ms.
    timeMs: ops.map(() => [7, 7]),
    devices: ops.map(() => [1, 1]),
    edges: ops.slice(1).map((id, i) => ({ from: ops[i]!, to: id, bytes: 0 })),
  };
}

/** The simulator's measurements of a period that the coordinator would observe as OBSERVED. */
function snapshot(state?: RebalanceState): Snapshot {
  const ops = MEASURED.map(
    (o): OpPeriod => ({
      replicas: o.replicas,
      arrivals: o.arrivalPerS * PERIOD_S,
      started: o.arrivalPerS > 0 ? o.arrivalPerS * PERIOD_S - 1 : 0,
      meanServiceMs: o.arrivalPerS > 0 ? o.serviceMs : null,
      queued: o.queueDepth,
    }),
  );
  return {
    timeS: NOW_MS / 1e3,
    periodS: PERIOD_S,
    problem: problem(),
    slaMs: 1000,
    placement: MEASURED.map((o) => o.classId),
    arrivalRate: 20,
    utilisation: [0.5, 0.9],
    attainment: 0.8,
    queued: 24,
    ops,
    state,
  };
}

test('the sim policy builds the observations and free slots the coordinator hands rebalance', () => {
  assert.deepEqual(rebalanceInputs(snapshot()), { observations: OBSERVED, freeSlots: FREE, nowMs: NOW_MS });
});

test("a move's alternative carries the change in its edges' time, as the coordinator prices it", () => {
  // 100 MB from embed (cpu) to decode (gpu): 10 ms over the slower, cpu's 10 GB/s link.
  const s = snapshot();
  s.problem.edges[0] = { from: 'embed', to: 'decode', bytes: 1e8 };
  const byOp = new Map(rebalanceInputs(s).observations.map((o) => [o.opId, o.alternatives![0]!.transferMs]));
  // Either end moving next to the other saves the crossing; rerank's edges carry nothing.
  assert.ok(Math.abs(byOp.get('decode')! + 10) < 1e-9);
  assert.ok(Math.abs(byOp.get('embed')! + 10) < 1e-9);
  assert.equal(byOp.get('rerank'), 0);
  // A profile's fixed transfer time stands for the bytes.
  s.problem.edges[0] = { from: 'embed', to: 'decode', bytes: 1e8, transferMs: 3 };
  assert.equal(
    rebalanceInputs(s).observations.find((o) => o.opId === 'decode')!.alternatives![0]!.transferMs,
    -3,
  );
});

test('the simulator and the live coordinator make the same decision on the same inputs', () => {
  const live = rebalance(OBSERVED, FREE, CONFIG, NOW_MS, STATE);
  // The case exercises a capped scale-out and a scale-in, and skips the pinned and cooling ops.
  assert.deepEqual(
    live.actions.map((a) => [a.kind, a.opId, a.from, a.to]),
    [
      ['scale-out', 'decode', 1, 3],
      ['scale-in', 'notify', 2, 1],
      ['scale-in', 'rerank', 4, 1],
    ],
  );
  assert.match(live.actions[0]!.reason, /class gpu has room for 2/);
  const { observations, freeSlots, nowMs } = rebalanceInputs(snapshot(STATE));
  assert.deepEqual(rebalance(observations, freeSlots, CONFIG, nowMs, STATE), live);
  const decision = rebalancePolicy(CONFIG)(snapshot(STATE));
  assert.deepEqual(decision, {
    replicas: Object.fromEntries(live.actions.map((a) => [a.opId, a.to])),
    state: live.state,
  });
});

test('pinned ops are the ones named, when named: a named op is left alone, a vector op no longer', () => {
  const { observations } = rebalanceInputs(snapshot(), { pinned: ['llm.decode', 'rerank'] });
  assert.deepEqual(
    observations.filter((o) => o.pinned).map((o) => o.opId),
    ['decode', 'rerank'],
  );
  const d = rebalancePolicy(CONFIG, { pinned: ['llm.decode', 'rerank'] })(snapshot(STATE));
  assert.deepEqual(d?.replicas, { search: 3, notify: 1 });
});

test("a move the policy decides becomes a migration: the op's new class in the placement", () => {
  // decode alone wants more than its full class can give; cpu has room and the budget allows it.
  const full = snapshot(STATE);
  full.problem = {
    ...full.problem,
    classes: full.problem.classes.map((c) => ({ ...c, count: c.id === 'gpu' ? 6 : 8 })),
  };
  const d = rebalancePolicy({ ...CONFIG, maxChangesPerRound: 1 })(full);
  assert.deepEqual(d?.placement, ['cpu', 'cpu', 'gpu', 'gpu', 'cpu', 'cpu']);
  assert.deepEqual(d?.replicas, { decode: 1 });
});

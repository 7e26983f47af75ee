import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PlacementProblem } from '@stitch/planner';
import {
  type Policy,
  rebalancePolicy,
  SimError,
  SimErrorCode,
  type SimOptions,
  type SimResult,
  simulate,
  staticPolicy,
} from '../src/index.js';

/** prep (5 ms) → decode (40 ms) on 8 devices of one class: decode is the op a load step makes hot. */
const problem = (): PlacementProblem => ({
  tasks: [
    { id: 'prep', deps: [] },
    { id: 'decode', deps: ['prep'] },
  ],
  classes: [{ id: 'gpu', usdPerHour: 2, linkGBps: 50, count: 8 }],
  timeMs: [[5], [40]],
  devices: [[1], [1]],
  edges: [{ from: 'prep', to: 'decode', bytes: 0 }],
});

const COOLDOWN_MS = 40_000;

/**
 * 8 requests/s (decode 32 % busy on its one replica), ×4 from 30 s to 60 s (128 %: one replica
 * cannot keep up), then 8/s again until 120 s. Each op starts at one replica, as the coordinator
 * deploys; the policy runs every 2 s.
 */
const stepRun = (policy: Policy, seed = 1): SimOptions => ({
  problem: problem(),
  slaMs: 200,
  arrivals: { kind: 'generator', rate: 8, bursts: { everyS: 1e6, durationS: 30, factor: 4, offsetS: 30 } },
  durationS: 120,
  seed,
  replicas: 'one',
  policy,
  controlPeriodS: 2,
  windowS: 10,
});

/** Attainment of the requests that arrived in [fromS, toS). */
function attainment(r: SimResult, fromS: number, toS: number): number {
  let met = 0;
  let judged = 0;
  for (const w of r.windows.filter((w) => w.startS >= fromS && w.startS < toS)) {
    const n = w.completed + w.rejected;
    met += (w.slaAttainment ?? 0) * n;
    judged += n;
  }
  return met / judged;
}

/** The policy's replica changes with their simulated time. */
function recorded(inner: Policy): {
  policy: Policy;
  changes: { t: number; op: string; from: number; to: number }[];
} {
  const changes: { t: number; op: string; from: number; to: number }[] = [];
  const policy: Policy = (s) => {
    const d = inner(s);
    for (const [op, to] of Object.entries(d?.replicas ?? {})) {
      const i = s.problem.tasks.findIndex((t) => t.id === op);
      changes.push({ t: s.timeS, op, from: s.ops![i]!.replicas, to });
    }
    return d;
  };
  return { policy, changes };
}

test('a 4× load step: the rebalance policy scales decode out and holds the SLA where one replica cannot', () => {
  const still = simulate(stepRun(staticPolicy));
  const { policy, changes } = recorded(rebalancePolicy({ cooldownMs: COOLDOWN_MS }));
  const scaled = simulate(stepRun(policy));
  const out = changes.filter((c) => c.to > c.from);
  assert.ok(out.length > 0 && out.every((c) => c.op === 'decode'), JSON.stringify(changes));
  assert.ok(out[0]!.t >= 30 && out[0]!.t <= 36, 'the first scale-out follows the step within 3 periods');
  assert.equal(scaled.replicaChanges.scaleOut, out.length);
  assert.deepEqual(still.replicaChanges, { scaleOut: 0, scaleIn: 0 });
  // The windows carry the replicas: decode above one during the step, prep at one throughout.
  const during = scaled.windows.filter((w) => w.startS >= 30 && w.startS < 60);
  assert.ok(
    during.every((w) => w.replicas[1]! > 1 && w.replicas[0] === 1),
    JSON.stringify(during),
  );
  assert.ok(still.windows.every((w) => w.replicas[0] === 1 && w.replicas[1] === 1));
  const before = [attainment(still, 0, 30), attainment(scaled, 0, 30)];
  const step = [attainment(still, 30, 60), attainment(scaled, 30, 60)];
  assert.equal(before[0], before[1], 'before the step both runs are the same run');
  assert.ok(
    step[1]! > 0.9 && step[1]! > step[0]! + 0.5,
    `step attainment static ${step[0]}, rebalance ${step[1]}`,
  );
  assert.ok(scaled.slaAttainment > still.slaAttainment);
});

test('when the load falls, decode is scaled back in to one replica, not before the cooldown', () => {
  const { policy, changes } = recorded(rebalancePolicy({ cooldownMs: COOLDOWN_MS }));
  const r = simulate(stepRun(policy));
  const lastOut = Math.max(...changes.filter((c) => c.to > c.from).map((c) => c.t));
  const ins = changes.filter((c) => c.to < c.from);
  assert.ok(ins.length > 0, JSON.stringify(changes));
  assert.equal(r.replicaChanges.scaleIn, ins.length);
  // The load fell at 60 s; the scale-in waits until the cooldown since the last scale-out has passed.
  assert.ok(
    lastOut + COOLDOWN_MS / 1e3 > 62,
    'the cooldown outlasts the step, so it is what delays the scale-in',
  );
  assert.ok(ins[0]!.t >= lastOut + COOLDOWN_MS / 1e3, JSON.stringify(changes));
  assert.equal(r.placement.find((p) => p.task === 'decode')!.replicas, 1);
  assert.ok(r.windows.filter((w) => w.startS >= 90).every((w) => w.replicas[1] === 1));
});

test('determinism: the same seed gives the same rebalanced run, with one policy serving both runs', () => {
  const policy = rebalancePolicy({ cooldownMs: COOLDOWN_MS });
  const strip = ({ wallMs: _w, eventsPerS: _e, ...rest }: SimResult) => rest;
  const a = simulate(stepRun(policy, 5));
  const b = simulate(stepRun(policy, 5));
  assert.deepEqual(strip(a), strip(b));
  assert.ok(a.replicaChanges.scaleOut > 0);
  assert.notDeepEqual(strip(simulate(stepRun(policy, 6))).latencyMs, strip(a).latencyMs);
});

function simError(f: () => unknown): SimError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof SimError, String(e));
    return e;
  }
  assert.fail('no error');
}

test('a decision for more devices than the class has, an unknown task or a bad config is SIM_INPUT', () => {
  const run = (replicas: Record<string, number>) => () =>
    simulate({ ...stepRun(() => ({ replicas })), durationS: 5 });
  const over = simError(run({ decode: 8 }));
  assert.equal(over.code, SimErrorCode.Input);
  assert.match(over.message, /needs 9 devices of class gpu, which has 8/);
  assert.match(simError(run({ nope: 2 })).message, /unknown task 'nope'/);
  assert.match(simError(run({ decode: 0 })).message, /decode must be an integer ≥ 1/);
  // Seven of decode and one of prep fill the class exactly.
  assert.equal(
    simulate({ ...stepRun(() => ({ replicas: { decode: 7 } })), durationS: 5 }).placement[1]!.replicas,
    7,
  );
  const bad = simError(() => rebalancePolicy({ scaleInBelow: 0.9 }));
  assert.equal(bad.code, SimErrorCode.Input);
  assert.match(bad.message, /scaleInBelow < targetUtilisation/);
  assert.equal(
    simError(() => simulate({ ...stepRun(staticPolicy), replicas: 'all' as 'one' })).code,
    SimErrorCode.Input,
  );
});

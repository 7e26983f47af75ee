import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PlanError } from '../src/errors.js';
import { type OperatorObservation, type RebalanceState, rebalance } from '../src/rebalance.js';

const op = (o: Partial<OperatorObservation> & { arrivalPerS: number }): OperatorObservation => ({
  opId: 'llm',
  classId: 'h100',
  replicas: 2,
  serviceMs: 100,
  queueDepth: 0,
  ...o,
});
const slots = { h100: 8, cpu: 4 };

/** Runs rounds one second apart, applying each action to the replica count; returns every action. */
function run(arrivals: number[], start = 2, config = {}) {
  let replicas = start;
  let state: RebalanceState = { changedAt: {} };
  const all = [];
  for (const [i, arrivalPerS] of arrivals.entries()) {
    const r = rebalance([op({ arrivalPerS, replicas })], slots, config, i * 1000, state);
    state = r.state;
    for (const a of r.actions) {
      all.push({ round: i, ...a });
      replicas = a.to;
    }
  }
  return { actions: all, replicas };
}

test('steady load inside the band changes nothing for a minute', () => {
  // 12 req/s × 100 ms = 1.2 busy replicas over 2: 60 %, between 40 % and 85 %.
  assert.deepEqual(run(Array(60).fill(12)).actions, []);
  // Load wandering inside the band does not flap either.
  assert.deepEqual(run(Array.from({ length: 60 }, (_, i) => (i % 2 ? 9 : 16))).actions, []);
});

test('a spike scales out to the target utilisation; when it passes, scale in after the cooldown', () => {
  const load = [...Array(5).fill(12), ...Array(30).fill(60), ...Array(40).fill(12)];
  const { actions, replicas } = run(load);
  assert.equal(actions[0]!.kind, 'scale-out');
  assert.equal(actions[0]!.round, 5);
  // 60 req/s × 100 ms = 6 busy replicas; at 70 %: 9.
  assert.equal(actions[0]!.to, 9);
  assert.match(actions[0]!.reason, /utilisation 300 %/);
  const inAt = actions.find((a) => a.kind === 'scale-in')!;
  assert.ok(inAt.round >= 35, `scaled in at round ${inAt.round}, while the spike lasted`);
  assert.equal(replicas, 2);
  // Every scale-in is at least one cooldown after the scale-out before it.
  for (let i = 1; i < actions.length; i++)
    if (actions[i]!.kind === 'scale-in' && actions[i - 1]!.kind === 'scale-out')
      assert.ok(actions[i]!.round - actions[i - 1]!.round >= 10);
});

test('a deep queue scales out even when the measured utilisation looks fine', () => {
  const r = rebalance([op({ arrivalPerS: 12, queueDepth: 20 })], slots, {}, 0);
  assert.equal(r.actions[0]?.kind, 'scale-out');
  assert.equal(r.actions[0]?.to, 3);
});

test('pinned operators, the cap per round and the free slots of a class are respected', () => {
  const hot = (opId: string, arrivalPerS: number, extra: Partial<OperatorObservation> = {}) =>
    op({ opId, arrivalPerS, ...extra });
  const r = rebalance(
    [hot('a', 30), hot('b', 90), hot('c', 60), hot('p', 200, { pinned: true })],
    { h100: 5 },
    { maxChangesPerRound: 2 },
    0,
  );
  // The most loaded first: b wants 13 replicas and gets the class's 5 free slots; then it is full.
  assert.deepEqual(
    r.actions.map((a) => [a.opId, a.from, a.to]),
    [['b', 2, 7]],
  );
  assert.match(r.actions[0]!.reason, /room for 5/);
  // With room for all, the cap of 2 changes per round takes the two most loaded; p stays pinned.
  const capped = rebalance(
    [hot('a', 30), hot('b', 90), hot('c', 60), hot('p', 200, { pinned: true })],
    { h100: 100 },
    { maxChangesPerRound: 2 },
    0,
  );
  assert.deepEqual(
    capped.actions.map((a) => a.opId),
    ['b', 'c'],
  );
});

test('the same recorded observations give the same actions every run', () => {
  const load = Array.from({ length: 80 }, (_, i) => 10 + ((i * 37) % 50));
  assert.deepEqual(run(load), run(load));
});

test('bad config and observations are typed errors', () => {
  assert.throws(() => rebalance([], {}, { scaleInBelow: 0.9 }, 0), PlanError);
  assert.throws(() => rebalance([], {}, { maxChangesPerRound: 0 }, 0), PlanError);
  assert.throws(() => rebalance([op({ arrivalPerS: -1 })], slots, {}, 0), PlanError);
  assert.throws(() => rebalance([op({ arrivalPerS: 1, replicas: 0 })], slots, {}, 0), PlanError);
  assert.throws(() => rebalance([op({ arrivalPerS: 1, servingReplicas: -1 })], slots, {}, 0), PlanError);
  assert.throws(
    () => rebalance([op({ arrivalPerS: 1, servingReplicas: Number.NaN })], slots, {}, 0),
    PlanError,
  );
});

test('a replica that refuses most requests (its node sheds load) is matched by one more, once, and kept out of the utilisation', () => {
  // The op's only replica refused nearly everything: nobody serves it, however light its load.
  const alone = rebalance([op({ arrivalPerS: 0.2, replicas: 1, servingReplicas: 0.05 })], slots, {}, 0);
  assert.equal(alone.actions.length, 1);
  assert.deepEqual(
    { kind: alone.actions[0]!.kind, from: alone.actions[0]!.from, to: alone.actions[0]!.to },
    { kind: 'scale-out', from: 1, to: 2 },
  );
  assert.match(alone.actions[0]!.reason, /0 serving replica\(s\) \(1 more refused most requests/);
  // It goes first, before a busier op's scale-out, when one change is allowed.
  const busy = op({ opId: 'busy', arrivalPerS: 60 });
  const first = rebalance(
    [busy, op({ arrivalPerS: 0, replicas: 1, servingReplicas: 0 })],
    slots,
    { maxChangesPerRound: 1 },
    0,
  );
  assert.equal(first.actions[0]?.opId, 'llm');
  // One more is enough: with it serving, a refusing replica kept beside changes nothing, round after
  // round (no scale-out toward the cap, no scale-in of the one that serves).
  let state: RebalanceState = { changedAt: {} };
  for (let i = 0; i < 60; i++) {
    const r = rebalance(
      [op({ arrivalPerS: 5, replicas: 2, servingReplicas: 1 })],
      slots,
      {},
      i * 1000,
      state,
    );
    assert.deepEqual(r.actions, [], `round ${i}`);
    state = r.state;
  }
  // Its load counts over the replicas that serve: 8 req/s × 100 ms on one of two is 80 %, inside the
  // band; without the refusing one counted out it would read 40 % and scale in.
  assert.deepEqual(
    rebalance([op({ arrivalPerS: 8, servingReplicas: 1.2 })], slots, {}, 60_000, state).actions,
    [],
  );
  // 12 req/s on the one that serves is 120 %: two serve at 70 %, and one more stands in for the refusing one.
  const out = rebalance([op({ arrivalPerS: 12, servingReplicas: 1 })], slots, {}, 0);
  assert.deepEqual(
    out.actions.map((a) => [a.kind, a.from, a.to]),
    [['scale-out', 2, 3]],
  );
  assert.match(out.actions[0]!.reason, /utilisation 120 % over 1 serving replica/);
  // Idle, it scales in to what serves the load plus the refusing one, not below.
  const idle = rebalance([op({ arrivalPerS: 1, replicas: 4, servingReplicas: 3 })], slots, {}, 60_000);
  assert.deepEqual(
    idle.actions.map((a) => [a.kind, a.from, a.to]),
    [['scale-in', 4, 2]],
  );
  assert.match(idle.actions[0]!.reason, /beside the 1 refusing/);
  // A replica that refused a few requests (under half) still serves: nothing changes.
  assert.deepEqual(rebalance([op({ arrivalPerS: 12, servingReplicas: 1.6 })], slots, {}, 0).actions, []);
});

test('a spike right after a scale-in scales out again without waiting out the long cooldown', () => {
  // Scale in at round 0 (quiet), then a spike from round 1: the scale-out waits only the short cooldown.
  const load = [2, ...Array(10).fill(60)];
  const { actions } = run(load, 4);
  assert.equal(actions[0]!.kind, 'scale-in');
  const out = actions.find((a) => a.kind === 'scale-out')!;
  assert.equal(out.round, 2);
});

test('recorded noisy observations give the same actions on every run', () => {
  // A minute of steady load with ±30 % noise, then a spike and its end: decided twice, compared.
  let x = 7;
  const noise = () => {
    x = (x * 48271) % 2147483647;
    return 0.7 + (0.6 * x) / 2147483647;
  };
  const load = [
    ...Array.from({ length: 60 }, () => 12 * noise()),
    ...Array(20).fill(60),
    ...Array(30).fill(12),
  ];
  const first = run(load);
  assert.deepEqual(run(load), first);
  assert.equal(first.actions.filter((a) => a.round < 60).length, 0, 'the steady minute changed something');
  assert.ok(
    first.actions.some((a) => a.kind === 'scale-out') && first.actions.some((a) => a.kind === 'scale-in'),
  );
});

test('a scale-out sizes for the queue as well as the arrivals', () => {
  // 12 req/s × 100 ms = 1.2 busy replicas (2 at 70 %); 40 queued × 100 ms drained in 5 s adds 0.8.
  const r = rebalance([op({ arrivalPerS: 12, replicas: 1, queueDepth: 40 })], slots, {}, 0);
  assert.equal(r.actions[0]?.to, 3);
  assert.match(r.actions[0]!.reason, /drain the queue within 5 s/);
  assert.throws(() => rebalance([], {}, { drainMs: 0 }, 0), PlanError);
});

test('a queue in front of an op that is mostly idle does not scale it out (it waits on something else)', () => {
  // 1 req/s × 100 ms over 2 replicas: 5 % busy, yet 20 queued (its device is full): no change.
  assert.deepEqual(rebalance([op({ arrivalPerS: 1, queueDepth: 20 })], slots, {}, 0).actions, []);
});

test('falling load is followed down in steps, the short cooldown apart, once the long one has passed', () => {
  const load = [...Array(12).fill(60), ...Array(3).fill(25), ...Array(10).fill(12)];
  const { actions, replicas } = run(load);
  assert.deepEqual(
    actions.map((a) => [a.kind, a.round, a.to]),
    [
      ['scale-out', 0, 9],
      ['scale-in', 12, 4],
      ['scale-in', 15, 2],
    ],
  );
  assert.equal(replicas, 2);
});

// Moves between classes: an op on gaudi3 (a request there costs 80 ms × $2/h) that could run on h100
// (40 ms × $6/h: dearer per request) or cpu (400 ms: over a 200 ms budget).
const movableOp = (o: Partial<OperatorObservation> & { arrivalPerS: number }) =>
  op({
    classId: 'gaudi3',
    replicas: 1,
    serviceMs: 80,
    usdPerHour: 2,
    budgetMs: 200,
    alternatives: [
      { classId: 'h100', serviceMs: 40, usdPerHour: 6 },
      { classId: 'cpu', serviceMs: 400, usdPerHour: 0.1 },
    ],
    ...o,
  });

test('a single replica whose class is full moves to a class with room, within its budget', () => {
  const r = rebalance([movableOp({ arrivalPerS: 15 })], { gaudi3: 0, h100: 2, cpu: 8 }, {}, 0);
  assert.equal(r.actions.length, 1);
  const [a] = r.actions;
  assert.equal(a?.kind, 'move');
  assert.equal(a?.classId, 'gaudi3');
  assert.equal(a?.toClassId, 'h100');
  assert.match(a!.reason, /class gaudi3 is full, h100 has room/);
  // cpu has room but is over the budget; with h100 full too nothing moves.
  assert.deepEqual(
    rebalance([movableOp({ arrivalPerS: 15 })], { gaudi3: 0, h100: 0, cpu: 8 }, {}, 0).actions,
    [],
  );
  // Replicated ops are not moved (every replica would have to go).
  assert.deepEqual(
    rebalance([movableOp({ arrivalPerS: 30, replicas: 2 })], { gaudi3: 0, h100: 2 }, {}, 0).actions,
    [],
  );
});

test('an idle op moves back to the cheaper class after the long cooldown, and stays there', () => {
  // Moved to h100 during a spike (at 0 ms); the spike is over: 1 request/s.
  let state: RebalanceState = { changedAt: { llm: 0 }, scaledOutAt: { llm: 0 } };
  let classId = 'h100';
  const moves: { at: number; to: string | undefined }[] = [];
  for (let t = 1000; t <= 60_000; t += 1000) {
    const here = classId === 'h100' ? { serviceMs: 40, usdPerHour: 6 } : { serviceMs: 80, usdPerHour: 2 };
    const o = movableOp({
      arrivalPerS: 1,
      classId,
      ...here,
      alternatives: [
        { classId: 'gaudi3', serviceMs: 80, usdPerHour: 2 },
        { classId: 'h100', serviceMs: 40, usdPerHour: 6 },
        { classId: 'cpu', serviceMs: 400, usdPerHour: 0.1 },
      ],
    });
    const r = rebalance([o], { gaudi3: 1, h100: 2, cpu: 8 }, { cooldownMs: 10_000 }, t, state);
    state = r.state;
    for (const a of r.actions) {
      assert.equal(a.kind, 'move');
      assert.match(a.reason, /a request costs 67 % of this on gaudi3/);
      moves.push({ at: t, to: a.toClassId });
      classId = a.toClassId!;
    }
  }
  assert.deepEqual(moves, [{ at: 10_000, to: 'gaudi3' }]);
});

test('an idle op stays where it is when no class is cheaper by the margin or has room', () => {
  const idle = movableOp({ arrivalPerS: 1 });
  // gaudi3 is already the cheapest class within the budget.
  assert.deepEqual(rebalance([idle], { h100: 4, cpu: 8 }, {}, 60_000).actions, []);
  // On h100, gaudi3 is cheaper but has no room.
  const onH100 = movableOp({
    arrivalPerS: 1,
    classId: 'h100',
    serviceMs: 40,
    usdPerHour: 6,
    alternatives: [{ classId: 'gaudi3', serviceMs: 80, usdPerHour: 2 }],
  });
  assert.deepEqual(rebalance([onH100], { gaudi3: 0 }, {}, 60_000).actions, []);
  // 80 ms × $2.85 is 95 % of 40 ms × $6: not under the 0.8 margin, not worth a move.
  const nearly = { ...onH100, alternatives: [{ classId: 'gaudi3', serviceMs: 80, usdPerHour: 2.85 }] };
  assert.deepEqual(rebalance([nearly], { gaudi3: 1 }, {}, 60_000).actions, []);
  assert.throws(() => rebalance([], {}, { shedBelow: 1.2 }, 0), PlanError);
});

test("a move counts the change in its edges' transfers against the budget", () => {
  // On h100 (40 ms, budget 200): gaudi3 (80 ms) is cheaper; its neighbours on h100 would then take
  // the op's edges over the network.
  const onH100 = (transferMs: number) =>
    movableOp({
      arrivalPerS: 1,
      classId: 'h100',
      serviceMs: 40,
      usdPerHour: 6,
      alternatives: [{ classId: 'gaudi3', serviceMs: 80, usdPerHour: 2, transferMs }],
    });
  const [near] = rebalance([onH100(30)], { gaudi3: 1 }, {}, 60_000).actions;
  assert.equal(near?.toClassId, 'gaudi3');
  assert.match(near!.reason, /80\.0 ms there, its edges \+30\.0 ms/);
  // 80 ms + 130 ms of transfers is over the 200 ms budget: it stays.
  assert.deepEqual(rebalance([onH100(130)], { gaudi3: 1 }, {}, 60_000).actions, []);
  // A full class: cpu (400 ms) is over the budget by itself, but not once the move brings the op
  // next to its neighbours there (-250 ms of transfers).
  const full = movableOp({
    arrivalPerS: 15,
    alternatives: [{ classId: 'cpu', serviceMs: 400, usdPerHour: 0.1, transferMs: -250 }],
  });
  const [out] = rebalance([full], { gaudi3: 0, cpu: 8 }, {}, 0).actions;
  assert.equal(out?.toClassId, 'cpu');
  assert.match(out!.reason, /its edges -250\.0 ms/);
  assert.throws(
    () =>
      rebalance(
        [
          {
            ...full,
            alternatives: [{ classId: 'cpu', serviceMs: 1, usdPerHour: 1, transferMs: Number.NaN }],
          },
        ],
        {},
        {},
        0,
      ),
    PlanError,
  );
});

test('a queue that waits on a full device moves the op to a class with room; an idle op beside it does not move', () => {
  // Little work of its own (15 ms × 10/s: 15 %), but 6 queued and 90 ms per request waiting for a slot.
  const starved = movableOp({ arrivalPerS: 10, serviceMs: 15, queueDepth: 6, slotWaitMs: 90 });
  const [a] = rebalance([starved], { gaudi3: 0, h100: 2 }, {}, 0).actions;
  assert.equal(a?.kind, 'move');
  assert.equal(a?.toClassId, 'h100');
  assert.match(a!.reason, /90 ms waiting for a device slot per request/);
  // Waiting less than its own work, or with a short queue: the device is not what holds it up.
  assert.deepEqual(rebalance([{ ...starved, slotWaitMs: 10 }], { gaudi3: 0, h100: 2 }, {}, 0).actions, []);
  assert.deepEqual(rebalance([{ ...starved, queueDepth: 2 }], { gaudi3: 0, h100: 2 }, {}, 0).actions, []);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type PlacementProblem, problemFromProfile } from '@stitch/planner';
import { replanOnUtilisation, simulate } from '../src/index.js';

/**
 * prefill → decode on a fast ($4/h) and a cheap ($1/h) class, 2 ms to cross classes, SLA 60 ms.
 * By hand: fast/fast 50 ms (cost ∝ 4·50 = 200), fast/cheap 10 + 2 + 45 = 57 ms (∝ 4·10 + 45 = 85),
 * cheap/cheap 85 ms and cheap/fast 82 ms miss the SLA. The optimum is prefill fast, decode cheap.
 */
function twoClass(): PlacementProblem {
  return problemFromProfile({
    classes: [
      { id: 'fast', usd_per_hour: 4, count: 2 },
      { id: 'cheap', usd_per_hour: 1, count: 2 },
    ],
    tasks: [
      { id: 'prefill', time_ms: { fast: 10, cheap: 40 } },
      { id: 'decode', deps: ['prefill'], time_ms: { fast: 40, cheap: 45 } },
    ],
    edges: [{ from: 'prefill', to: 'decode', transfer_ms: 2 }],
  });
}

/** One request every second, at k + 0.5 s so no arrival ties with a control event. */
const everySecond = (n: number) => ({
  kind: 'trace' as const,
  entries: Array.from({ length: n }, (_, k) => ({ t: k + 0.5 })),
});

test('two-class fleet: the planned placement is the known optimum and every request takes 57 ms', () => {
  const r = simulate({ problem: twoClass(), slaMs: 60, arrivals: everySecond(100) });
  assert.deepEqual(
    r.placement.map((p) => p.classId),
    ['fast', 'cheap'],
  );
  assert.ok(Math.abs(r.latencyMs.p50 - 57) < 1e-9 && Math.abs(r.latencyMs.max - 57) < 1e-9);
  assert.equal(r.slaAttainment, 1);
  assert.equal(r.migrations, 0);
  // Both devices of each class serve their one task; the fleet costs 2·4 + 2·1 $/h whether busy or not.
  assert.deepEqual(
    r.placement.map((p) => p.replicas),
    [2, 2],
  );
  assert.equal(r.fleetUsdPerHour, 10);
  const span = 99.5 + 0.057;
  assert.ok(Math.abs(r.spanS - span) < 1e-9);
  assert.ok(Math.abs(r.usdPer1k - ((10 * span) / 3600 / 100) * 1000) < 1e-12);
  // Busy time: 100 × 10 ms on 2 fast devices over the span.
  assert.ok(Math.abs(r.classes[0]!.utilisation - (100 * 10) / (2 * span * 1e3)) < 1e-12);
  assert.ok(r.classes.every((c) => c.modelled));
});

test('re-plan policy: from an all-cheap placement it calls the planner and moves prefill to the optimum', () => {
  const wrong = ['cheap', 'cheap'];
  const stays = simulate({ problem: twoClass(), slaMs: 60, arrivals: everySecond(100), placement: wrong });
  assert.equal(stays.slaAttainment, 0);
  assert.ok(Math.abs(stays.latencyMs.max - 85) < 1e-9);
  const moves = simulate({
    problem: twoClass(),
    slaMs: 60,
    arrivals: everySecond(100),
    placement: wrong,
    policy: replanOnUtilisation(),
    controlPeriodS: 10,
    windowS: 10,
  });
  // The first control event (10 s) sees 10 requests that all missed; one op moves; the rest meet the SLA.
  assert.equal(moves.migrations, 1);
  assert.deepEqual(
    moves.placement.map((p) => p.classId),
    ['fast', 'cheap'],
  );
  assert.equal(moves.slaAttainment, 0.9);
  assert.equal(moves.windows[0]!.slaAttainment, 0);
  assert.equal(moves.windows[1]!.migrations, 1);
  assert.ok(moves.windows.slice(1).every((w) => w.slaAttainment === 1));
});

test('a migration pause delays the moved op: requests queued meanwhile wait for it', () => {
  const r = simulate({
    problem: twoClass(),
    slaMs: 60,
    arrivals: { kind: 'trace', entries: Array.from({ length: 40 }, (_, k) => ({ t: k * 0.5 + 0.25 })) },
    placement: ['cheap', 'cheap'],
    policy: replanOnUtilisation(),
    controlPeriodS: 10,
    migrationMs: 1000,
  });
  assert.equal(r.migrations, 1);
  // Requests at 10.25 s and 10.75 s arrive while the moved prefill is paused until 11 s.
  assert.ok(r.latencyMs.max > 700, `max ${r.latencyMs.max}`);
});

test('determinism: the same seed gives the same run; another seed another', () => {
  const run = (seed: number) => {
    const {
      wallMs: _w,
      eventsPerS: _e,
      ...rest
    } = simulate({
      problem: twoClass(),
      slaMs: 60,
      arrivals: { kind: 'generator', rate: 30, bursts: { everyS: 20, durationS: 2, factor: 3 } },
      requests: 5000,
      noise: { kind: 'lognormal', cv: 0.3 },
      shapes: [
        { name: 'short', weight: 3, scale: { decode: 0.5 } },
        { name: 'long', weight: 1, scale: { decode: 2 } },
      ],
      policy: replanOnUtilisation(),
      controlPeriodS: 5,
      windowS: 20,
      seed,
    });
    return rest;
  };
  const a = run(11);
  assert.deepEqual(run(11), a);
  const b = run(12);
  assert.notDeepEqual(b.latencyMs, a.latencyMs);
  assert.equal(a.requests, 5000);
  assert.ok(a.events >= 5000 * 4, `${a.events} events: arrival, 2 finishes and a transfer per request`);
});

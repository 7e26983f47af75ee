import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PlacementProblem } from '@stitch/planner';
import { simulate } from '../src/index.js';

/** One op on one class: a single-server queue. */
function oneOp(timeMs: number, count: number): PlacementProblem {
  return {
    tasks: [{ id: 'op', deps: [] }],
    classes: [{ id: 'dev', usdPerHour: 2, linkGBps: 50, count }],
    timeMs: [[timeMs]],
    devices: [[1]],
    edges: [],
  };
}

test('M/M/1: mean wait in queue is ρ/(μ−λ), within 4 standard errors of the sample mean', () => {
  const mu = 0.1; // per ms: a 10 ms mean service time
  const rho = 0.5;
  const n = 100_000;
  const r = simulate({
    problem: oneOp(1 / mu, 1),
    slaMs: 1e6,
    arrivals: { kind: 'generator', rate: rho * mu * 1e3 },
    requests: n,
    seed: 7,
    noise: { kind: 'exponential' },
  });
  const expected = rho / (mu * (1 - rho));
  // Asymptotic variance of the mean waiting time of n customers of an M/M/1 queue (Daley 1968;
  // Whitt 1989, "Planning queueing simulations"): the waits are correlated, so it is far wider
  // than the i.i.d. σ²/n.
  const variance = (rho * (2 + 5 * rho - 4 * rho ** 2 + rho ** 3)) / (mu ** 2 * (1 - rho) ** 4) / n;
  const tolerance = 4 * Math.sqrt(variance);
  // The check must be able to fail: an M/D/1 queue (half the wait) or a missing queue lie far outside.
  assert.ok(tolerance < 0.1 * expected, `tolerance ${tolerance} is too loose to check anything`);
  assert.equal(r.completed, n);
  assert.ok(
    Math.abs(r.meanQueueWaitMs - expected) < tolerance,
    `mean wait ${r.meanQueueWaitMs} ms, expected ${expected} ± ${tolerance}`,
  );
  // Sojourn = wait + service (mean 1/μ); the service-time noise has mean 1.
  assert.ok(Math.abs(r.latencyMs.mean - (expected + 1 / mu)) < tolerance + 0.05 / mu);
  // Utilisation of the server is ρ (its standard error is far below 0.02 at this n).
  assert.ok(Math.abs(r.classes[0]!.utilisation - rho) < 0.02, `utilisation ${r.classes[0]!.utilisation}`);
});

test('D/D/2 overloaded: request k waits ⌊k/2⌋·2 ms exactly (arrivals every 4 ms, 10 ms service, 2 replicas)', () => {
  const n = 1000;
  const entries = Array.from({ length: n }, (_, k) => ({ t: (4 * k) / 1e3 }));
  const two = simulate({ problem: oneOp(10, 2), slaMs: 1e6, arrivals: { kind: 'trace', entries } });
  // Requests 2m and 2m+1 both wait 2m ms, so the mean over 2M requests is M − 1.
  assert.ok(Math.abs(two.meanQueueWaitMs - (n / 2 - 1)) < 1e-6, `mean wait ${two.meanQueueWaitMs}`);
  assert.ok(Math.abs(two.latencyMs.max - (10 + 2 * (n / 2 - 1))) < 1e-6);
  const three = simulate({ problem: oneOp(10, 3), slaMs: 1e6, arrivals: { kind: 'trace', entries } });
  assert.equal(three.meanQueueWaitMs, 0);
  assert.ok(Math.abs(three.latencyMs.max - 10) < 1e-9);
});

test('a diurnal day with bursts brings ∫λ(t)dt requests, within 4 Poisson standard deviations', () => {
  const periodS = 1000;
  const rate = 20;
  const peakRatio = 3;
  const bursts = { everyS: 200, durationS: 20, factor: 4 };
  const r = simulate({
    problem: oneOp(0.01, 100),
    slaMs: 1e6,
    arrivals: { kind: 'generator', rate, diurnal: { peakRatio, periodS }, bursts },
    durationS: periodS,
    requests: 10_000_000,
    windowS: 100,
    seed: 3,
  });
  // Integrate the rate numerically (the curve is smooth, 1 ms steps are exact to well below 1 request).
  let expected = 0;
  const dt = 1e-3;
  for (let t = dt / 2; t < periodS; t += dt) {
    const day =
      rate * (1 + ((peakRatio - 1) * (1 + Math.cos((2 * Math.PI * (t - periodS / 2)) / periodS))) / 2);
    expected += day * (t % bursts.everyS < bursts.durationS ? bursts.factor : 1) * dt;
  }
  assert.ok(Math.abs(r.requests - expected) < 4 * Math.sqrt(expected), `${r.requests} vs ${expected}`);
  assert.equal(r.windows.length, 10);
  // The day peaks at 500 s: the window after it (no burst) sees about twice the rate of 100–200 s.
  assert.ok(r.windows[5]!.arrivals > 1.5 * r.windows[1]!.arrivals);
});

// The heuristic's search with priced crossings: its live schedule agrees with a full recomputation,
// and an instance whose optimum the earlier starts missed (every op weighed by coefficient alone).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  generateProblem,
  loadMilpSolver,
  type PlanFeasible,
  planExact,
  planHeuristic,
} from '../src/index.js';
import { compile } from '../src/problem.js';
import { forward, LiveSchedule, latestStarts } from '../src/schedule.js';

test('LiveSchedule after moves matches forward and latestStarts recomputed from scratch', () => {
  const { problem, slaMs } = generateProblem({ ops: 120, classes: 8, seed: 7 });
  const c = compile(problem);
  const assign = Int32Array.from(c.coef, (row) => row.findIndex((x) => Number.isFinite(x)));
  const live = new LiveSchedule(c, assign, slaMs);
  let state = 12345;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  for (let step = 0; step < 200; step++) {
    // One or two tasks (a pair move, say) to random classes that can run them.
    const moved = [Math.floor(next() * c.n), Math.floor(next() * c.n)].slice(0, 1 + (step % 2));
    for (const i of moved) {
      const usable = [...c.coef[i]!].flatMap((x, k) => (Number.isFinite(x) ? [k] : []));
      assign[i] = usable[Math.floor(next() * usable.length)]!;
    }
    const latency = live.update(moved);
    const s = forward(c, assign);
    assert.deepEqual([...live.ef], [...s.ef], `ef after step ${step}`);
    assert.deepEqual([...live.es], [...s.es], `es after step ${step}`);
    assert.deepEqual([...live.ls], [...latestStarts(c, assign, slaMs)], `ls after step ${step}`);
    assert.equal(latency, s.latencyMs);
  }
});

test('priced crossings: 100 ops × 10 classes, seed 5, within 5 % of the MILP optimum', async () => {
  // The optimum puts 73 of 100 ops on a class with a fast link; starts weighed by coefficient
  // alone put half of them on a cheaper class with a slow, dear link (13.6 % dearer).
  const { problem, slaMs } = generateProblem({ ops: 100, classes: 10, seed: 5 });
  const exact = planExact(await loadMilpSolver(), problem, { slaMs, timeLimitS: 60, warmStart: false });
  assert.equal(exact.status, 'optimal');
  const h = planHeuristic(problem, { slaMs }) as PlanFeasible;
  assert.equal(h.status, 'feasible');
  assert.ok(h.latencyMs <= slaMs + 1e-9);
  const gap =
    (h.usdPerRequest - (exact as PlanFeasible).usdPerRequest) / (exact as PlanFeasible).usdPerRequest;
  assert.ok(gap <= 0.05, `gap ${(gap * 100).toFixed(2)} %`);
});

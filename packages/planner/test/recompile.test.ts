// The incremental re-plan's compiled problem and move tables, patched from the previous plan's: the
// same as made from scratch for the changed problem, and not patched from a problem changed in place.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { changeBetween } from '../src/change.js';
import {
  generateProblem,
  PERTURBATIONS,
  type PlanFeasible,
  perturbProblem,
  planHeuristic,
  withBindingCounts,
} from '../src/index.js';
import { type Compiled, compile, type PlacementProblem } from '../src/problem.js';
import { compileChanged, remember } from '../src/recompile.js';
import { tablesAfter, tablesOf } from '../src/tables.js';

function assertSameCompiled(a: Compiled, b: Compiled, where: string): void {
  assert.equal(a.p, b.p, where);
  assert.deepEqual(
    [a.n, a.m, a.rate, a.gamma, a.sharedRate, a.priced],
    [b.n, b.m, b.rate, b.gamma, b.sharedRate, b.priced],
    where,
  );
  assert.deepEqual(a.order, b.order, where);
  assert.deepEqual(a.rank, b.rank, where);
  assert.deepEqual(a.predEdges, b.predEdges, where);
  assert.deepEqual(a.succEdges, b.succEdges, where);
  assert.deepEqual(a.coef, b.coef, where);
  assert.deepEqual(a.units, b.units, where);
  assert.deepEqual(a.cap, b.cap, where);
  assert.deepEqual(a.edges, b.edges, where);
  assert.deepEqual(a.flat, b.flat, where);
  assert.deepEqual([a.tau, a.send, a.recv], [b.tau, b.send, b.recv], `${where}: edge rows`);
}

function planned(seed: number): { problem: PlacementProblem; plan: PlanFeasible; slaMs: number } {
  const g = generateProblem({ ops: 60, classes: 8, seed });
  const first = planHeuristic(g.problem, { slaMs: g.slaMs }) as PlanFeasible;
  const problem = withBindingCounts(g.problem, first);
  const plan = planHeuristic(problem, { slaMs: g.slaMs });
  assert.notEqual(plan.status, 'infeasible');
  return { problem, plan: plan as PlanFeasible, slaMs: g.slaMs };
}

test('a compiled problem patched after each perturbation equals one compiled from scratch', () => {
  for (const [rate, shared] of [
    [0, 0],
    [50, 0],
    [0, 20],
  ] as const) {
    for (const gamma of [0, 1e-6]) {
      const { problem, plan } = planned(4);
      remember(compile(problem, rate, gamma, shared));
      for (const kind of PERTURBATIONS) {
        const q = perturbProblem(problem, plan, kind);
        const change = changeBetween(problem, q)!;
        assert.ok(change.sameGraph);
        const where = `${kind} at rate ${rate}, shared rate ${shared}, γ ${gamma}`;
        assertSameCompiled(
          compileChanged(problem, q, change, rate, gamma, shared).compiled,
          compile(q, rate, gamma, shared),
          where,
        );
      }
    }
  }
});

test('a compiled problem is patched only from a problem unchanged since it was planned', () => {
  const { problem, plan } = planned(5);
  const q = perturbProblem(problem, plan, 'op-time-doubled');
  const previous = compile(problem);
  remember(previous);
  const sharedRows = (c: Compiled) => c.coef.filter((row, i) => row === previous.coef[i]).length;
  // Every row but the doubled op's is the previous plan's.
  assert.equal(
    sharedRows(compileChanged(problem, q, changeBetween(problem, q)!, 0, 0).compiled),
    problem.tasks.length - 1,
  );
  // A row replaced in place since the plan: compiled from scratch, no stale row kept.
  const i = q.timeMs.findIndex(
    (row, h) => row !== problem.timeMs[h] && row.some((t, j) => t !== problem.timeMs[h]![j]),
  );
  problem.timeMs[i] = [...q.timeMs[i]!];
  const fresh = compileChanged(problem, q, changeBetween(problem, q)!, 0, 0).compiled;
  assert.equal(sharedRows(fresh), 0);
  assertSameCompiled(fresh, compile(q), 'after an in-place edit');
});

test('move tables patched after each perturbation equal those made from scratch', () => {
  for (const gamma of [0, 1e-6]) {
    const { problem, plan } = planned(6);
    const before = compile(problem, 0, gamma);
    remember(before);
    tablesOf(before);
    for (const kind of PERTURBATIONS) {
      const q = perturbProblem(problem, plan, kind);
      const change = changeBetween(problem, q)!;
      const { compiled, from } = compileChanged(problem, q, change, 0, gamma);
      assert.equal(from, before);
      const patched = tablesAfter(compiled, from, change);
      const fresh = tablesOf(compile(q, 0, gamma));
      assert.deepEqual(patched.own, fresh.own, `${kind}, γ ${gamma}`);
      assert.deepEqual(patched.prefs, fresh.prefs, `${kind}, γ ${gamma}`);
    }
  }
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PAPER_CATALOG } from '@stitch/cost';
import {
  type DemandRowLike,
  PlanError,
  PlanErrorCode,
  problemFromDemand,
  problemFromProfile,
} from '../src/index.js';

test('PlanErrorCode: unique values; each code carries its class name and exit status', () => {
  const values = Object.values(PlanErrorCode);
  assert.equal(new Set(values).size, values.length);
  for (const v of values) assert.match(v, /^[A-Z][A-Z0-9_]*$/);
  let input: unknown;
  try {
    problemFromProfile({ classes: [], tasks: [] });
  } catch (e) {
    input = e;
  }
  assert.ok(input instanceof PlanError && input instanceof Error);
  // A solver failure cannot be provoked reliably, so that one is constructed.
  // `satisfies` makes tsc fail when a code is added to the union without a case here.
  const byCode = {
    [PlanErrorCode.Input]: { error: input, exitCode: 2 },
    [PlanErrorCode.Solver]: { error: new PlanError(PlanErrorCode.Solver, 'm'), exitCode: 1 },
  } satisfies Record<PlanErrorCode, { error: PlanError; exitCode: number }>;
  assert.deepEqual(Object.keys(byCode).sort(), [...values].sort());
  for (const [code, { error, exitCode }] of Object.entries(byCode)) {
    assert.equal(error.code, code);
    assert.equal(error.name, 'PlanError');
    assert.equal(error.exitCode, exitCode);
  }
  const cause = new Error('underlying');
  assert.equal(new PlanError(PlanErrorCode.Solver, 'm', { cause }).cause, cause);
  // @ts-expect-error: a misspelt code does not type-check.
  const misspelt = () => new PlanError('PLAN_INPT', 'm');
  assert.equal(typeof misspelt, 'function');
});

test('problemFromDemand refuses a negative or non-finite demand figure or edge size, naming the row', () => {
  const demand = { flops: 1e9, bytesRead: 1e6, bytesWritten: 1e3, memoryBytes: 1e6, networkBytes: 0 };
  const rows = (patch: Partial<DemandRowLike>): DemandRowLike[] => [
    { id: 'q', op: 'agent.input', kind: 'agent', demand, deps: [], edgeBytes: {}, attrs: {} },
    {
      id: 'p',
      op: 'llm.prefill',
      kind: 'llm',
      demand,
      deps: ['q'],
      edgeBytes: { q: 4096 },
      attrs: {},
      ...patch,
    },
  ];
  const opts = { catalog: PAPER_CATALOG, classes: ['h100', 'cpu'] };
  const refused = (patch: Partial<DemandRowLike>, message: RegExp) =>
    assert.throws(
      () => problemFromDemand(rows(patch), opts),
      (e: unknown) => e instanceof PlanError && e.code === PlanErrorCode.Input && message.test(e.message),
    );
  refused(
    { edgeBytes: { q: -1_000_000 } },
    /^demand row 'p' \(llm\.prefill\): edgeBytes\.q must be a finite number >= 0, found -1000000;/,
  );
  refused({ edgeBytes: { q: Number.NaN } }, /edgeBytes\.q must be a finite number >= 0, found NaN/);
  refused(
    { demand: { ...demand, flops: -1 } },
    /demand row 'p' \(llm\.prefill\): demand\.flops must be .* found -1;/,
  );
  refused({ demand: { ...demand, memoryBytes: Infinity } }, /demand\.memoryBytes must be .* found Infinity/);
  refused({ demand: { ...demand, networkBytes: Number.NaN } }, /demand\.networkBytes must be .* found NaN/);
  // Zero is a figure like any other.
  const zero = { flops: 0, bytesRead: 0, bytesWritten: 0, memoryBytes: 0, networkBytes: 0 };
  const p = problemFromDemand(rows({ demand: zero, edgeBytes: { q: 0 } }), opts);
  assert.deepEqual(p.edges, [{ from: 'q', to: 'p', bytes: 0 }]);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PlanError, PlanErrorCode, problemFromProfile } from '../src/index.js';

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

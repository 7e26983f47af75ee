import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CorrectionTable,
  CostError,
  CostErrorCode,
  findDevice,
  findModel,
  PAPER_CATALOG,
  parseCatalog,
  resolveSweepRanges,
} from '../src/index.js';

test('CostErrorCode: unique values; every code has a throw site that carries it, with the class name', () => {
  const values = Object.values(CostErrorCode);
  assert.equal(new Set(values).size, values.length);
  for (const v of values) assert.match(v, /^[A-Z][A-Z0-9_]*$/);
  const caught = (fn: () => unknown): CostError => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof CostError && e instanceof Error);
      return e;
    }
    assert.fail('expected a CostError');
  };
  // `satisfies` makes tsc fail when a code is added to the union without a case here.
  const byCode = {
    [CostErrorCode.CatalogInvalid]: caught(() => parseCatalog(42)),
    [CostErrorCode.DeviceUnknown]: caught(() => findDevice(PAPER_CATALOG, 'no-such-device')),
    [CostErrorCode.ModelUnknown]: caught(() => findModel('no-such-model')),
    [CostErrorCode.Input]: caught(() => new CorrectionTable({ alpha: 2 })),
    [CostErrorCode.SweepRange]: caught(() => resolveSweepRanges({ years: [6, 3] })),
  } satisfies Record<CostErrorCode, CostError>;
  assert.deepEqual(Object.keys(byCode).sort(), [...values].sort());
  for (const [code, e] of Object.entries(byCode)) {
    assert.equal(e.code, code);
    assert.equal(e.name, 'CostError');
    assert.equal(e.exitCode, 2);
  }
  const cause = new Error('underlying');
  assert.equal(new CostError(CostErrorCode.Input, 'm', { cause }).cause, cause);
  // @ts-expect-error: a misspelt code does not type-check.
  const misspelt = () => new CostError('COST_INPT', 'm');
  assert.equal(typeof misspelt, 'function');
});

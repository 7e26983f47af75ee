import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AgentsError, AgentsErrorCode, calculate } from '../src/index.js';

test('AgentsErrorCode: unique values; an error of each code carries it and the class name', () => {
  const values = Object.values(AgentsErrorCode);
  assert.equal(new Set(values).size, values.length);
  for (const v of values) assert.match(v, /^[A-Z][A-Z0-9_]*$/);
  const caught = (fn: () => unknown): AgentsError => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof AgentsError && e instanceof Error);
      return e;
    }
    assert.fail('expected an AgentsError');
  };
  // The calculator's codes come from its throw sites; the others need a cluster (operators.test.ts,
  // placement.test.ts and the coordinator tests provoke them), so they are constructed here.
  // `satisfies` makes tsc fail when a code is added to the union without a case here.
  const byCode = {
    [AgentsErrorCode.CalcSyntax]: caught(() => calculate('1 +')),
    [AgentsErrorCode.CalcMath]: caught(() => calculate('1 / 0')),
    [AgentsErrorCode.OpNotConfigured]: new AgentsError(AgentsErrorCode.OpNotConfigured, 'm'),
    [AgentsErrorCode.OpConfigInvalid]: new AgentsError(AgentsErrorCode.OpConfigInvalid, 'm'),
    [AgentsErrorCode.OpUnknown]: new AgentsError(AgentsErrorCode.OpUnknown, 'm'),
    [AgentsErrorCode.DeployNoNodes]: new AgentsError(AgentsErrorCode.DeployNoNodes, 'm'),
    [AgentsErrorCode.DeployInfeasible]: new AgentsError(AgentsErrorCode.DeployInfeasible, 'm'),
    [AgentsErrorCode.DeployInvalid]: new AgentsError(AgentsErrorCode.DeployInvalid, 'm'),
    [AgentsErrorCode.DeploymentUnknown]: new AgentsError(AgentsErrorCode.DeploymentUnknown, 'm'),
    [AgentsErrorCode.NotLeader]: new AgentsError(AgentsErrorCode.NotLeader, 'm'),
    [AgentsErrorCode.RequestFailed]: new AgentsError(AgentsErrorCode.RequestFailed, 'm', {
      cause: new Error('underlying'),
    }),
    [AgentsErrorCode.TooManyListeners]: new AgentsError(AgentsErrorCode.TooManyListeners, 'm'),
    [AgentsErrorCode.PrivacyConfigInvalid]: new AgentsError(AgentsErrorCode.PrivacyConfigInvalid, 'm'),
    [AgentsErrorCode.InputTooLarge]: new AgentsError(AgentsErrorCode.InputTooLarge, 'm'),
    [AgentsErrorCode.HttpRequestInvalid]: new AgentsError(AgentsErrorCode.HttpRequestInvalid, 'm'),
    [AgentsErrorCode.HttpHostNotAllowed]: new AgentsError(AgentsErrorCode.HttpHostNotAllowed, 'm'),
    [AgentsErrorCode.HttpTimeout]: new AgentsError(AgentsErrorCode.HttpTimeout, 'm'),
    [AgentsErrorCode.HttpResponseTooLarge]: new AgentsError(AgentsErrorCode.HttpResponseTooLarge, 'm'),
    [AgentsErrorCode.HttpFailed]: new AgentsError(AgentsErrorCode.HttpFailed, 'm'),
    [AgentsErrorCode.LlmFailed]: new AgentsError(AgentsErrorCode.LlmFailed, 'm'),
    [AgentsErrorCode.BatchQueueFull]: new AgentsError(AgentsErrorCode.BatchQueueFull, 'm'),
    [AgentsErrorCode.SpeechFailed]: new AgentsError(AgentsErrorCode.SpeechFailed, 'm'),
    [AgentsErrorCode.LlmResponseInvalid]: new AgentsError(AgentsErrorCode.LlmResponseInvalid, 'm'),
    [AgentsErrorCode.VectorInvalid]: new AgentsError(AgentsErrorCode.VectorInvalid, 'm'),
    [AgentsErrorCode.VectorIndexFull]: new AgentsError(AgentsErrorCode.VectorIndexFull, 'm'),
    [AgentsErrorCode.VectorIndexUnavailable]: new AgentsError(AgentsErrorCode.VectorIndexUnavailable, 'm'),
    [AgentsErrorCode.VectorIndexClosed]: new AgentsError(AgentsErrorCode.VectorIndexClosed, 'm'),
  } satisfies Record<AgentsErrorCode, AgentsError>;
  assert.deepEqual(Object.keys(byCode).sort(), [...values].sort());
  for (const [code, e] of Object.entries(byCode)) {
    assert.equal(e.code, code);
    assert.equal(e.name, 'AgentsError');
  }
  assert.ok(byCode[AgentsErrorCode.RequestFailed].cause instanceof Error);
  // @ts-expect-error: a misspelt code does not type-check.
  const misspelt = () => new AgentsError('CALC_SYNTAXX', 'm');
  assert.equal(typeof misspelt, 'function');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ArtifactIntegrity,
  ArtifactNotFound,
  ArtifactUntrusted,
  CompileFailed,
  CompilerError,
  CompilerErrorCode,
  InvalidKernelSpec,
  type KernelSpec,
  ToolchainMissing,
  validateSpec,
} from '../src/index.js';

test('CompilerErrorCode: unique values; one error class per code, named after the class', () => {
  const values = Object.values(CompilerErrorCode);
  assert.equal(new Set(values).size, values.length);
  for (const v of values) assert.match(v, /^[A-Z][A-Z0-9_]*$/);
  // `satisfies` makes tsc fail when a code is added to the union without a class here.
  const byCode = {
    [CompilerErrorCode.InvalidSpec]: [new InvalidKernelSpec('nn.add.cols must be > 0'), 'InvalidKernelSpec'],
    [CompilerErrorCode.ToolchainMissing]: [new ToolchainMissing('clang-19'), 'ToolchainMissing'],
    [CompilerErrorCode.CompileFailed]: [new CompileFailed('clang-19', 'add', 'stderr'), 'CompileFailed'],
    [CompilerErrorCode.ArtifactIntegrity]: [new ArtifactIntegrity('artifact x'), 'ArtifactIntegrity'],
    [CompilerErrorCode.ArtifactNotFound]: [new ArtifactNotFound('f'.repeat(64)), 'ArtifactNotFound'],
    [CompilerErrorCode.ArtifactUntrusted]: [
      new ArtifactUntrusted('artifact x is unsigned'),
      'ArtifactUntrusted',
    ],
  } satisfies Record<CompilerErrorCode, [CompilerError, string]>;
  assert.deepEqual(Object.keys(byCode).sort(), [...values].sort());
  for (const [code, [error, name]] of Object.entries(byCode)) {
    assert.ok(error instanceof CompilerError && error instanceof Error);
    assert.equal(error.code, code);
    assert.equal(error.name, name);
  }
  const cause = new Error('spawn clang-19 ENOENT');
  assert.equal(new ToolchainMissing('clang-19', { cause }).cause, cause);
  // @ts-expect-error: a misspelt code does not type-check.
  const misspelt = () => new CompilerError('KERNEL_SPECS', 'm');
  assert.equal(typeof misspelt, 'function');
});

test('an unknown op from an untyped caller is InvalidKernelSpec, not a TypeError', () => {
  for (const spec of [{ op: 'nn.nope' }, {}, { op: 'toString' }]) {
    assert.throws(
      () => validateSpec(spec as unknown as KernelSpec),
      (e: unknown) => e instanceof InvalidKernelSpec && e.code === CompilerErrorCode.InvalidSpec,
    );
  }
});

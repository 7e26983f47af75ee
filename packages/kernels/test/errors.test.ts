import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  CheckpointInvalid,
  ContextExceeded,
  KernelError,
  KernelErrorCode,
  KernelIntegrityError,
  KernelLoadError,
  KernelOptionsInvalid,
  KernelRuntime,
  KernelShapeMismatch,
  Llama,
  type LlamaConfig,
  loadLlama2c,
  loadTokenizerBin,
  referenceOps,
  syntheticWeights,
  TokenizerInvalid,
} from '../src/index.js';

async function caught(fn: () => unknown): Promise<KernelError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof KernelError && e instanceof Error, String(e));
    return e;
  }
  assert.fail('expected a KernelError');
}

test('KernelErrorCode: unique values; one error class per code, named after the class', async () => {
  const values = Object.values(KernelErrorCode);
  assert.equal(new Set(values).size, values.length);
  for (const v of values) assert.match(v, /^[A-Z][A-Z0-9_]*$/);
  const config: LlamaConfig = {
    dim: 8,
    hiddenDim: 16,
    layers: 1,
    heads: 2,
    kvHeads: 1,
    vocab: 10,
    seqLen: 4,
  };
  const llama = new Llama(syntheticWeights(config), referenceOps(config));
  // Shape, integrity and load errors need a compiled artifact (runtime.test.ts provokes them); here they
  // are constructed. `satisfies` makes tsc fail when a code is added to the union without a class here.
  const byCode = {
    [KernelErrorCode.ShapeMismatch]: [
      new KernelShapeMismatch('add', 'expected 3 arrays'),
      KernelShapeMismatch,
    ],
    [KernelErrorCode.Integrity]: [new KernelIntegrityError('sha256 mismatch'), KernelIntegrityError],
    [KernelErrorCode.Load]: [new KernelLoadError('dlopen failed'), KernelLoadError],
    [KernelErrorCode.InvalidOptions]: [
      await caught(() => new KernelRuntime({ threads: 0 })),
      KernelOptionsInvalid,
    ],
    [KernelErrorCode.CheckpointInvalid]: [
      await caught(() => loadLlama2c(join(tmpdir(), 'stitch-no-such-checkpoint.bin'))),
      CheckpointInvalid,
    ],
    [KernelErrorCode.TokenizerInvalid]: [
      await caught(() => loadTokenizerBin(join(tmpdir(), 'stitch-no-such-tokenizer.bin'), 32)),
      TokenizerInvalid,
    ],
    [KernelErrorCode.ContextExceeded]: [await caught(() => llama.prefill([1, 2, 3, 4, 5])), ContextExceeded],
  } satisfies Record<KernelErrorCode, [KernelError, abstract new (...args: never[]) => KernelError]>;
  assert.deepEqual(Object.keys(byCode).sort(), [...values].sort());
  for (const [code, [error, cls]] of Object.entries(byCode)) {
    assert.ok(error instanceof cls);
    assert.equal(error.code, code);
    assert.equal(error.name, cls.name);
  }
  const missing = await caught(() => loadLlama2c(join(tmpdir(), 'stitch-no-such-checkpoint.bin')));
  assert.equal((missing.cause as { code?: string } | undefined)?.code, 'ENOENT');
  // @ts-expect-error: a misspelt code does not type-check.
  const misspelt = () => new KernelError('KERNEL_SHAPES', 'm');
  assert.equal(typeof misspelt, 'function');
});

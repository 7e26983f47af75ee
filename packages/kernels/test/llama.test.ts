import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { defaultCacheDir, runnableTargets } from '@stitch/compiler';
import {
  CheckpointInvalid,
  KernelRuntime,
  kernelOps,
  Llama,
  type LlamaConfig,
  loadLlama2c,
  probeHost,
  reference,
  referenceOps,
  syntheticWeights,
  writeLlama2c,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'stitch-llama-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const config: LlamaConfig = {
  dim: 32,
  hiddenDim: 48,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  vocab: 40,
  seqLen: 16,
};
const runtime = new KernelRuntime({ threads: 2 });

function close(actual: Float32Array, expected: Float32Array, what: string) {
  const err = reference.relativeError(actual, expected);
  assert.ok(err <= 1e-4, `${what}: relative error ${err}`);
}

test('a llama2.c checkpoint round-trips and a truncated one is refused', async () => {
  const weights = syntheticWeights(config, 7);
  const path = join(dir, 'tiny.bin');
  await writeLlama2c(path, weights);
  const loaded = await loadLlama2c(path);
  assert.equal(loaded.synthetic, false);
  assert.deepEqual(loaded.config, config);
  assert.deepEqual(loaded.wk[1], weights.wk[1]);
  assert.deepEqual(loaded.rmsFinal, weights.rmsFinal);
  writeFileSync(join(dir, 'short.bin'), Buffer.alloc(40));
  await assert.rejects(loadLlama2c(join(dir, 'short.bin')), CheckpointInvalid);
});

for (const target of runnableTargets(probeHost().x86Level)) {
  test(`compiled Llama matches the TypeScript reference on ${target} (prefill, decode, embed)`, async () => {
    const path = join(dir, `model-${target}.bin`);
    await writeLlama2c(path, syntheticWeights(config, 11));
    const weights = await loadLlama2c(path);
    const model = new Llama(
      weights,
      await kernelOps(config, runtime, { target, cacheDir: defaultCacheDir() }),
    );
    const oracle = new Llama(weights, referenceOps(config));
    const prompt = [1, 5, 9, 22, 3];
    close(await model.prefill(prompt), await oracle.prefill(prompt), 'prefill logits');
    for (const token of [7, 30, 2]) {
      close(await model.decode(token), await oracle.decode(token), `decode logits at ${model.position}`);
    }
    assert.equal(model.position, prompt.length + 3);
    close(await model.embed([4, 8, 15, 16]), await oracle.embed([4, 8, 15, 16]), 'embedding');
    assert.equal(model.position, prompt.length + 3, 'embed leaves the KV cache alone');
  });
}

test('decode over the KV cache gives the same logits as prefilling the whole sequence', async () => {
  const weights = syntheticWeights(config, 3);
  const ops = await kernelOps(config, runtime, { target: 'x86-64', cacheDir: defaultCacheDir() });
  const a = new Llama(weights, ops);
  const b = new Llama(weights, ops);
  await a.prefill([2, 4, 6]);
  const stepped = await a.decode(8);
  close(stepped, await b.prefill([2, 4, 6, 8]), 'cache vs full prefill');
});

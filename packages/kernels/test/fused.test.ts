import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { defaultCacheDir } from '@stitch/compiler';
import {
  ContextExceeded,
  fusedDecode,
  KernelOptionsInvalid,
  KernelRuntime,
  KernelShapeMismatch,
  kernelOps,
  Llama,
  type LlamaConfig,
  loadGguf,
  probeHost,
  syntheticWeights,
  writeGguf,
} from '../src/index.js';
import { logitsBound, recordingReference, tinyTokenizer, tinyWeights } from './tiny-model.js';

const dir = mkdtempSync(join(tmpdir(), 'stitch-fused-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const options = { target: probeHost().x86Level ?? 'x86-64', cacheDir: defaultCacheDir() } as const;

const shapes: [string, LlamaConfig][] = [
  ['grouped-query', { dim: 64, hiddenDim: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 48, seqLen: 16 }],
  [
    'multi-head, odd sizes',
    { dim: 36, hiddenDim: 52, layers: 3, heads: 3, kvHeads: 3, vocab: 29, seqLen: 12, theta: 500 },
  ],
];

for (const [name, config] of shapes) {
  test(`the fused decode step (one kernel for all layers + classifier) equals the unfused kernels: ${name}`, async () => {
    const runtime = new KernelRuntime();
    const weights = syntheticWeights(config, 17);
    const ops = await kernelOps(config, runtime, options);
    const fused = await fusedDecode(weights, runtime, options);
    const unfused = new Llama(weights, ops);
    const model = new Llama(weights, ops, fused);
    const recorded = recordingReference(weights);
    const oracle = new Llama(weights, recorded.ops);
    const prompt = [3, 1, 4, 1, 5];
    await Promise.all([unfused.prefill(prompt), model.prefill(prompt), oracle.prefill(prompt)]);
    // Tokens past the prompt up to the end of the context: the attention spans 6..seqLen keys.
    for (let t = 0; model.position < config.seqLen; t++) {
      const token = (t * 7 + 2) % config.vocab;
      const before = runtime.calls;
      const got = await model.decode(token);
      assert.equal(runtime.calls - before, fused.calls, 'native calls per fused step');
      const [want, ref] = await Promise.all([unfused.decode(token), oracle.decode(token)]);
      const bound = logitsBound(weights.wcls, recorded.hidden(), config.vocab);
      const diff = (a: Float32Array, b: Float32Array) =>
        a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
      assert.ok(
        diff(got, want) <= bound,
        `position ${model.position}: fused vs unfused ${diff(got, want)} > ${bound}`,
      );
      assert.ok(
        diff(got, ref) <= bound,
        `position ${model.position}: fused vs reference ${diff(got, ref)} > ${bound}`,
      );
    }
    const cache = new Float32Array(config.layers * config.seqLen * config.dim);
    await assert.rejects(fused.decode(1, config.seqLen, cache, cache), KernelShapeMismatch);
    await assert.rejects(fused.decode(config.vocab, 0, cache, cache), KernelShapeMismatch);
  });
}

for (const [name, config] of shapes) {
  test(`the fused prefill (one kernel for all layers over the prompt + classifier) equals the unfused kernels and the reference, and decode goes on alike: ${name}`, async () => {
    const runtime = new KernelRuntime();
    const weights = syntheticWeights(config, 29);
    const ops = await kernelOps(config, runtime, options);
    const withPrefill = await fusedDecode(weights, runtime, { ...options, prefill: true });
    const decodeOnly = await fusedDecode(weights, runtime, options);
    const model = new Llama(weights, ops, withPrefill);
    const unfused = new Llama(weights, ops, decodeOnly);
    const recorded = recordingReference(weights);
    const oracle = new Llama(weights, recorded.ops);
    const diff = (a: Float32Array, b: Float32Array) =>
      a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
    for (const length of [1, 2, 7, config.seqLen]) {
      const prompt = Array.from({ length }, (_, i) => (i * 5 + length) % config.vocab);
      const before = runtime.calls;
      const got = await model.prefill(prompt);
      assert.equal(runtime.calls - before, 2, 'native calls per fused prefill');
      assert.equal(model.position, length);
      const [want, ref] = await Promise.all([unfused.prefill(prompt), oracle.prefill(prompt)]);
      const bound = logitsBound(weights.wcls, recorded.hidden(), config.vocab);
      assert.ok(diff(got, want) <= bound, `${length} tokens: fused vs unfused ${diff(got, want)} > ${bound}`);
      assert.ok(diff(got, ref) <= bound, `${length} tokens: fused vs reference ${diff(got, ref)} > ${bound}`);
    }
    // The KV cache the fused prefill wrote is the one decode goes on from: the same tokens follow.
    const prompt = [3, 1, 4, 1, 5];
    const steps = config.seqLen - prompt.length;
    assert.deepEqual(await model.generate(prompt, steps), await unfused.generate(prompt, steps));
  });
}

test('a fused prefill from a later position attends to the cache before it, as one prefill of the whole prompt', async () => {
  const config = shapes[0]![1];
  const runtime = new KernelRuntime();
  const weights = syntheticWeights(config, 31);
  const fused = await fusedDecode(weights, runtime, { ...options, prefill: true });
  const cacheFloats = config.layers * config.seqLen * (config.dim / config.heads) * config.kvHeads;
  const caches = () => [new Float32Array(cacheFloats), new Float32Array(cacheFloats)] as const;
  const prompt = [9, 8, 7, 6, 5, 4, 3, 2, 1];
  const [k1, v1] = caches();
  const whole = await fused.prefill!(prompt, 0, k1, v1);
  const [k2, v2] = caches();
  await fused.prefill!(prompt.slice(0, 4), 0, k2, v2);
  const parts = await fused.prefill!(prompt.slice(4), 4, k2, v2);
  const recorded = recordingReference(weights);
  await new Llama(weights, recorded.ops).prefill(prompt);
  const bound = logitsBound(weights.wcls, recorded.hidden(), config.vocab);
  const err = parts.reduce((m, x, i) => Math.max(m, Math.abs(x - whole[i]!)), 0);
  assert.ok(err <= bound, `in two parts vs whole ${err} > ${bound}`);
  await assert.rejects(fused.prefill!([1, 2], config.seqLen - 1, k2, v2), KernelShapeMismatch);
  await assert.rejects(fused.prefill!([], 0, k2, v2), KernelShapeMismatch);
  await assert.rejects(fused.prefill!([config.vocab], 0, k2, v2), KernelShapeMismatch);
  const model = new Llama(weights, await kernelOps(config, runtime, options), fused);
  await assert.rejects(model.prefill(Array(config.seqLen + 1).fill(1)), ContextExceeded);
});

test('q8_0 decode of a q8_0 GGUF checkpoint equals the reference on its weights (re-quantizing is lossless)', async () => {
  const runtime = new KernelRuntime();
  const tokenizer = tinyTokenizer();
  const path = join(dir, 'q8.gguf');
  await writeGguf(path, tinyWeights(tokenizer.vocab, 23, true), tokenizer, 'q8_0');
  const { weights } = await loadGguf(path);
  const config = weights.config;
  const ops = await kernelOps(config, runtime, options);
  // Its prefill runs in f32 (its own copy of the weights), so it meets the f32 bound.
  const q8 = await fusedDecode(weights, runtime, { ...options, quant: 'q8_0', prefill: true });
  const f32 = await fusedDecode(weights, runtime, options);
  assert.ok(
    q8.bytesPerToken <= 0.3 * f32.bytesPerToken,
    `${q8.bytesPerToken} vs ${f32.bytesPerToken} bytes per token`,
  );
  const model = new Llama(weights, ops, q8);
  const recorded = recordingReference(weights);
  const oracle = new Llama(weights, recorded.ops);
  const [prefilled, prefillRef] = await Promise.all([model.prefill([1, 2, 3]), oracle.prefill([1, 2, 3])]);
  const prefillBound = logitsBound(weights.wcls, recorded.hidden(), config.vocab);
  const prefillErr = prefilled.reduce((m, x, i) => Math.max(m, Math.abs(x - prefillRef[i]!)), 0);
  assert.ok(prefillErr <= prefillBound, `prefill: ${prefillErr} > ${prefillBound}`);
  for (let t = 0; model.position < config.seqLen; t++) {
    const token = (t * 13 + 5) % config.vocab;
    const [got, ref] = await Promise.all([model.decode(token), oracle.decode(token)]);
    const bound = logitsBound(weights.wcls, recorded.hidden(), config.vocab);
    const err = got.reduce((m, x, i) => Math.max(m, Math.abs(x - ref[i]!)), 0);
    assert.ok(err <= bound, `position ${model.position}: q8_0 vs reference ${err} > ${bound}`);
  }
  const odd = syntheticWeights(shapes[1]![1], 1);
  await assert.rejects(fusedDecode(odd, runtime, { ...options, quant: 'q8_0' }), KernelOptionsInvalid);
});

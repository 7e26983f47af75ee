// A decode step over several sequences at once equals each sequence decoded alone, and a KV cache
// handed from one model to another decodes on exactly as if it had never moved.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { defaultCacheDir } from '@stitch/compiler';
import {
  argmax,
  ContextExceeded,
  KernelRuntime,
  KernelShapeMismatch,
  kernelOps,
  Llama,
  type LlamaConfig,
  type LlamaOps,
  probeHost,
  reference,
  referenceOps,
  syntheticWeights,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'stitch-batch-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const config: LlamaConfig = {
  dim: 32,
  hiddenDim: 48,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  vocab: 40,
  seqLen: 24,
};
const weights = syntheticWeights(config, 5);
const prompts = [[1, 2, 3], [7], [4, 9, 11, 2, 30, 5], [12, 12]];

/** Each prompt decoded `steps` greedy (or forced) tokens: alone (one model per prompt), or all in batched steps. */
async function decodeAll(ops: LlamaOps, steps: number, batched: boolean, force?: number[][]) {
  const seqs = prompts.map(() => new Llama(weights, ops));
  let logits = await Promise.all(seqs.map((s, i) => s.prefill(prompts[i]!)));
  const tokens: number[][] = prompts.map(() => []);
  const allLogits: Float32Array[][] = prompts.map(() => []);
  for (let step = 0; step < steps; step++) {
    // `force`: the tokens to feed, so that two runs compare logits at the same inputs.
    const next = logits.map((l, i) => force?.[i]?.[step] ?? argmax(l));
    for (const [i, t] of next.entries()) tokens[i]!.push(t);
    logits = batched
      ? await Llama.decodeBatch(seqs, next)
      : await Promise.all(seqs.map((s, i) => s.decode(next[i]!)));
    for (const [i, l] of logits.entries()) allLogits[i]!.push(Float32Array.from(l));
  }
  return { tokens, logits: allLogits };
}

test('batched decode equals decoding each sequence alone (reference: exactly; compiled: within the bound)', async () => {
  const ref = referenceOps(config);
  const alone = await decodeAll(ref, 8, false);
  const together = await decodeAll(ref, 8, true);
  assert.deepEqual(together.tokens, alone.tokens);
  assert.deepEqual(together.logits, alone.logits);

  const runtime = new KernelRuntime({ threads: 2 });
  const target = (probeHost().x86Level ?? 'x86-64') as 'x86-64';
  const compiled = await kernelOps(config, runtime, { target, cacheDir: defaultCacheDir() });
  // Compiled kernels round differently from the reference: the logits within the dot-product bound
  // (a greedy token could flip on a near-tie, so tokens are compared exactly only above).
  const batched = await decodeAll(compiled, 8, true, alone.tokens);
  for (const [i, seq] of batched.logits.entries()) {
    for (const [s, l] of seq.entries()) {
      const err = reference.relativeError(l, alone.logits[i]![s]!);
      assert.ok(err <= 1e-4, `sequence ${i} step ${s}: relative error ${err}`);
    }
  }
});

test('a KV cache exported after prefill and imported elsewhere decodes the same tokens', async () => {
  const ops = referenceOps(config);
  const prompt = [3, 1, 4, 1, 5, 9];
  const whole = new Llama(weights, ops);
  let logits = await whole.prefill(prompt);
  const expected: number[] = [];
  for (let i = 0; i < 6; i++) {
    expected.push(argmax(logits));
    logits = await whole.decode(expected.at(-1)!);
  }

  const prefiller = new Llama(weights, ops);
  const first = argmax(await prefiller.prefill(prompt));
  const kv = prefiller.exportKv();
  assert.equal(kv.position, prompt.length);
  assert.equal(kv.k.length, config.layers * prompt.length * 16);
  const decoder = new Llama(weights, ops);
  decoder.importKv(kv);
  const got = [first];
  logits = await decoder.decode(first);
  for (let i = 1; i < 6; i++) {
    got.push(argmax(logits));
    logits = await decoder.decode(got.at(-1)!);
  }
  assert.deepEqual(got, expected);

  assert.throws(() => decoder.importKv({ ...kv, k: kv.k.subarray(1) }), KernelShapeMismatch);
  assert.throws(() => decoder.importKv({ ...kv, position: config.seqLen }), ContextExceeded);
  assert.throws(() => decoder.importKv({ ...kv, position: 2.5 }), ContextExceeded);
  assert.throws(() => decoder.importKv({ ...kv, v: [1, 2] as unknown as Float32Array }), KernelShapeMismatch);
});

test('decodeBatch refuses sequences of other weights and a full context', async () => {
  const ops = referenceOps(config);
  const a = new Llama(weights, ops);
  const b = new Llama(syntheticWeights(config, 6), ops);
  await assert.rejects(Llama.decodeBatch([a, b], [1, 1]), KernelShapeMismatch);
  const full = new Llama(weights, ops);
  await full.prefill(Array.from({ length: config.seqLen }, () => 1));
  await assert.rejects(Llama.decodeBatch([full], [1]), ContextExceeded);
  assert.deepEqual(await Llama.decodeBatch([], []), []);
});

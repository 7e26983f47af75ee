// Tensor parallelism: ranks holding slices of the heads and of the FFN, their partials summed twice
// per layer, compute the unsplit model (TP=2 equals TP=1), with compiled kernels and in the reference.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  allReduce,
  argmax,
  KernelOptionsInvalid,
  KernelRuntime,
  KernelShapeMismatch,
  kernelOps,
  Llama,
  type LlamaConfig,
  type LlamaOps,
  LlamaShard,
  probeHost,
  reference,
  referenceOps,
  shardWeights,
  syntheticWeights,
  TensorParallelLlama,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'stitch-tp-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const config: LlamaConfig = {
  dim: 64,
  hiddenDim: 96,
  layers: 3,
  heads: 4,
  kvHeads: 2,
  vocab: 50,
  seqLen: 32,
};
const weights = syntheticWeights(config, 11);
const runtime = new KernelRuntime({ threads: 1 });
const prompt = [3, 14, 15, 9, 26, 5];

/** A TP model whose ranks run here: each block asks every rank, then all-reduces their partials. */
function tensorParallel(tp: number, fullOps: LlamaOps, rankOps: LlamaOps) {
  const ranks = Array.from({ length: tp }, (_, r) => new LlamaShard(shardWeights(weights, tp, r), rankOps));
  const kvs = ranks.map((s) => s.newKv());
  return new TensorParallelLlama(weights, fullOps, async (layer, block, x, pos) => {
    const partials = await Promise.all(
      ranks.map((s, r) => (block === 'attention' ? s.attention(kvs[r]!, layer, x, pos) : s.ffn(layer, x))),
    );
    return allReduce(fullOps, x, partials);
  });
}

/** Logits of the prompt and of `forced` tokens after it, one decode step each. */
async function logitsOf(
  model: { prefill(t: number[]): Promise<Float32Array>; decode(t: number): Promise<Float32Array> },
  forced: number[],
) {
  const out = [await model.prefill(prompt)];
  for (const t of forced) out.push(await model.decode(t));
  return out;
}

async function greedy(
  model: { prefill(t: number[]): Promise<Float32Array>; decode(t: number): Promise<Float32Array> },
  steps: number,
) {
  let logits = await model.prefill(prompt);
  const tokens: number[] = [];
  for (let i = 0; i < steps; i++) {
    tokens.push(argmax(logits));
    if (i + 1 < steps) logits = await model.decode(tokens.at(-1)!);
  }
  return tokens;
}

const forced = [7, 1, 42, 42, 0, 19, 33, 8];

test('TP=2 equals TP=1 in the reference: logits teacher-forced, and the greedy tokens', async () => {
  const one = new Llama(weights, referenceOps(config));
  const two = tensorParallel(2, referenceOps(config), referenceOps(config, 2));
  const a = await logitsOf(one, forced);
  const b = await logitsOf(two, forced);
  for (let i = 0; i < a.length; i++) {
    const err = reference.relativeError(b[i]!, a[i]!);
    assert.ok(err <= 1e-6, `step ${i}: relative error ${err}`);
  }
  assert.deepEqual(
    await greedy(tensorParallel(2, referenceOps(config), referenceOps(config, 2)), 20),
    await greedy(new Llama(weights, referenceOps(config)), 20),
  );
});

test('TP=2 equals TP=1 on compiled kernels: within the dot-product bound, and the same greedy tokens', async () => {
  const target = (probeHost().x86Level ?? 'x86-64') as 'x86-64';
  const compile = { target, cacheDir: join(dir, 'cache') };
  const full = await kernelOps(config, runtime, compile);
  const rank = await kernelOps(config, runtime, { ...compile, tp: 2 });
  const a = await logitsOf(new Llama(weights, full), forced);
  const b = await logitsOf(tensorParallel(2, full, rank), forced);
  for (let i = 0; i < a.length; i++) {
    const err = reference.relativeError(b[i]!, a[i]!);
    assert.ok(err <= 1e-4, `step ${i}: relative error ${err}`);
  }
  assert.deepEqual(
    await greedy(tensorParallel(2, full, rank), 20),
    await greedy(new Llama(weights, full), 20),
  );
});

test("a rank's FFN and attention partials sum to the unsplit block", async () => {
  const x = Float32Array.from({ length: 2 * config.dim }, (_, i) => Math.sin(i));
  const pos = Int32Array.from([0, 1]);
  const full = new LlamaShard(shardWeights(weights, 1, 0), referenceOps(config));
  const halves = [0, 1].map((r) => new LlamaShard(shardWeights(weights, 2, r), referenceOps(config, 2)));
  const ops = referenceOps(config);
  for (const layer of [0, 2]) {
    const ffn = await allReduce(ops, x, await Promise.all(halves.map((s) => s.ffn(layer, x))));
    assert.ok(reference.relativeError(ffn, await allReduce(ops, x, [await full.ffn(layer, x)])) <= 1e-6);
    const att = await allReduce(
      ops,
      x,
      await Promise.all(halves.map((s) => s.attention(s.newKv(), layer, x, pos))),
    );
    const whole = await allReduce(ops, x, [await full.attention(full.newKv(), layer, x, pos)]);
    assert.ok(reference.relativeError(att, whole) <= 1e-6);
  }
});

test('a split the model does not allow, and shapes a rank does not hold, are typed errors', async () => {
  assert.throws(
    () => shardWeights(weights, 3, 0),
    (e) => e instanceof KernelOptionsInvalid && /4 heads|2 KV heads/.test(e.message),
  );
  assert.throws(() => shardWeights(weights, 2, 2), KernelOptionsInvalid);
  assert.throws(() => shardWeights(weights, 2, 0, [2, 2]), KernelOptionsInvalid);
  const s = new LlamaShard(shardWeights(weights, 2, 1, [1, 2]), referenceOps(config, 2));
  assert.equal(s.weights.wo[0]!.length, config.dim * 32);
  await Promise.all([
    assert.rejects(s.ffn(0, new Float32Array(config.dim)), KernelShapeMismatch),
    assert.rejects(s.attention(s.newKv(), 1, new Float32Array(3), Int32Array.from([0])), KernelShapeMismatch),
    assert.rejects(
      s.attention(s.newKv(), 1, new Float32Array(2 * config.dim), Int32Array.from([4, 5])),
      KernelShapeMismatch,
    ),
  ]);
});

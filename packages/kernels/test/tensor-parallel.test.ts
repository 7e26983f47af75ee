// Tensor parallelism: ranks holding slices of the heads and of the FFN, their partials summed twice
// per layer, compute the unsplit model (TP=2 equals TP=1), with compiled kernels and in the reference;
// and expert parallelism: ranks holding shares of a mixture of experts (EP=2 equals EP=1).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { defaultCacheDir } from '@stitch/compiler';
import {
  allReduce,
  argmax,
  ExpertShard,
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
  syntheticExperts,
  syntheticWeights,
  TensorParallelLlama,
  withExperts,
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
async function tensorParallel(tp: number, fullOps: LlamaOps, rankOps: LlamaOps) {
  const ranks = await Promise.all(
    Array.from({ length: tp }, async (_, r) => new LlamaShard(await shardWeights(weights, tp, r), rankOps)),
  );
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
  const two = await tensorParallel(2, referenceOps(config), referenceOps(config, 2));
  const a = await logitsOf(one, forced);
  const b = await logitsOf(two, forced);
  for (let i = 0; i < a.length; i++) {
    const err = reference.relativeError(b[i]!, a[i]!);
    assert.ok(err <= 1e-6, `step ${i}: relative error ${err}`);
  }
  assert.deepEqual(
    await greedy(await tensorParallel(2, referenceOps(config), referenceOps(config, 2)), 20),
    await greedy(new Llama(weights, referenceOps(config)), 20),
  );
});

test('TP=2 equals TP=1 on compiled kernels: within the dot-product bound, and the same greedy tokens', async () => {
  const target = (probeHost().x86Level ?? 'x86-64') as 'x86-64';
  const compile = { target, cacheDir: defaultCacheDir() };
  const full = await kernelOps(config, runtime, compile);
  const rank = await kernelOps(config, runtime, { ...compile, tp: 2 });
  const a = await logitsOf(new Llama(weights, full), forced);
  const b = await logitsOf(await tensorParallel(2, full, rank), forced);
  for (let i = 0; i < a.length; i++) {
    const err = reference.relativeError(b[i]!, a[i]!);
    assert.ok(err <= 1e-4, `step ${i}: relative error ${err}`);
  }
  assert.deepEqual(
    await greedy(await tensorParallel(2, full, rank), 20),
    await greedy(new Llama(weights, full), 20),
  );
});

test("a rank's FFN and attention partials sum to the unsplit block", async () => {
  const x = Float32Array.from({ length: 2 * config.dim }, (_, i) => Math.sin(i));
  const pos = Int32Array.from([0, 1]);
  const full = new LlamaShard(await shardWeights(weights, 1, 0), referenceOps(config));
  const halves = await Promise.all(
    [0, 1].map(async (r) => new LlamaShard(await shardWeights(weights, 2, r), referenceOps(config, 2))),
  );
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
  await assert.rejects(
    shardWeights(weights, 3, 0),
    (e) => e instanceof KernelOptionsInvalid && /4 heads|2 KV heads/.test(e.message),
  );
  await assert.rejects(shardWeights(weights, 2, 2), KernelOptionsInvalid);
  await assert.rejects(shardWeights(weights, 2, 0, [2, 2]), KernelOptionsInvalid);
  const s = new LlamaShard(await shardWeights(weights, 2, 1, [1, 2]), referenceOps(config, 2));
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

// Expert parallelism: a mixture of experts (4 experts, 2 per token) whose experts are split over
// two ranks; attention is not split, and the merge sums the ranks' FFN outputs onto the residual.
const moeWeights = withExperts(weights, syntheticExperts(config, 4, 2, 23));

async function expertParallel(ep: number, ops: LlamaOps) {
  const attention = new LlamaShard(await shardWeights(moeWeights, 1, 0), ops);
  const kv = attention.newKv();
  const ranks = Array.from(
    { length: ep },
    (_, r) => new ExpertShard(moeWeights, ep, r, [0, config.layers], ops),
  );
  return new TensorParallelLlama(moeWeights, ops, async (layer, block, x, pos) =>
    block === 'attention'
      ? allReduce(ops, x, [await attention.attention(kv, layer, x, pos)])
      : allReduce(ops, x, await Promise.all(ranks.map((s) => s.ffn(layer, x)))),
  );
}

test('EP=2 equals the unsplit mixture of experts: reference and compiled, teacher-forced and greedy', async () => {
  const ref = referenceOps(config);
  const a = await logitsOf(new Llama(moeWeights, ref), forced);
  const b = await logitsOf(await expertParallel(2, ref), forced);
  for (let i = 0; i < a.length; i++) assert.ok(reference.relativeError(b[i]!, a[i]!) <= 1e-6, `step ${i}`);
  // The experts matter: the same model with its dense FFN computes other logits.
  const dense = await logitsOf(new Llama(weights, ref), forced);
  assert.ok(reference.relativeError(dense[1]!, a[1]!) > 1e-2, 'the experts change the logits');
  const target = (probeHost().x86Level ?? 'x86-64') as 'x86-64';
  const compiled = await kernelOps(config, runtime, { target, cacheDir: defaultCacheDir(), experts: 4 });
  const c = await logitsOf(new Llama(moeWeights, compiled), forced);
  const d = await logitsOf(await expertParallel(2, compiled), forced);
  for (let i = 0; i < c.length; i++)
    assert.ok(reference.relativeError(d[i]!, c[i]!) <= 1e-4, `compiled step ${i}`);
  assert.deepEqual(
    await greedy(await expertParallel(2, compiled), 20),
    await greedy(new Llama(moeWeights, compiled), 20),
  );
});

test('expert ranks: their partials sum to the whole layer; a split the experts do not allow is refused', async () => {
  const ops = referenceOps(config);
  const x = Float32Array.from({ length: 3 * config.dim }, (_, i) => Math.cos(i / 3));
  const whole = await new ExpertShard(moeWeights, 1, 0, [0, 3], ops).ffn(1, x);
  const parts = await Promise.all(
    [0, 1, 2, 3].map((r) => new ExpertShard(moeWeights, 4, r, [1, 2], ops).ffn(1, x)),
  );
  assert.ok(reference.relativeError(await allReduce(ops, new Float32Array(x.length), parts), whole) <= 1e-6);
  assert.throws(
    () => new ExpertShard(moeWeights, 3, 0, [0, 3], ops),
    (e) => e instanceof KernelOptionsInvalid && /4 experts do not split 3 ways/.test(e.message),
  );
  assert.throws(
    () => new ExpertShard(weights, 2, 0, [0, 3], ops),
    (e) => e instanceof KernelOptionsInvalid && /dense FFN/.test(e.message),
  );
  await assert.rejects(new ExpertShard(moeWeights, 2, 0, [1, 2], ops).ffn(0, x), KernelShapeMismatch);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findModel, kvBytesPerToken, MODELS, modelIds, weightBytes } from '../src/index.js';

test('every model has a unique id that findModel returns', () => {
  assert.equal(new Set(modelIds()).size, MODELS.length);
  for (const m of MODELS) assert.equal(findModel(m.id), m);
  assert.equal(findModel('gpt-5'), undefined);
});

// ir counted KV as kv_heads·head_dim and cost as d_model·kv_heads/heads; both hold only if
// head_dim·heads = d_model, and grouped-query attention needs heads to be a multiple of kv_heads.
test('head shapes are consistent for every model', () => {
  for (const m of MODELS) {
    assert.equal(m.headDim * m.nHeads, m.dModel, m.id);
    assert.equal(m.nHeads % m.nKvHeads, 0, m.id);
  }
});

test('KV and weight bytes of the Llama 3 models at 2 bytes per element', () => {
  const m8 = findModel('llama3-8b')!;
  const m70 = findModel('llama3-70b')!;
  assert.equal(kvBytesPerToken(m8, 2), 131_072);
  assert.equal(kvBytesPerToken(m70, 2), 327_680);
  assert.equal(kvBytesPerToken(m70, 1), 163_840);
  assert.equal(weightBytes(m8, 2), 16.06e9);
  assert.equal(weightBytes(m70, 1), 70.6e9);
});

test('the shared table cannot be changed by one of its users', () => {
  assert.throws(() => (MODELS as unknown[]).push({}));
  assert.throws(() => {
    (MODELS[0] as { layers: number }).layers = 1;
  });
});

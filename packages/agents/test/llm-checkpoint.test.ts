import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  Llama,
  type LlamaConfig,
  loadCheckpoint,
  referenceOps,
  syntheticWeights,
  Tokenizer,
  writeLlama2c,
  writeTokenizerBin,
} from '@stitch/kernels';
import { CHECKPOINT_DIR_ENV, CHECKPOINT_ENV, checkpointFor, DECODE_TOKENS } from '../src/llm.js';
import { OP_FUNCTIONS, type OpConfig } from '../src/ops.js';

const dir = mkdtempSync(join(tmpdir(), 'stitch-llm-ckpt-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// A vocabulary of <unk>, <s>, </s>, the 256 byte tokens and printable ASCII: any text encodes.
function tokenizer(): Tokenizer {
  const pieces = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  for (let c = 32; c < 127; c++) pieces.push(String.fromCharCode(c));
  pieces.push('st', 'it', 'ch');
  return new Tokenizer(
    pieces.map((p) => Buffer.from(p, 'utf8')),
    Float32Array.from(pieces, (_, i) => (i < 259 ? 0 : -i / 1000)),
  );
}
const tok = tokenizer();
const config: LlamaConfig = {
  dim: 64,
  hiddenDim: 96,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  vocab: tok.vocab,
  seqLen: 64,
};

before(async () => {
  await writeLlama2c(join(dir, 'model.bin'), syntheticWeights(config, 3));
  await writeTokenizerBin(join(dir, 'tokenizer.bin'), tok);
});

const cfg = (op: string, attrs: OpConfig['attrs']): OpConfig => ({
  deployment: 'd',
  opId: op,
  op,
  attrs,
  device: 'cpu',
  modelled: false,
  estimatedMs: 1,
  natsUrl: 'nats://127.0.0.1:1',
  cluster: 'c',
});

/** tokenize → prefill → decode → detokenize, as a deployment's LLM ops run them. */
async function pipeline(attrs: OpConfig['attrs'], query: string) {
  const run = (op: string, ctx: Record<string, unknown>) => OP_FUNCTIONS[op]!(cfg(op, attrs), ctx, 'r1');
  const { ids } = await run('llm.tokenize', { query });
  const { first } = await run('llm.prefill', { ids });
  const decoded = await run('llm.decode', { ids, first });
  const { llmText } = await run('llm.detokenize', { tokens: decoded.tokens });
  return { ids: ids as number[], tokens: decoded.tokens as number[], llmModel: decoded.llmModel, llmText };
}

test('the LLM ops run a checkpoint named by the op (inside the node directory) and match the reference model', async () => {
  process.env[CHECKPOINT_DIR_ENV] = dir;
  try {
    const got = await pipeline({ checkpoint: 'model.bin' }, 'stitch it');
    // llm.tokenize encodes the query and the recalled memory (none here), space-separated.
    assert.deepEqual(got.ids, tok.encode('stitch it '));
    const { weights } = await loadCheckpoint(join(dir, 'model.bin'));
    const ref = new Llama(weights, referenceOps(weights.config));
    assert.deepEqual(got.tokens, await ref.generate(got.ids, DECODE_TOKENS));
    assert.equal(got.llmText, tok.decode(got.tokens));
    assert.match(String(got.llmModel), /^checkpoint .*model\.bin \(llama2c\)$/);
  } finally {
    delete process.env[CHECKPOINT_DIR_ENV];
  }
});

test("the node's STITCH_LLM_CHECKPOINT is the default; without one the ops say the weights are synthetic", async () => {
  process.env[CHECKPOINT_ENV] = join(dir, 'model.bin');
  try {
    assert.match(String((await pipeline({}, 'hi')).llmModel), /\(llama2c\)$/);
  } finally {
    delete process.env[CHECKPOINT_ENV];
  }
  assert.equal((await pipeline({}, 'hi')).llmModel, 'synthetic TINY_LLAMA (untrained)');
});

test('a checkpoint attribute outside the node directory, or with none set, is refused', () => {
  const invalid = (e: { code?: string }) => e.code === 'OP_CONFIG_INVALID';
  assert.throws(() => checkpointFor({ checkpoint: 'model.bin' }), invalid);
  process.env[CHECKPOINT_DIR_ENV] = dir;
  try {
    for (const name of ['../model.bin', '/etc/passwd', '.', 7])
      assert.throws(() => checkpointFor({ checkpoint: name }), invalid);
    assert.equal(checkpointFor({ checkpoint: 'model.bin' }), join(dir, 'model.bin'));
  } finally {
    delete process.env[CHECKPOINT_DIR_ENV];
  }
});

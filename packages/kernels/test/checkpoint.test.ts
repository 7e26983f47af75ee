import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gguf } from '@huggingface/gguf';
import { defaultCacheDir } from '@stitch/compiler';
import {
  CheckpointInvalid,
  KernelRuntime,
  kernelOps,
  Llama,
  type LlamaWeights,
  loadCheckpoint,
  loadCheckpointTokenizer,
  loadGguf,
  loadTokenizerBin,
  probeHost,
  TokenizerInvalid,
  writeGguf,
  writeLlama2c,
  writeTokenizerBin,
} from '../src/index.js';
import { logitsBound, recordingReference, tinyTokenizer, tinyWeights } from './tiny-model.js';

const dir = mkdtempSync(join(tmpdir(), 'stitch-checkpoint-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const runtime = new KernelRuntime({ threads: 2 });
const target = probeHost().x86Level ?? 'x86-64';
const cacheDir = defaultCacheDir();
const tokenizer = tinyTokenizer();
const vocab = tokenizer.vocab;

test('the tokenizer encodes as llama2.c (dummy prefix, best-score merges, byte fallback) and round-trips', async () => {
  const path = join(dir, 'tokenizer.bin');
  await writeTokenizerBin(path, tokenizer);
  const tok = await loadTokenizerBin(path, vocab);
  const id = (p: string) => tok.pieces.findIndex((x) => Buffer.from(x).toString('utf8') === p);
  // ' ' h e l l o → ll → llo → he → hello → ' hello'.
  assert.deepEqual(tok.encode('hello'), [1, id(' hello')]);
  assert.deepEqual(tok.encode('hello', { bos: false, eos: true }), [id(' hello'), 2]);
  // é is one piece; → (3 UTF-8 bytes) is not, so it falls back to <0xE2> <0x86> <0x92>.
  assert.deepEqual(tok.encode('é→'), [1, id(' '), id('é'), id('<0xE2>'), id('<0x86>'), id('<0x92>')]);
  assert.deepEqual(tok.encode(''), [1]);
  for (const text of [
    'hello world',
    'Hello, wörld → ok!',
    ' two  spaces',
    'tab\tand\nnewline',
    '日本語 😀',
  ]) {
    assert.equal(tok.decode(tok.encode(text)), text, JSON.stringify(text));
  }
  assert.throws(() => tok.encode('x'.repeat(70_000)), TokenizerInvalid);
  await assert.rejects(loadTokenizerBin(path, vocab + 1), TokenizerInvalid);
  await assert.rejects(loadTokenizerBin(path, vocab - 1), TokenizerInvalid);
  const bad = readFileSync(path);
  bad.writeInt32LE(100_000, 4 + 4); // the first token's length, far past max_token_length
  writeFileSync(join(dir, 'bad-tokenizer.bin'), bad);
  await assert.rejects(loadTokenizerBin(join(dir, 'bad-tokenizer.bin'), vocab), TokenizerInvalid);
});

async function assertMatchesReference(weights: LlamaWeights, what: string): Promise<number[]> {
  const c = weights.config;
  const model = new Llama(weights, await kernelOps(c, runtime, { target, cacheDir }));
  const { ops, hidden } = recordingReference(weights);
  const oracle = new Llama(weights, ops);
  const prompt = tokenizer.encode('hello world');
  const check = (got: Float32Array, want: Float32Array, step: string) => {
    const bound = logitsBound(weights.wcls, hidden(), c.vocab);
    const err = got.reduce((m, x, i) => Math.max(m, Math.abs(x - want[i]!)), 0);
    assert.ok(err <= bound, `${what}, ${step}: max |out − ref| ${err} > ${bound}`);
  };
  check(await model.prefill(prompt), await oracle.prefill(prompt), 'prefill');
  for (const t of [5, 300, 42]) check(await model.decode(t), await oracle.decode(t), `decode ${t}`);
  const a = new Llama(weights, await kernelOps(c, runtime, { target, cacheDir }));
  return a.generate(prompt, 8);
}

test('llama2.c and GGUF checkpoints of the same weights load equal and generate the same tokens', async () => {
  for (const unshared of [false, true]) {
    const weights = tinyWeights(vocab, 11, unshared);
    const bin = join(dir, `model-${unshared}.bin`);
    await writeLlama2c(bin, weights);
    await writeTokenizerBin(join(dir, 'tokenizer.bin'), tokenizer);
    const ggufPath = join(dir, `model-${unshared}.gguf`);
    await writeGguf(ggufPath, weights, tokenizer, 'f32');
    const fromBin = await loadCheckpoint(bin);
    const fromGguf = await loadCheckpoint(ggufPath);
    assert.equal(fromBin.format, 'llama2c');
    assert.equal(fromGguf.format, 'gguf');
    assert.equal(fromBin.weights.wcls === fromBin.weights.tokenEmbedding, !unshared);
    assert.equal(fromGguf.weights.wcls === fromGguf.weights.tokenEmbedding, !unshared);
    for (const key of ['tokenEmbedding', 'rmsFinal', 'wcls'] as const) {
      assert.deepEqual(fromGguf.weights[key], weights[key]);
      assert.deepEqual(fromBin.weights[key], weights[key]);
    }
    assert.deepEqual(fromGguf.weights.w2, weights.w2);
    assert.deepEqual(fromBin.weights.wk, weights.wk);
    const hex = (t: typeof fromBin.tokenizer) => t!.pieces.map((p) => Buffer.from(p).toString('hex'));
    assert.deepEqual(hex(fromGguf.tokenizer), hex(fromBin.tokenizer));
    // The tokenizer alone, as the tokenize op loads it: the same, without reading the weights (a
    // llama2.c file cut after its header still gives it).
    assert.deepEqual(hex(await loadCheckpointTokenizer(ggufPath)), hex(fromGguf.tokenizer));
    const headerOnly = join(dir, `header-${unshared}.bin`);
    writeFileSync(headerOnly, readFileSync(bin).subarray(0, 28));
    await assert.rejects(loadCheckpoint(headerOnly), CheckpointInvalid);
    assert.deepEqual(hex(await loadCheckpointTokenizer(headerOnly)), hex(fromBin.tokenizer));
    assert.deepEqual(fromGguf.tokenizer!.scores, fromBin.tokenizer!.scores);
    const tokensBin = await assertMatchesReference(fromBin.weights, `llama2.c unshared=${unshared}`);
    const tokensGguf = await assertMatchesReference(fromGguf.weights, `GGUF unshared=${unshared}`);
    assert.deepEqual(tokensGguf, tokensBin);
  }
});

test('f16 and q8_0 GGUF tensors dequantize within their rounding and run like the reference', async () => {
  const weights = tinyWeights(vocab, 5, true);
  for (const [type, rel] of [
    ['f16', 2 ** -11],
    ['q8_0', 1 / 127],
  ] as const) {
    const path = join(dir, `model-${type}.gguf`);
    await writeGguf(path, weights, tokenizer, type);
    const { weights: loaded } = await loadGguf(path);
    assert.deepEqual(loaded.rmsAtt, weights.rmsAtt, 'norms stay f32');
    // Per 32-value block for q8_0 (scale amax/127, so |error| ≤ amax/254 plus the f16 scale's rounding).
    const w = weights.wq[1]!;
    const got = loaded.wq[1]!;
    for (let b = 0; b < w.length / 32; b++) {
      const block = w.subarray(32 * b, 32 * b + 32);
      const amax = block.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      for (let j = 0; j < 32; j++) {
        // f16: half an ulp, relative for normals, 2^-25 absolute for subnormals.
        const limit = type === 'f16' ? Math.max(Math.abs(block[j]!) * rel, 2 ** -25) : amax * rel;
        assert.ok(Math.abs(got[32 * b + j]! - block[j]!) <= limit, `${type} element ${32 * b + j}`);
      }
    }
    await assertMatchesReference(loaded, `GGUF ${type}`);
  }
});

test('GGUF metadata and tensor tables agree with @huggingface/gguf', async () => {
  const path = join(dir, 'table.gguf');
  await writeGguf(path, tinyWeights(vocab, 3, true), tokenizer, 'q8_0');
  const { header } = await loadGguf(path);
  const theirs = await gguf(path, { allowLocalFile: true });
  assert.equal(header.version, theirs.metadata.version);
  assert.equal(header.metadata.size, Number(theirs.metadata.kv_count));
  for (const [key, value] of header.metadata) {
    assert.deepEqual(value, (theirs.metadata as Record<string, unknown>)[key], key);
  }
  assert.deepEqual(
    header.tensors.map((t) => [t.name, t.dims, t.type, t.offset]),
    theirs.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype, Number(t.offset)]),
  );
  assert.equal(
    header.dataOffset,
    theirs.tensorDataOffset === undefined ? header.dataOffset : Number(theirs.tensorDataOffset),
  );
});

test('damaged checkpoints are refused with typed errors, never a crash', async () => {
  const good = join(dir, 'good.gguf');
  await writeGguf(good, tinyWeights(vocab, 9), tokenizer, 'q8_0');
  const bytes = readFileSync(good);
  const bad = join(dir, 'bad.gguf');
  const refused = async (buf: Buffer, why: string) => {
    writeFileSync(bad, buf);
    await assert.rejects(loadCheckpoint(bad), CheckpointInvalid, why);
  };
  await refused(bytes.subarray(0, bytes.length - 100), 'truncated data');
  await refused(bytes.subarray(0, 200), 'truncated header');
  const version = Buffer.from(bytes);
  version.writeUInt32LE(7, 4);
  await refused(version, 'unknown version');
  const tensors = Buffer.from(bytes);
  tensors.writeBigUInt64LE(1n << 40n, 8);
  await refused(tensors, 'absurd tensor count');
  // Random corruption of the header: every outcome is a load or a typed error.
  let seed = 12345;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let i = 0; i < 150; i++) {
    const buf = Buffer.from(bytes);
    for (let k = 0; k < 1 + rand(4); k++) buf[rand(Math.min(buf.length, 40_000))] = rand(256);
    writeFileSync(bad, buf);
    try {
      await loadCheckpoint(bad);
    } catch (e) {
      assert.ok(e instanceof CheckpointInvalid || e instanceof TokenizerInvalid, String(e));
    }
  }
  const bin = join(dir, 'short.bin');
  const weights = tinyWeights(vocab, 2);
  await writeLlama2c(bin, weights);
  const full = readFileSync(bin);
  writeFileSync(bin, full.subarray(0, full.length - 4));
  await assert.rejects(loadCheckpoint(bin), CheckpointInvalid);
  const header = Buffer.from(full);
  header.writeInt32LE(1 << 30, 0);
  writeFileSync(bin, header);
  await assert.rejects(loadCheckpoint(bin), CheckpointInvalid);
});

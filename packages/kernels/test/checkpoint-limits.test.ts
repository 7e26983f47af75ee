// Checkpoints past the sizes a loader can hold: tensors over 2 GiB, files over 2 GiB, contexts whose
// KV cache would not fit, metadata arrays that would swell the heap, paths that are not files, and
// token ids that are not ids. Every one loads (in bounded memory) or is a typed error, never a crash.
// Big files are sparse (a truncate to a large size writes no blocks) and removed afterwards.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readGgufHeader, readGgufTensor } from '../src/checkpoint/gguf.js';
import { tokenizerFromMetadata } from '../src/checkpoint/gguf-llama.js';
import {
  CheckpointInvalid,
  DEFAULT_MAX_CONTEXT,
  type KernelError,
  KernelOptionsInvalid,
  Llama,
  type LlamaConfig,
  LlamaShard,
  loadCheckpoint,
  loadGguf,
  loadLlama2c,
  loadTokenizerBin,
  referenceOps,
  shardWeights,
  syntheticWeights,
  Tokenizer,
  TokenizerInvalid,
  writeGguf,
  writeLlama2c,
} from '../src/index.js';
import { LAYER_KEYS } from '../src/llama/weights.js';
import { tinyConfig, tinyTokenizer, tinyWeights } from './tiny-model.js';

const dir = mkdtempSync(join(tmpdir(), 'stitch-checkpoint-limits-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const tokenizer = tinyTokenizer();
const vocab = tokenizer.vocab;
const child = fileURLToPath(new URL('./fixtures/big-tensor.ts', import.meta.url));

/** `fn`'s error, which must be a `cls` whose message matches `pattern`. */
async function refusal(fn: () => unknown, cls: typeof KernelError, pattern: RegExp): Promise<KernelError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof cls, `expected a ${cls.name}, got ${String(e)}`);
    assert.match(e.message, pattern);
    return e;
  }
  return assert.fail(`expected a ${cls.name}`);
}

/** A GGUF header writer for hand-made metadata (the tensor table is empty). */
class Header {
  private readonly parts: Buffer[] = [];
  private count = 0;
  u32 = (v: number) => this.parts.push(Buffer.from(Uint32Array.of(v).buffer));
  u64 = (v: number) => this.parts.push(Buffer.from(BigUint64Array.of(BigInt(v)).buffer));
  str = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.parts.push(b);
  };
  /** A key and an array of `n` elements of `type`, each written by `element`. */
  array(key: string, type: number, n: number, element: (i: number) => Buffer | undefined) {
    this.count++;
    this.str(key);
    this.u32(9); // ARRAY
    this.u32(type);
    this.u64(n);
    for (let i = 0; i < n; i++) {
      const e = element(i);
      if (e) this.parts.push(e);
    }
  }
  /** A key whose array's elements are one block of bytes (fixed-size elements). */
  block(key: string, type: number, n: number, bytes: Buffer) {
    this.array(key, type, n, () => undefined);
    this.parts.push(bytes);
  }
  bytes(): Buffer {
    const head = Buffer.alloc(24);
    head.writeUInt32LE(0x46554747, 0);
    head.writeUInt32LE(3, 4);
    head.writeBigUInt64LE(0n, 8);
    head.writeBigUInt64LE(BigInt(this.count), 16);
    return Buffer.concat([head, ...this.parts]);
  }
}

const runChild = (mode: string) => {
  const path = join(dir, `big-tensor-${mode}.gguf`);
  try {
    const r = spawnSync(process.execPath, ['--import', '@stitch/typescript-loader', child, mode, path], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr.slice(-1500) };
  } finally {
    rmSync(path, { force: true });
  }
};

test('a tensor over 2 GiB is read in chunks: a short file is a typed error, not an abort (child process)', () => {
  const r = runChild('cut');
  assert.equal(r.signal, null, `the reader crashed: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { code?: string; message?: string; rssMiB: number };
  assert.equal(out.code, 'CHECKPOINT_INVALID', r.stdout);
  assert.match(out.message!, /tensor t .*cut short/);
  assert.ok(out.rssMiB < 512, `the refused read left ${out.rssMiB} MiB resident`);
});

test('a tensor with more elements than a Float32Array holds is refused before anything is allocated', () => {
  const r = runChild('huge');
  assert.equal(r.signal, null, `the reader crashed: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { code?: string; message?: string; rssMiB: number };
  assert.equal(out.code, 'CHECKPOINT_INVALID', r.stdout);
  assert.match(out.message!, /tensor t has 4294967328 elements/);
  assert.ok(out.rssMiB < 512, `the refusal left ${out.rssMiB} MiB resident`);
});

test('tensors read in small chunks decode as read whole (f32, f16, q8_0 blocks across chunk ends)', async () => {
  for (const type of ['f32', 'f16', 'q8_0'] as const) {
    const path = join(dir, `chunks-${type}.gguf`);
    await writeGguf(path, tinyWeights(vocab, 4, true), tokenizer, type);
    const file = await open(path, 'r');
    try {
      const header = await readGgufHeader(path, file);
      for (const t of header.tensors) {
        const whole = await readGgufTensor(path, file, header, t);
        for (const chunkBytes of [34, 70, 4099]) {
          const chunked = await readGgufTensor(path, file, header, t, { chunkBytes });
          assert.deepEqual(chunked, whole, `${type} ${t.name} in chunks of ${chunkBytes}`);
        }
      }
    } finally {
      await file.close();
    }
  }
});

/** The audit's config: every field within its limit, but 128 × 2^20 × 64 × 2 floats of KV cache. */
const longContext: LlamaConfig = {
  dim: 64,
  hiddenDim: 64,
  layers: 128,
  heads: 1,
  kvHeads: 1,
  vocab,
  seqLen: 2 ** 20,
};

test('a GGUF context_length is cut to maxContext (default 4096); a KV cache past the bound is refused', async () => {
  const path = join(dir, 'long-context.gguf');
  const weights = syntheticWeights(longContext, 3);
  await writeGguf(path, weights, tokenizer, 'f32');
  const loaded = await loadCheckpoint(path);
  assert.equal(DEFAULT_MAX_CONTEXT, 4096);
  assert.deepEqual(loaded.weights.config, {
    ...longContext,
    seqLen: DEFAULT_MAX_CONTEXT,
    theta: 10000,
    eps: Math.fround(1e-5),
  });
  const model = new Llama(loaded.weights, referenceOps(loaded.weights.config));
  assert.equal((await model.prefill([1, 300, 301])).length, vocab);
  assert.equal((await loadGguf(path, { maxContext: 1000 })).weights.config.seqLen, 1000);
  assert.equal((await loadCheckpoint(path, { maxContext: 100_000 })).weights.config.seqLen, 100_000);
  const e = await refusal(
    () => loadCheckpoint(path, { maxContext: 2 ** 20 }),
    CheckpointInvalid,
    /KV cache .*128 layers.*1048576 positions.*64 GiB.*maxContext/,
  );
  assert.equal(e.code, 'CHECKPOINT_INVALID');
  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    await refusal(() => loadCheckpoint(path, { maxContext: bad }), KernelOptionsInvalid, /maxContext/);
  }
  // Fixtures with short contexts load as they are.
  const tiny = join(dir, 'tiny.gguf');
  await writeGguf(tiny, tinyWeights(vocab, 1), tokenizer, 'f32');
  assert.equal((await loadGguf(tiny)).weights.config.seqLen, tinyConfig(vocab).seqLen);
});

test('a Llama or shard whose KV cache is past the bound is a typed error, not a RangeError', async () => {
  const weights = syntheticWeights(longContext, 3);
  const tooBig = /KV cache .*64 GiB/;
  assert.throws(() => new Llama(weights, referenceOps(longContext)), KernelOptionsInvalid);
  assert.throws(() => new Llama(weights, referenceOps(longContext)), tooBig);
  const sliced = await shardWeights(weights, 1, 0);
  const shard = () => new LlamaShard(sliced, referenceOps(longContext, 1)).newKv();
  assert.throws(shard, KernelOptionsInvalid);
  assert.throws(shard, tooBig);
  // Just below 2^32 floats a side (16 GiB each) used to be allocated; the bound refuses it too.
  const below = { ...longContext, layers: 64, seqLen: 2 ** 20 - 1 };
  assert.throws(() => new Llama(syntheticWeights(below, 1), referenceOps(below)), KernelOptionsInvalid);
});

test('a llama2.c file over 2 GiB loads tensor by tensor (sparse; its RoPE tables are skipped)', async () => {
  // Unshared classifier: it lies after 2 GiB of freq_cis, which stay a hole in the file.
  const config: LlamaConfig = {
    dim: 512,
    hiddenDim: 32,
    layers: 1,
    heads: 1,
    kvHeads: 1,
    vocab: 64,
    seqLen: 2 ** 20,
  };
  const w = syntheticWeights(config, 8);
  const wcls = syntheticWeights(config, 9).tokenEmbedding;
  const sub = join(dir, 'big-llama2c');
  mkdirSync(sub);
  const path = join(sub, 'model.bin');
  const fd = openSync(path, 'w');
  let at = 0;
  const put = (a: Int32Array | Float32Array) => {
    at += writeSync(fd, new Uint8Array(a.buffer, a.byteOffset, a.byteLength), 0, a.byteLength, at);
  };
  try {
    put(Int32Array.of(512, 32, 1, 1, 1, -64, 2 ** 20));
    put(w.tokenEmbedding);
    for (const key of LAYER_KEYS) put(w[key][0]!);
    put(w.rmsFinal);
    at += 4 * 2 ** 20 * 512; // freq_cis_real and _imag
    put(wcls);
  } finally {
    closeSync(fd);
  }
  assert.ok(at > 2 ** 31, `${at} bytes`);
  for (const loaded of [await loadLlama2c(path), (await loadCheckpoint(path)).weights]) {
    assert.deepEqual(loaded.config, { ...config, seqLen: DEFAULT_MAX_CONTEXT });
    assert.deepEqual(loaded.tokenEmbedding, w.tokenEmbedding);
    for (const key of LAYER_KEYS) assert.deepEqual(loaded[key], w[key], key);
    assert.deepEqual(loaded.rmsFinal, w.rmsFinal);
    assert.deepEqual(loaded.wcls, wcls);
  }
  rmSync(path);
  // Small llama2.c fixtures keep their context and round-trip as before.
  const small = join(sub, 'small.bin');
  await writeLlama2c(small, tinyWeights(vocab, 2, true));
  assert.deepEqual((await loadLlama2c(small)).config, tinyConfig(vocab));
});

test('a directory (or other non-file) as a checkpoint or tokenizer is a typed error naming the path', async () => {
  const notFile = /not a regular file/;
  await refusal(() => loadCheckpoint(dir), CheckpointInvalid, notFile);
  await refusal(() => loadLlama2c(dir), CheckpointInvalid, notFile);
  await refusal(() => loadGguf(dir), CheckpointInvalid, notFile);
  const e = await refusal(() => loadCheckpoint(dir), CheckpointInvalid, notFile);
  assert.ok(e.message.startsWith(dir), e.message);
  await refusal(() => loadTokenizerBin(dir, vocab), TokenizerInvalid, /EISDIR|not a regular file/);
  // A tokenizer.bin far longer than any vocabulary of this size needs is refused unread.
  const long = join(dir, 'long-tokenizer.bin');
  writeFileSync(long, Buffer.from(Int32Array.of(4).buffer));
  truncateSync(long, 2 ** 31 + 10);
  await refusal(() => loadTokenizerBin(long, vocab), TokenizerInvalid, /2147483658 bytes/);
  rmSync(long);
});

test('metadata arrays are bounded in total elements, and a real tokenizer’s arrays fit', async () => {
  const path = join(dir, 'metadata.gguf');
  const readHeader = async () => {
    const file = await open(path, 'r');
    try {
      return await readGgufHeader(path, file);
    } finally {
      await file.close();
    }
  };
  // Two BOOL arrays of 2^21 + 1 elements each: under the old per-array limit (2^24), over the total.
  const h = new Header();
  h.block('a', 7, 2 ** 21 + 1, Buffer.alloc(2 ** 21 + 1, 1));
  h.block('b', 7, 2 ** 21 + 1, Buffer.alloc(2 ** 21 + 1, 1));
  writeFileSync(path, h.bytes());
  await refusal(readHeader, CheckpointInvalid, /metadata arrays .*more than 4194304 elements.*key b\b/);
  // Gemma-sized: 262144 tokens, scores and types, and 300000 merges.
  const n = 262_144;
  const g = new Header();
  const token = (i: number) => {
    const b = Buffer.from(`tok${i}`);
    return Buffer.concat([Buffer.from(BigUint64Array.of(BigInt(b.length)).buffer), b]);
  };
  g.array('tokenizer.ggml.tokens', 8, n, token);
  g.block('tokenizer.ggml.scores', 6, n, Buffer.alloc(4 * n));
  g.block('tokenizer.ggml.token_type', 5, n, Buffer.alloc(4 * n));
  g.array('tokenizer.ggml.merges', 8, 300_000, token);
  writeFileSync(path, g.bytes());
  const header = await readHeader();
  assert.equal((header.metadata.get('tokenizer.ggml.tokens') as string[]).length, n);
  assert.equal((header.metadata.get('tokenizer.ggml.merges') as string[]).length, 300_000);
  rmSync(path);
});

test('bos and eos must be integer token ids inside the vocabulary', async () => {
  const pieces = tokenizer.pieces;
  const scores = tokenizer.scores;
  for (const [bos, eos] of [
    [1.5, 2],
    [1, 2.5],
    [1, true],
    [Number.NaN, 2],
    [1, vocab],
    [-1, 2],
  ] as const) {
    assert.throws(
      () => new Tokenizer(pieces, scores, bos as number, eos as number),
      (e: unknown) => e instanceof TokenizerInvalid && /bos .*eos .*integer/.test(e.message),
      `bos ${bos}, eos ${String(eos)}`,
    );
  }
  const path = join(dir, 'ids.gguf');
  await writeGguf(path, tinyWeights(vocab, 6), tokenizer, 'f32');
  const { header } = await loadGguf(path);
  const md = (key: string, value: unknown) =>
    new Map([...header.metadata, [`tokenizer.ggml.${key}`, value as number]]);
  for (const [key, value] of [
    ['bos_token_id', 1.5],
    ['eos_token_id', true],
    ['eos_token_id', 'x'],
    ['eos_token_id', BigInt(vocab)],
    ['bos_token_id', 2n ** 64n - 1n],
    ['bos_token_id', -3],
  ] as const) {
    await refusal(
      () => tokenizerFromMetadata(path, md(key, value), vocab),
      CheckpointInvalid,
      new RegExp(`tokenizer\\.ggml\\.${key} .* is not a token id`),
    );
  }
  const ok = tokenizerFromMetadata(path, md('eos_token_id', 5n), vocab);
  assert.equal(ok.eos, 5);
  // The same in a file: bos_token_id stored as the f32 1.5 instead of the u32 1.
  const bytes = readFileSync(path);
  const key = Buffer.from('tokenizer.ggml.bos_token_id');
  const at = bytes.indexOf(key) + key.length;
  assert.equal(bytes.readUInt32LE(at), 4); // U32
  bytes.writeUInt32LE(6, at); // F32
  bytes.writeFloatLE(1.5, at + 4);
  writeFileSync(path, bytes);
  await refusal(() => loadCheckpoint(path), CheckpointInvalid, /bos_token_id 1\.5 is not a token id/);
});

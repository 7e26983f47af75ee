// `stitch llm run` on small checkpoints the test writes in both formats.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { defaultCacheDir } from '@stitch/compiler';
import {
  fusedDecode,
  KernelRuntime,
  kernelOps,
  Llama,
  probeHost,
  writeGguf,
  writeLlama2c,
  writeTokenizerBin,
} from '../packages/kernels/src/index.js';
import { tinyTokenizer, tinyWeights } from '../packages/kernels/test/tiny-model.js';

const run = promisify(execFile);
const bin = new URL('../packages/cli/dist/bin.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'stitch-cli-llm-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, STITCH_KERNEL_CACHE: defaultCacheDir() };
const stitch = (...args: string[]) => run(process.execPath, [bin, 'llm', 'run', ...args], { env });

test('stitch llm run prints the greedy continuation of a llama2.c and a GGUF checkpoint alike', async () => {
  const tokenizer = tinyTokenizer();
  const weights = tinyWeights(tokenizer.vocab, 21);
  await writeLlama2c(join(dir, 'model.bin'), weights);
  await writeTokenizerBin(join(dir, 'tokenizer.bin'), tokenizer);
  await writeGguf(join(dir, 'model.gguf'), weights, tokenizer, 'f32');
  // The same kernels as the command: one per op for the prompt, the fused step for decoding.
  const runtime = new KernelRuntime();
  const options = { target: probeHost().x86Level ?? 'x86-64', cacheDir: env.STITCH_KERNEL_CACHE } as const;
  const model = new Llama(
    weights,
    await kernelOps(weights.config, runtime, options),
    await fusedDecode(weights, runtime, options),
  );
  const prompt = tokenizer.encode('hello');
  const tokens = await model.generate(prompt, 6);
  const bytes: Uint8Array[] = [];
  let prev = prompt.at(-1)!;
  for (const t of tokens) {
    if (t === tokenizer.bos || t === tokenizer.eos) break;
    bytes.push(tokenizer.piece(prev, t));
    prev = t;
  }
  const expected = `hello${new TextDecoder().decode(Buffer.concat(bytes))}`;
  const fromBin = await stitch('--checkpoint', join(dir, 'model.bin'), '--prompt', 'hello', '--steps', '6');
  assert.equal(fromBin.stdout, `${expected}\n`);
  assert.match(fromBin.stderr, /llama2c checkpoint: dim 64, 2 layers/);
  const fromGguf = await stitch('--checkpoint', join(dir, 'model.gguf'), '--prompt', 'hello', '--steps', '6');
  assert.equal(fromGguf.stdout, fromBin.stdout);
  const sampled = [
    '--checkpoint',
    join(dir, 'model.gguf'),
    '--steps',
    '8',
    '--temperature',
    '0.8',
    '--seed',
    '7',
  ];
  assert.equal((await stitch(...sampled)).stdout, (await stitch(...sampled)).stdout, 'a seed replays');
  const quantized = await stitch(
    '--checkpoint',
    join(dir, 'model.gguf'),
    '--prompt',
    'hello',
    '--steps',
    '6',
    '--quant',
    'q8_0',
  );
  assert.match(quantized.stderr, /q8_0 decode/);
  assert.ok(quantized.stdout.startsWith('hello'));
  await assert.rejects(stitch('--checkpoint', join(dir, 'missing.bin')), /CHECKPOINT_INVALID/);
  await assert.rejects(stitch('--checkpoint', join(dir, 'model.bin'), '--steps', '0'), /--steps/);
  // A shorter context than the checkpoint's: the KV cache keeps that many positions.
  const short = await stitch('--checkpoint', join(dir, 'model.gguf'), '--steps', '4', '--max-context', '8');
  assert.match(short.stderr, /context 8;/);
  await assert.rejects(
    stitch('--checkpoint', join(dir, 'model.gguf'), '--max-context', '0'),
    /--max-context/,
  );
});

// pnpm bench llm [--checkpoint FILE] [--steps N] [--threads T] [--quick]: Llama prefill and decode
// tokens/s through @stitch/kernels (prefill and decode fused: one kernel for the layer stack + the
// classifier; `unfused` is one kernel per op) against the memory-bus bound (OpenBLAS sgemv GB/s on 4096², best
// core type, same run ÷ weight bytes read per token). One JSON line. Without --checkpoint it writes a
// random llama2.c checkpoint of the stories15M shape and loads it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCacheDir, runnableTargets } from '@stitch/compiler';
import {
  fusedDecode,
  KernelRuntime,
  kernelOps,
  Llama,
  type LlamaConfig,
  type LlamaWeights,
  loadCheckpoint,
  probeHost,
  syntheticWeights,
  writeLlama2c,
} from '@stitch/kernels';
import { CORETYPE, openblas } from './lib/openblas.js';

const { values: args } = parseArgs({
  options: {
    checkpoint: { type: 'string' },
    steps: { type: 'string' },
    threads: { type: 'string', default: '1' },
    quick: { type: 'boolean', default: false },
  },
});
const threads = Number(args.threads);
const steps = Number(args.steps ?? (args.quick ? 16 : 128));
if (!(Number.isInteger(threads) && threads >= 1 && Number.isInteger(steps) && steps >= 1)) {
  throw new Error('--threads and --steps take positive integers');
}
const STORIES15M: LlamaConfig = {
  dim: 288,
  hiddenDim: 768,
  layers: 6,
  heads: 6,
  kvHeads: 6,
  vocab: 32000,
  seqLen: 256,
};

/** Floats of every tensor the checkpoint holds. */
function storedFloats(w: LlamaWeights): number {
  const layers = [w.rmsAtt, w.wq, w.wk, w.wv, w.wo, w.rmsFfn, w.w1, w.w2, w.w3]
    .flat()
    .reduce((n, t) => n + t.length, 0);
  const cls = w.wcls === w.tokenEmbedding ? 0 : w.wcls.length;
  return w.tokenEmbedding.length + layers + w.rmsFinal.length + cls;
}

// One thread: pinned to one core, as the OpenBLAS reference is.
if (threads === 1) {
  try {
    execFileSync('taskset', ['-cp', '0', String(process.pid)], { stdio: 'ignore' });
  } catch {}
}
const work = mkdtempSync(join(tmpdir(), 'stitch-bench-llm-'));
try {
  const level = probeHost().x86Level;
  const target = level ?? 'x86-64';
  let path = args.checkpoint;
  let synthetic = false;
  if (path === undefined) {
    path = join(work, 'stories15M-shape.bin');
    await writeLlama2c(path, syntheticWeights(STORIES15M, 1));
    synthetic = true;
  }
  const { weights, format } = await loadCheckpoint(path);
  const c = weights.config;

  const blas = openblas(work);
  const n = 4096;
  const coretypes = [...new Set([undefined, ...runnableTargets(level).map((t) => CORETYPE[t])])];
  const sgemvGbps = Math.max(
    ...coretypes.map((ct) => (4 * n * n) / blas('sgemv', n, ct, threads, args.quick ? 0.05 : 0.5) / 1e9),
  );

  const runtime = new KernelRuntime({ threads });
  // With --threads T the linear layers and the fused step's classifier split their rows T ways.
  const options = { target, cacheDir: defaultCacheDir(), threads };
  const ops = await kernelOps(c, runtime, options);
  const prompt = Array.from(
    { length: Math.min(args.quick ? 16 : 64, c.seqLen - steps) },
    (_, i) => (i * 7919) % c.vocab,
  );
  /**
   * Prefill: best of 3 after a warm-up. Decode: `steps` tokens, each timed; tokens/s from the median
   * step (robust to other processes on the machine; attention grows with the position).
   */
  async function measure(model: Llama) {
    let prefillS = Number.POSITIVE_INFINITY;
    let prefillCalls = 0;
    for (let r = 0; r < 4; r++) {
      const [t0, calls] = [performance.now(), runtime.calls];
      await model.prefill(prompt);
      prefillCalls = runtime.calls - calls;
      if (r > 0) prefillS = Math.min(prefillS, (performance.now() - t0) / 1000);
    }
    const calls0 = runtime.calls;
    const times: number[] = [];
    for (let i = 0; i < steps && model.position < c.seqLen; i++) {
      const t = performance.now();
      await model.decode((i * 31) % c.vocab);
      times.push((performance.now() - t) / 1000);
    }
    times.sort((a, b) => a - b);
    return {
      decoded: times.length,
      prefill: prompt.length / prefillS,
      prefillCalls,
      decode: 1 / times[times.length >> 1]!,
      calls: (runtime.calls - calls0) / times.length,
    };
  }
  const unfused = await measure(new Llama(weights, ops));
  const fusedF32 = await fusedDecode(weights, runtime, { ...options, prefill: true });
  const fused = await measure(new Llama(weights, ops, fusedF32));
  const perTokenBytes = fusedF32.bytesPerToken;
  // q8_0 decode where the shape allows it (rows of every matrix a multiple of 32).
  const q8 =
    c.dim % 32 === 0 && c.hiddenDim % 32 === 0
      ? await fusedDecode(weights, runtime, { ...options, quant: 'q8_0' }).then(async (d) => ({
          bytes: d.bytesPerToken,
          ...(await measure(new Llama(weights, ops, d))),
        }))
      : null;
  process.stdout.write(
    `${JSON.stringify({
      bench: 'llm',
      checkpoint: synthetic ? 'random (stories15M shape)' : format,
      model: {
        dim: c.dim,
        hidden: c.hiddenDim,
        layers: c.layers,
        heads: c.heads,
        kv_heads: c.kvHeads,
        vocab: c.vocab,
      },
      target,
      weights_bytes: 4 * storedFloats(weights),
      bytes_per_token: perTokenBytes,
      threads,
      prompt_tokens: prompt.length,
      decode_steps: fused.decoded,
      prefill_tokens_per_s: +fused.prefill.toFixed(1),
      prefill_calls_per_prompt: fused.prefillCalls,
      decode_tokens_per_s: +fused.decode.toFixed(1),
      sgemv_gbps: +sgemvGbps.toFixed(2),
      decode_roofline_tokens_per_s: +((sgemvGbps * 1e9) / perTokenBytes).toFixed(1),
      decode_vs_roofline: +((fused.decode * perTokenBytes) / (sgemvGbps * 1e9)).toFixed(3),
      calls_per_token: +fused.calls.toFixed(1),
      weight_gbps: +((fused.decode * perTokenBytes) / 1e9).toFixed(2),
      q8_0: q8 && {
        decode_tokens_per_s: +q8.decode.toFixed(1),
        bytes_per_token: q8.bytes,
        weight_gbps: +((q8.decode * q8.bytes) / 1e9).toFixed(2),
        bytes_vs_f32: +(q8.bytes / perTokenBytes).toFixed(3),
        tokens_vs_f32: +(q8.decode / fused.decode).toFixed(2),
        calls_per_token: +q8.calls.toFixed(1),
      },
      unfused: {
        prefill_tokens_per_s: +unfused.prefill.toFixed(1),
        prefill_calls_per_prompt: unfused.prefillCalls,
        prefill_vs_fused: +(unfused.prefill / fused.prefill).toFixed(2),
        decode_tokens_per_s: +unfused.decode.toFixed(1),
        calls_per_token: +unfused.calls.toFixed(1),
      },
    })}\n`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}

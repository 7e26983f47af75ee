import { type DeviceClass, type Dtype, devicePeaks, type PeakBasis, type Peaks } from './catalog.js';
import { CostError } from './errors.js';
import { allReduceMs } from './roofline.js';

/** Public architecture facts of the paper's models (models.json). */
export interface LlmModel {
  id: string;
  params: number;
  layers: number;
  dModel: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  ffnDim: number;
  vocab: number;
}

export const LLM_MODELS: readonly LlmModel[] = Object.freeze([
  {
    id: 'llama3-8b',
    params: 8.03e9,
    layers: 32,
    dModel: 4096,
    nHeads: 32,
    nKvHeads: 8,
    headDim: 128,
    ffnDim: 14336,
    vocab: 128256,
  },
  {
    id: 'llama3-70b',
    params: 70.6e9,
    layers: 80,
    dModel: 8192,
    nHeads: 64,
    nKvHeads: 8,
    headDim: 128,
    ffnDim: 28672,
    vocab: 128256,
  },
]);

export function findModel(id: string): LlmModel {
  const m = LLM_MODELS.find((x) => x.id === id);
  if (!m)
    throw new CostError(
      'MODEL_UNKNOWN',
      `model "${id}" is unknown; known: ${LLM_MODELS.map((x) => x.id).join(', ')}`,
    );
  return m;
}

export const bytesPerParam = (dtype: Dtype): number => (dtype === 'fp8' ? 1 : 2);

/** Paper formula per token: 2 (K and V) · layers · d_model · kv_heads/heads · bytes. */
export const kvBytesPerToken = (m: LlmModel, dtype: Dtype): number =>
  2 * m.layers * m.dModel * (m.nKvHeads / m.nHeads) * bytesPerParam(dtype);

export const weightBytes = (m: LlmModel, dtype: Dtype): number => m.params * bytesPerParam(dtype);

/** FLOPs of prefilling one sequence: 2·params per token plus causal attention (QKᵀ and AV, halved). */
export const prefillFlops = (m: LlmModel, tokens: number): number =>
  2 * m.params * tokens + 2 * m.layers * tokens * tokens * m.dModel;

/** FLOPs of one decode token against a context of `ctx` tokens. */
export const decodeFlopsPerToken = (m: LlmModel, ctx: number): number =>
  2 * m.params + 4 * m.layers * ctx * m.dModel;

export interface LlmSetting {
  model: LlmModel;
  dtype: Dtype;
  basis: PeakBasis;
  device: DeviceClass;
  /** @default 0.9 */
  memoryUtilization?: number;
  /** @default 5 */
  collectiveLatencyUs?: number;
}

export interface Parallelism {
  /** Tensor-parallel degree inside one scale-up domain. */
  tp: number;
  /** Pipeline stages, one per chassis; `pp` micro-batches are in flight. */
  pp: number;
}

export interface StepTime {
  ms: number;
  computeMs: number;
  memoryMs: number;
  syncMs: number;
}

function peaksOf(s: LlmSetting): Peaks {
  const p = devicePeaks(s.device, s.dtype, s.basis);
  if (!p) throw new CostError('COST_INPUT', `${s.device.id} has no ${s.dtype} arithmetic`);
  return p;
}

/**
 * Latency of one pass of a micro-batch through all stages. Each stage holds layers/pp and runs on
 * tp devices, so compute and bytes divide by tp·pp per stage and stages run one after the other.
 * Each layer all-reduces its activations twice (after attention and after the MLP).
 */
function passTime(s: LlmSetting, par: Parallelism, flops: number, bytes: number, actBytes: number): StepTime {
  const peaks = peaksOf(s);
  const computeMs = (flops / (peaks.flopsPerS * par.tp)) * 1e3;
  const memoryMs = (bytes / (peaks.bytesPerS * par.tp)) * 1e3;
  const stepUs = s.collectiveLatencyUs ?? 5;
  const ar = allReduceMs(actBytes, par.tp, s.device.link.scaleUpGBps, stepUs) * 2 * s.model.layers;
  const hops = (par.pp - 1) * ((actBytes / (s.device.link.scaleOutGBps * 1e9)) * 1e3 + stepUs / 1e3);
  const syncMs = ar + hops;
  return {
    ms: Math.max(computeMs, memoryMs) + syncMs + s.device.staticLatencyMs,
    computeMs,
    memoryMs,
    syncMs,
  };
}

/** Prefill of `batch` prompts of `inputLen` tokens (weights read once, KV written). */
export function prefillTime(s: LlmSetting, par: Parallelism, batch: number, inputLen: number): StepTime {
  const flops = batch * prefillFlops(s.model, inputLen);
  const bytes = weightBytes(s.model, s.dtype) + batch * inputLen * kvBytesPerToken(s.model, s.dtype);
  return passTime(s, par, flops, bytes, batch * inputLen * s.model.dModel * bytesPerParam(s.dtype));
}

/** One decode step for `batch` sequences whose context averages `avgCtx` tokens. */
export function decodeStepTime(s: LlmSetting, par: Parallelism, batch: number, avgCtx: number): StepTime {
  const flops = batch * decodeFlopsPerToken(s.model, avgCtx);
  const bytes = weightBytes(s.model, s.dtype) + batch * avgCtx * kvBytesPerToken(s.model, s.dtype);
  return passTime(s, par, flops, bytes, batch * s.model.dModel * bytesPerParam(s.dtype));
}

/** Largest number of sequences per micro-batch whose weights + KV fit in tp·pp devices (0: none). */
export function maxBatchInMemory(s: LlmSetting, par: Parallelism, tokensPerSeq: number): number {
  const usable = peaksOf(s).memoryBytes * (s.memoryUtilization ?? 0.9) * par.tp * par.pp;
  const free = usable - weightBytes(s.model, s.dtype);
  if (free <= 0) return 0;
  return Math.floor(free / (par.pp * tokensPerSeq * kvBytesPerToken(s.model, s.dtype)));
}

/** Tensor-parallel degrees that divide the KV heads and fit a scale-up domain; pipelines of 1, 2, 4 chassis. */
export function parallelismOptions(s: LlmSetting): Parallelism[] {
  const out: Parallelism[] = [];
  for (const pp of [1, 2, 4]) {
    for (let tp = 1; tp <= s.device.link.maxScaleUp; tp *= 2) {
      if (s.model.nKvHeads % tp === 0) out.push({ tp, pp });
    }
  }
  return out;
}

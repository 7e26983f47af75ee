import {
  findModel as findKnownModel,
  kvBytesPerToken,
  type ModelFacts,
  modelIds,
  weightBytes,
} from '@stitch/models';
import { type DeviceClass, type Dtype, devicePeaks, type PeakBasis, type Peaks } from './catalog.js';
import { CostError } from './errors.js';
import { allReduceMs } from './roofline.js';

/** Throws MODEL_UNKNOWN where the shared table returns undefined, so a CLI can print the known ids. */
export function findModel(id: string): ModelFacts {
  const m = findKnownModel(id);
  if (!m) throw new CostError('MODEL_UNKNOWN', `model "${id}" is unknown; known: ${modelIds().join(', ')}`);
  return m;
}

export const bytesPerParam = (dtype: Dtype): number => (dtype === 'fp8' ? 1 : 2);

/** FLOPs of prefilling one sequence: 2·params per token plus causal attention (QKᵀ and AV, halved). */
export const prefillFlops = (m: ModelFacts, tokens: number): number =>
  2 * m.params * tokens + 2 * m.layers * tokens * tokens * m.dModel;

/** FLOPs of one decode token against a context of `ctx` tokens. */
export const decodeFlopsPerToken = (m: ModelFacts, ctx: number): number =>
  2 * m.params + 4 * m.layers * ctx * m.dModel;

export interface LlmSetting {
  model: ModelFacts;
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
  const b = bytesPerParam(s.dtype);
  const flops = batch * prefillFlops(s.model, inputLen);
  const bytes = weightBytes(s.model, b) + batch * inputLen * kvBytesPerToken(s.model, b);
  return passTime(s, par, flops, bytes, batch * inputLen * s.model.dModel * b);
}

/** One decode step for `batch` sequences whose context averages `avgCtx` tokens. */
export function decodeStepTime(s: LlmSetting, par: Parallelism, batch: number, avgCtx: number): StepTime {
  const b = bytesPerParam(s.dtype);
  const flops = batch * decodeFlopsPerToken(s.model, avgCtx);
  const bytes = weightBytes(s.model, b) + batch * avgCtx * kvBytesPerToken(s.model, b);
  return passTime(s, par, flops, bytes, batch * s.model.dModel * b);
}

/** Largest number of sequences per micro-batch whose weights + KV fit in tp·pp devices (0: none). */
export function maxBatchInMemory(s: LlmSetting, par: Parallelism, tokensPerSeq: number): number {
  const usable = peaksOf(s).memoryBytes * (s.memoryUtilization ?? 0.9) * par.tp * par.pp;
  const b = bytesPerParam(s.dtype);
  const free = usable - weightBytes(s.model, b);
  if (free <= 0) return 0;
  return Math.floor(free / (par.pp * tokensPerSeq * kvBytesPerToken(s.model, b)));
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

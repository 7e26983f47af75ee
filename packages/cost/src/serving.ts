import { kvBytesPerToken } from '@stitch/models';
import {
  bytesPerParam,
  decodeStepTime,
  type LlmSetting,
  maxBatchInMemory,
  parallelismOptions,
  prefillTime,
  type StepTime,
} from './llm.js';

/** Largest batch the search tries; far above what memory allows for the study's models. */
const BATCH_CAP = 4096;

/** One sized prefill or decode instance. */
export interface InstanceChoice {
  tp: number;
  pp: number;
  devices: number;
  /** Sequences per micro-batch. */
  batch: number;
  /** Prefill: time to first token. Decode: time between tokens. */
  latencyMs: number;
  step: StepTime;
  /** Requests one instance completes per second (after the KV link caps it). */
  requestsPerS: number;
  usdPerHour: number;
  usdPerRequest: number;
  /** Time to move one request's KV cache over this instance's NICs. */
  kvTransferMs: number;
  limitedBy: 'sla' | 'memory' | 'kv-link' | 'batch-cap';
}

export interface SizeResult {
  choice: InstanceChoice | null;
  /** Why no configuration works; set when choice is null. */
  reason?: string;
}

export interface Shape {
  inputLen: number;
  outputLen: number;
}

/** Largest b in [1, max] with ok(b), given ok is monotone (true then false); 0 when ok(1) fails. */
function largestOk(max: number, ok: (b: number) => boolean): number {
  if (max < 1 || !ok(1)) return 0;
  let lo = 1;
  let hi = max;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ok(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function better(a: InstanceChoice | null, b: InstanceChoice): boolean {
  if (!a) return true;
  if (Math.abs(a.usdPerRequest - b.usdPerRequest) > 1e-12 * a.usdPerRequest)
    return b.usdPerRequest < a.usdPerRequest;
  return b.devices < a.devices;
}

interface Sized {
  batch: number;
  /** Largest batch memory holds (capped at BATCH_CAP). */
  mem: number;
  step: StepTime;
  /** Requests per second the devices compute at this batch. */
  computeRate: number;
  /** Requests per second the NICs move the KV of. */
  linkRate: number;
}

/** An instance of `par` at a sized batch: its rate is capped by the KV link, its price by its devices. */
function instance(
  par: { tp: number; pp: number },
  z: Sized,
  hourlyUsd: number,
  kvTransferMs: number,
): InstanceChoice {
  const devices = par.tp * par.pp;
  const requestsPerS = Math.min(z.computeRate, z.linkRate);
  let limitedBy: InstanceChoice['limitedBy'] = z.batch === z.mem ? 'memory' : 'sla';
  if (z.linkRate < z.computeRate) limitedBy = 'kv-link';
  else if (z.batch === BATCH_CAP) limitedBy = 'batch-cap';
  const usdPerHour = devices * hourlyUsd;
  return {
    ...par,
    devices,
    batch: z.batch,
    latencyMs: z.step.ms,
    step: z.step,
    requestsPerS,
    usdPerHour,
    usdPerRequest: usdPerHour / 3600 / requestsPerS,
    kvTransferMs,
    limitedBy,
  };
}

/**
 * Cheapest prefill instance per request. With a TTFT bound the batch is the largest whose prefill
 * and KV egress (paper: KV / (TTFT · prefill devices)) both fit in it; offline it is as large as
 * memory allows and the egress link caps the request rate.
 */
export function sizePrefill(s: LlmSetting, shape: Shape, hourlyUsd: number, ttftMs?: number): SizeResult {
  const kvReq = shape.inputLen * kvBytesPerToken(s.model, bytesPerParam(s.dtype));
  let best: InstanceChoice | null = null;
  for (const par of parallelismOptions(s)) {
    const devices = par.tp * par.pp;
    const nicBps = devices * s.device.link.scaleOutGBps * 1e9;
    const mem = Math.min(BATCH_CAP, maxBatchInMemory(s, par, shape.inputLen));
    const egressMs = (b: number) => ((b * kvReq) / nicBps) * 1e3;
    const fits = (b: number) =>
      ttftMs === undefined || (prefillTime(s, par, b, shape.inputLen).ms <= ttftMs && egressMs(b) <= ttftMs);
    const batch = largestOk(mem, fits);
    if (batch === 0) continue;
    const step = prefillTime(s, par, batch, shape.inputLen);
    const computeRate = (par.pp * batch) / (step.ms / 1e3);
    const cand = instance(
      par,
      { batch, mem, step, computeRate, linkRate: nicBps / kvReq },
      hourlyUsd,
      egressMs(1),
    );
    if (better(best, cand)) best = cand;
  }
  if (best) return { choice: best };
  const why = ttftMs === undefined ? 'the weights do not fit' : `no batch meets TTFT ≤ ${ttftMs} ms`;
  return { choice: null, reason: `prefill on ${s.device.id}: ${why} with up to 8×4 devices` };
}

/**
 * Cheapest decode instance per request. Time per step is taken at the mean context
 * (input + output/2); memory holds every sequence at its full length. With a TBT bound one
 * request's KV must also arrive within one TBT (paper: KV / (TBT · decode devices)).
 */
export function sizeDecode(s: LlmSetting, shape: Shape, hourlyUsd: number, tbtMs?: number): SizeResult {
  const kvReq = shape.inputLen * kvBytesPerToken(s.model, bytesPerParam(s.dtype));
  const avgCtx = shape.inputLen + shape.outputLen / 2;
  let best: InstanceChoice | null = null;
  let reason = 'the weights do not fit';
  for (const par of parallelismOptions(s)) {
    const devices = par.tp * par.pp;
    const nicBps = devices * s.device.link.scaleOutGBps * 1e9;
    const ingressMs = (kvReq / nicBps) * 1e3;
    if (tbtMs !== undefined && ingressMs > tbtMs) {
      reason = `one request's KV takes ${ingressMs.toFixed(1)} ms > TBT over ${devices} NICs`;
      continue;
    }
    const mem = Math.min(BATCH_CAP, maxBatchInMemory(s, par, shape.inputLen + shape.outputLen));
    const fits = (b: number) => tbtMs === undefined || decodeStepTime(s, par, b, avgCtx).ms <= tbtMs;
    const batch = largestOk(mem, fits);
    if (batch === 0) {
      if (mem > 0) reason = `no batch meets TBT ≤ ${tbtMs} ms`;
      continue;
    }
    const step = decodeStepTime(s, par, batch, avgCtx);
    const computeRate = (par.pp * batch) / ((shape.outputLen * step.ms) / 1e3);
    const cand = instance(
      par,
      { batch, mem, step, computeRate, linkRate: nicBps / kvReq },
      hourlyUsd,
      ingressMs,
    );
    if (better(best, cand)) best = cand;
  }
  return best ? { choice: best } : { choice: null, reason: `decode on ${s.device.id}: ${reason}` };
}

import { type DeviceClass, type Dtype, devicePeaks, type PeakBasis } from './catalog.js';

/** Same shape as `OpDemand` of @stitch/ir (kept structural so cost does not depend on ir). */
export interface Demand {
  flops: number;
  bytesRead: number;
  bytesWritten: number;
  memoryBytes: number;
  networkBytes: number;
}

export interface EstimateOptions {
  dtype?: Dtype;
  basis?: PeakBasis;
  /** Share of device memory usable for weights and KV (the rest: activations, runtime). @default 0.9 */
  memoryUtilization?: number;
  /** Latency of one collective step over the scale-up link, microseconds. @default 5 */
  collectiveLatencyUs?: number;
  /** Extra fixed latency of this op (tool round trip, network call), milliseconds. @default 0 */
  extraLatencyMs?: number;
}

export interface OpEstimate {
  feasible: boolean;
  /** Why the op cannot run on this device (memory, dtype); set when feasible is false. */
  reason?: string;
  ms: number;
  computeMs: number;
  memoryMs: number;
  staticMs: number;
  syncMs: number;
  /** Devices one replica occupies: tensor-parallel degree × pipeline stages. */
  devices: number;
  tensorParallel: number;
  pipelineStages: number;
  bound: 'compute' | 'memory' | 'latency';
}

/** Ring all-reduce of `bytes` over `p` devices: 2(p−1)/p of the data crosses each link, 2(p−1) steps. */
export function allReduceMs(bytes: number, p: number, linkGBps: number, stepLatencyUs: number): number {
  if (p <= 1) return 0;
  return ((2 * (p - 1)) / p) * (bytes / (linkGBps * 1e9)) * 1e3 + (2 * (p - 1) * stepLatencyUs) / 1e3;
}

const MAX_PIPELINE_STAGES = 8;

/**
 * Roofline time of one op on one device class: max(FLOPs/peak, bytes/BW) + static latency + sync.
 * Ops whose resident memory exceeds one device are split tensor-parallel inside a scale-up domain
 * (compute and bytes divide, the output is all-reduced) and pipelined across domains when one
 * domain is not enough (stages run in sequence, so latency does not shrink with stages).
 */
export function estimateOp(demand: Demand, device: DeviceClass, o: EstimateOptions = {}): OpEstimate {
  const dtype = o.dtype ?? 'fp16';
  const peaks = devicePeaks(device, dtype, o.basis ?? 'paper');
  const base = { ms: Infinity, computeMs: 0, memoryMs: 0, staticMs: 0, syncMs: 0, devices: 0 };
  const none = { ...base, tensorParallel: 0, pipelineStages: 0, bound: 'compute' as const };
  if (!peaks) return { ...none, feasible: false, reason: `${device.id} has no ${dtype} arithmetic` };
  const usable = peaks.memoryBytes * (o.memoryUtilization ?? 0.9);
  const need = Math.max(1, Math.ceil(demand.memoryBytes / usable));
  const domain = device.link.maxScaleUp;
  const stages = Math.ceil(need / domain);
  if (stages > MAX_PIPELINE_STAGES) {
    const reason = `needs ${need} ${device.id} devices for ${(demand.memoryBytes / 1e9).toFixed(1)} GB`;
    return { ...none, feasible: false, reason };
  }
  const tp = stages > 1 ? domain : powerOfTwoAtLeast(need, domain);
  const parallel = tp * stages;
  const computeMs = (demand.flops / (peaks.flopsPerS * parallel)) * 1e3 * stages;
  const memoryMs = ((demand.bytesRead + demand.bytesWritten) / (peaks.bytesPerS * parallel)) * 1e3 * stages;
  const stepUs = o.collectiveLatencyUs ?? 5;
  const hopMs =
    (stages - 1) * ((demand.bytesWritten / (device.link.scaleOutGBps * 1e9)) * 1e3 + stepUs / 1e3);
  const syncMs = allReduceMs(demand.bytesWritten, tp, device.link.scaleUpGBps, stepUs) * stages + hopMs;
  const staticMs = device.staticLatencyMs + (o.extraLatencyMs ?? 0);
  const roof = Math.max(computeMs, memoryMs);
  const bound = staticMs > roof ? 'latency' : computeMs >= memoryMs ? 'compute' : 'memory';
  return {
    feasible: true,
    ms: roof + staticMs + syncMs,
    computeMs,
    memoryMs,
    staticMs,
    syncMs,
    devices: parallel,
    tensorParallel: tp,
    pipelineStages: stages,
    bound,
  };
}

/** Tensor-parallel degrees are powers of two so heads divide evenly. */
function powerOfTwoAtLeast(n: number, cap: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return Math.min(p, cap);
}

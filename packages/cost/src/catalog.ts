import { CostError, CostErrorCode } from './errors.js';

/** Exactly the values of Table 5 of arXiv 2507.19635 (reseller averages, June 2025). */
export interface PaperFacts {
  priceUsd: number;
  memoryGb: number;
  memBwGbps: number;
  /** The paper's "FP16" peak; for H100 this is NVIDIA's sparse figure, for A40 not the tensor-core peak. */
  fp16Tflops: number;
  opCostUsdPerHour: number;
}

/** Vendor facts outside Table 5: dense peaks, power and links. */
export interface SpecFacts {
  priceUsd: number;
  memoryGb: number;
  memBwGbps: number;
  /** Dense (no sparsity) FP16/BF16 peak. */
  denseFp16Tflops: number;
  /** Dense FP8 peak, or null when the device has no FP8 arithmetic. */
  fp8Tflops: number | null;
  opCostUsdPerHour: number;
  tdpW: number;
}

/** Interconnect of one device. GB/s are one direction. */
export interface LinkFacts {
  /** Scale-up link (NVLink, Infinity Fabric, Gaudi RoCE scale-up ports, PCIe) per device. */
  scaleUpGBps: number;
  /** Scale-out NIC per device; the paper uses 200-400 Gbps RoCE, we take 400 Gbps = 50 GB/s. */
  scaleOutGBps: number;
  /** Devices one scale-up domain (chassis) holds; tensor parallelism stays inside it. */
  maxScaleUp: number;
  /**
   * $ per GB this device sends to another class (network egress, e.g. across clouds or regions);
   * absent = 0, as inside one datacenter.
   */
  egressUsdPerGB?: number;
}

/** Live numbers from calibration; when present they replace spec peaks for every dtype. */
export interface MeasuredPeaks {
  gflops: number;
  gbps: number;
}

export interface DeviceClass {
  id: string;
  vendor: string;
  kind: 'accelerator' | 'cpu';
  /** Table 5 facts; absent for devices the paper does not list (cpu, user devices). */
  paper?: PaperFacts;
  spec: SpecFacts;
  link: LinkFacts;
  /** Fixed per-op overhead (kernel launch, dispatch), milliseconds. */
  staticLatencyMs: number;
  measured?: MeasuredPeaks;
  /**
   * Achieved ÷ peak (0, 1] that spec and Table 5 peaks are multiplied by (compute and bandwidth
   * alike); absent means 1, the roofline at full peak. Measured peaks are achieved already and
   * ignore it.
   */
  efficiency?: number;
}

export type Catalog = readonly DeviceClass[];

const NIC_400G = 50;
const gpuLink = (scaleUpGBps: number): LinkFacts => ({ scaleUpGBps, scaleOutGBps: NIC_400G, maxScaleUp: 8 });

function paperDevice(
  id: string,
  vendor: string,
  paper: PaperFacts,
  dense: { denseFp16Tflops: number; fp8Tflops: number | null; tdpW: number },
  scaleUpGBps: number,
): DeviceClass {
  return {
    id,
    vendor,
    kind: 'accelerator',
    paper,
    spec: {
      priceUsd: paper.priceUsd,
      memoryGb: paper.memoryGb,
      memBwGbps: paper.memBwGbps,
      opCostUsdPerHour: paper.opCostUsdPerHour,
      ...dense,
    },
    link: gpuLink(scaleUpGBps),
    staticLatencyMs: 0.01,
  };
}

// Scale-up GB/s (one direction, per device) are vendor figures the paper does not give:
// A40 has no 8-way NVLink so PCIe 4.0 x16; A100 NVLink3 600 GB/s bidirectional; H100 NVLink4 900;
// B200 NVLink5 1800; MI300X Infinity Fabric 896; Gaudi 3 21 of its 24 200 GbE ports for scale-up.
/** The six devices of the paper's TCO study plus a nominal `cpu` host class. */
export const PAPER_CATALOG: Catalog = Object.freeze([
  paperDevice(
    'a40',
    'NVIDIA',
    { priceUsd: 3000, memoryGb: 48, memBwGbps: 696, fp16Tflops: 75, opCostUsdPerHour: 0.15 },
    { denseFp16Tflops: 149.7, fp8Tflops: null, tdpW: 300 },
    32,
  ),
  paperDevice(
    'a100-80g',
    'NVIDIA',
    { priceUsd: 8000, memoryGb: 80, memBwGbps: 2039, fp16Tflops: 322, opCostUsdPerHour: 0.25 },
    { denseFp16Tflops: 312, fp8Tflops: null, tdpW: 400 },
    300,
  ),
  paperDevice(
    'gaudi3',
    'Intel',
    { priceUsd: 12500, memoryGb: 128, memBwGbps: 3700, fp16Tflops: 1678, opCostUsdPerHour: 0.49 },
    { denseFp16Tflops: 1835, fp8Tflops: 1835, tdpW: 900 },
    262.5,
  ),
  paperDevice(
    'mi300x',
    'AMD',
    { priceUsd: 20000, memoryGb: 192, memBwGbps: 5300, fp16Tflops: 1307, opCostUsdPerHour: 0.52 },
    { denseFp16Tflops: 1307, fp8Tflops: 2615, tdpW: 750 },
    448,
  ),
  paperDevice(
    'h100',
    'NVIDIA',
    { priceUsd: 25000, memoryGb: 80, memBwGbps: 3350, fp16Tflops: 1979, opCostUsdPerHour: 0.6 },
    { denseFp16Tflops: 989, fp8Tflops: 1979, tdpW: 700 },
    450,
  ),
  paperDevice(
    'b200',
    'NVIDIA',
    { priceUsd: 40000, memoryGb: 192, memBwGbps: 8000, fp16Tflops: 2250, opCostUsdPerHour: 0.83 },
    { denseFp16Tflops: 2250, fp8Tflops: 4500, tdpW: 1000 },
    900,
  ),
  {
    // Nominal dual-socket server; calibration (applyMeasuredPeaks) replaces its peaks on a real host.
    id: 'cpu',
    vendor: 'generic',
    kind: 'cpu',
    spec: {
      priceUsd: 10000,
      memoryGb: 512,
      memBwGbps: 300,
      denseFp16Tflops: 4,
      fp8Tflops: null,
      opCostUsdPerHour: 0.2,
      tdpW: 500,
    },
    link: { scaleUpGBps: 50, scaleOutGBps: NIC_400G, maxScaleUp: 1 },
    staticLatencyMs: 0.005,
  },
]);

/** Ids of the paper's six accelerators, in the order of Table 5. */
export const PAPER_DEVICE_IDS = ['a40', 'a100-80g', 'gaudi3', 'mi300x', 'h100', 'b200'] as const;

export function findDevice(catalog: Catalog, id: string): DeviceClass {
  const d = catalog.find((x) => x.id === id);
  if (!d) {
    throw new CostError(
      CostErrorCode.DeviceUnknown,
      `device class "${id}" is not in the catalog; known: ${catalog.map((x) => x.id).join(', ')}`,
    );
  }
  return d;
}

export type Dtype = 'fp16' | 'fp8';
/** `paper`: Table 5 peaks (the default of the TCO study); `dense`: vendor dense peaks. */
export type PeakBasis = 'paper' | 'dense';

export interface Peaks {
  flopsPerS: number;
  bytesPerS: number;
  memoryBytes: number;
  source: 'paper' | 'dense' | 'measured';
}

/**
 * Peak compute and bandwidth the cost model uses, or null when the device cannot run `dtype`.
 * FP8 always uses the vendor dense FP8 peak: Table 5 gives no FP8 column, and doubling its FP16
 * figure would double-count H100's (already sparse) number and overstate Gaudi 3, whose FP8 and
 * BF16 matrix peaks are equal.
 */
export function devicePeaks(
  device: DeviceClass,
  dtype: Dtype = 'fp16',
  basis: PeakBasis = 'paper',
): Peaks | null {
  const usePaper = basis === 'paper' && device.paper !== undefined;
  const memoryBytes = (usePaper ? device.paper!.memoryGb : device.spec.memoryGb) * 1e9;
  if (device.measured) {
    const { gflops, gbps } = device.measured;
    return { flopsPerS: gflops * 1e9, bytesPerS: gbps * 1e9, memoryBytes, source: 'measured' };
  }
  const eff = device.efficiency ?? 1;
  const bytesPerS = (usePaper ? device.paper!.memBwGbps : device.spec.memBwGbps) * 1e9 * eff;
  let tflops: number | null;
  if (dtype === 'fp8') tflops = device.spec.fp8Tflops;
  else tflops = usePaper ? device.paper!.fp16Tflops : device.spec.denseFp16Tflops;
  if (tflops === null) return null;
  return { flopsPerS: tflops * 1e12 * eff, bytesPerS, memoryBytes, source: usePaper ? 'paper' : 'dense' };
}

/** Returns a new catalog in which `deviceId` uses measured peaks (calibration results). */
export function applyMeasuredPeaks(
  catalog: Catalog,
  m: { deviceId: string; gflops: number; gbps: number },
): Catalog {
  findDevice(catalog, m.deviceId);
  for (const [k, v] of [
    ['gflops', m.gflops],
    ['gbps', m.gbps],
  ] as const) {
    if (!Number.isFinite(v) || v <= 0) {
      throw new CostError(
        CostErrorCode.Input,
        `measured ${k} for "${m.deviceId}" must be a positive number, got ${v}`,
      );
    }
  }
  return catalog.map((d) =>
    d.id === m.deviceId ? { ...d, measured: { gflops: m.gflops, gbps: m.gbps } } : d,
  );
}

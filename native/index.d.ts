/** Raw shape returned by the addon's probe(); @stitch/kernels wraps it with names and docs. */
export interface RawProbe {
  arch: string;
  cpuModel: string;
  logicalCores: number;
  totalMemoryBytes: number;
  features: {
    sse42: boolean;
    avx2: boolean;
    fma: boolean;
    avx512f: boolean;
    avx512bw: boolean;
    avx512vl: boolean;
    avx512bf16: boolean;
    avx512vnni: boolean;
    amxTile: boolean;
    amxBf16: boolean;
    amxInt8: boolean;
  };
  cuda: { driverLoaded: boolean; deviceCount: number; error: string | null };
}
export function probe(): RawProbe;

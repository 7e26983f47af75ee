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

/** Result of loadKernel: a handle to the entry point, or why the artifact was refused. */
export type RawLoadResult =
  | { ok: true; handle: number }
  | { ok: false; code: 'KERNEL_INTEGRITY' | 'KERNEL_LOAD' | 'KERNEL_ARGS'; message: string };
/** Reads the file, checks its SHA-256, dlopens a private copy of the checked bytes, resolves `symbol`. */
export function loadKernel(path: string, sha256: string, symbol: string): RawLoadResult;
/** One memref argument: contiguous row-major data and its sizes. */
export interface RawKernelArg {
  /** Backed by an ArrayBuffer or a SharedArrayBuffer; the kernel reads/writes it in place. */
  data: Float32Array | Int32Array | Int8Array;
  shape: number[];
  /** First element the kernel sees (a row slice); without it the shape must cover the whole array. */
  offset?: number;
}
/**
 * Calls the entry point on a libuv pool thread. The arrays must not be detached or resized until the
 * promise settles: the addon keeps the views alive, not their memory.
 */
export function runKernel(handle: number, args: RawKernelArg[]): Promise<void>;
/** One call of a loaded entry point, as one of several run at once. */
export interface RawKernelPart {
  handle: number;
  args: RawKernelArg[];
}
/**
 * Runs the parts at once (one on a libuv pool thread, the others on the addon's own threads) and
 * resolves when all have finished: a kernel split into row slices. The arrays must not be detached
 * or resized until the promise settles, as for runKernel.
 */
export function runKernelParts(parts: RawKernelPart[]): Promise<void>;
/**
 * Pins glibc's mmap threshold at `bytes` (0 to 32 MiB) with mallopt: blocks of that size or more are
 * mapped on their own and unmapped when freed. glibc otherwise raises the threshold to the size of
 * each mapped block freed, so that afterwards blocks up to that size come from a heap it rarely
 * returns to the OS. False where malloc is not glibc's (nothing changed).
 */
export function setMmapThreshold(bytes: number): boolean;

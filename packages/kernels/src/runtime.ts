import type { ArgSpec, KernelManifest, KernelSpec } from '@stitch/compiler';
import type { RawKernelArg, RawKernelPart, RawLoadResult } from '@stitch/native';
import {
  KernelErrorCode,
  KernelIntegrityError,
  KernelLoadError,
  KernelOptionsInvalid,
  KernelShapeMismatch,
} from './errors.js';
import { loadNative } from './probe.js';

type Native = {
  loadKernel(path: string, sha256: string, symbol: string): RawLoadResult;
  runKernel(handle: number, args: RawKernelArg[]): Promise<void>;
  runKernelParts(parts: RawKernelPart[]): Promise<void>;
};

export interface KernelRuntimeOptions {
  /**
   * This node's thread budget: how many threads its kernels may use at once. A plain kernel run
   * takes one (a libuv pool thread, so UV_THREADPOOL_SIZE, 4 by default, also caps concurrent
   * runs); a kernel split across T threads (`threadedKernel`) takes T.
   * @default 1
   */
  threads?: number;
}

/** Runs compiled kernels off the event loop under a per-node thread budget. */
export class KernelRuntime {
  readonly threads: number;
  /** Native kernel calls made so far (benchmarks report calls per token from it). */
  calls = 0;
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(options: KernelRuntimeOptions = {}) {
    const threads = options.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) {
      throw new KernelOptionsInvalid(
        `KernelRuntime: options.threads must be a positive integer, got ${String(threads)}`,
      );
    }
    this.threads = threads;
  }

  /** Verifies the shared object against `manifest.soSha256` (natively, on the bytes it loads) and loads it. */
  load(artifact: { manifest: KernelManifest; soPath: string }): Kernel {
    const entry = artifact.manifest.entryPoints[0]!;
    const result = (loadNative() as unknown as Native).loadKernel(
      artifact.soPath,
      artifact.manifest.soSha256,
      entry.symbol,
    );
    if (!result.ok) {
      if (result.code === KernelErrorCode.Integrity) throw new KernelIntegrityError(result.message);
      throw new KernelLoadError(result.message);
    }
    return new Kernel(this, result.handle, entry.symbol, entry.args, artifact.manifest);
  }

  /** @internal Runs the parts at once (row slices of one kernel), holding one thread per part. */
  async schedule(parts: RawKernelPart[]): Promise<void> {
    const need = parts.length;
    while (this.active + need > this.threads) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.active += need;
    this.calls++;
    try {
      const native = loadNative() as unknown as Native;
      await (need === 1 ? native.runKernel(parts[0]!.handle, parts[0]!.args) : native.runKernelParts(parts));
    } finally {
      this.active -= need;
      // Wake every waiter: each re-checks whether its own width now fits.
      for (const wake of this.waiting.splice(0)) wake();
    }
  }
}

export type KernelArray = Float32Array | Int32Array | Int8Array;
const ARRAY_TYPES = { f32: Float32Array, i32: Int32Array, i8: Int8Array } as const;

/** A loaded entry point. `run` checks every array against the manifest before any native call. */
export class Kernel {
  constructor(
    private readonly runtime: KernelRuntime,
    /** @internal */
    readonly handle: number,
    readonly symbol: string,
    readonly args: ArgSpec[],
    readonly manifest: KernelManifest,
  ) {}

  /**
   * Runs with arrays in manifest order (inputs, then outputs); resolves when outputs are written.
   * The arrays must not be detached or resized until then: the kernel works in their memory.
   */
  run(arrays: KernelArray[]): Promise<void> {
    const args = checkArrays(this.symbol, this.args, this.manifest.spec, arrays);
    return this.runtime.schedule([{ handle: this.handle, args }]);
  }
}

/**
 * Checks arrays against a spec's arguments (count, dtype, every shape; ids and positions in
 * range) and returns them with their shapes. Throws `KernelShapeMismatch`.
 */
export function checkArrays(
  symbol: string,
  args: ArgSpec[],
  spec: KernelSpec,
  arrays: KernelArray[],
): RawKernelArg[] {
  if (arrays.length !== args.length) {
    throw new KernelShapeMismatch(symbol, `expected ${args.length} arrays, got ${arrays.length}`);
  }
  // Every dynamic size of a spec is one symbol (rows, seq, len, count), so all must agree.
  let dynamic: number | null = null;
  const raw = args.map((arg, i) => {
    const data = arrays[i]!;
    const want = ARRAY_TYPES[arg.dtype];
    if (!(data instanceof want)) {
      throw new KernelShapeMismatch(symbol, `argument ${arg.name} must be a ${want.name}`);
    }
    const fixed = arg.shape.reduce<number>((p, d) => p * (d ?? 1), 1);
    const shape = arg.shape.map((d) => d ?? data.length / fixed);
    const inferred = shape[arg.shape.indexOf(null)];
    if (inferred !== undefined) {
      if (!Number.isInteger(inferred) || inferred < 1) {
        throw new KernelShapeMismatch(
          symbol,
          `argument ${arg.name} has ${data.length} elements, not a multiple of ${fixed}`,
        );
      }
      if (dynamic !== null && dynamic !== inferred) {
        throw new KernelShapeMismatch(
          symbol,
          `argument ${arg.name} has ${inferred} rows, others have ${dynamic}`,
        );
      }
      dynamic = inferred;
    } else if (data.length !== fixed) {
      throw new KernelShapeMismatch(
        symbol,
        `argument ${arg.name} must have ${fixed} elements, got ${data.length}`,
      );
    }
    return { data, shape };
  });
  checkIndices(symbol, args, spec, arrays);
  return raw;
}

function checkIndices(symbol: string, args: ArgSpec[], spec: KernelSpec, arrays: KernelArray[]): void {
  // The fused layer stack writes the KV cache rows from `pos` on: out of range would write out of bounds.
  if (spec.op === 'nn.llama_decode' || spec.op === 'nn.llama_prefill') {
    const pos = arrays[args.findIndex((a) => a.name === 'pos')]![0]!;
    const rows = arrays[0]!.length / spec.dim;
    if (!(pos >= 0 && pos + rows <= spec.seqLen)) {
      throw new KernelShapeMismatch(
        symbol,
        `positions ${pos}..${pos + rows - 1} are outside the context [0, ${spec.seqLen})`,
      );
    }
    return;
  }
  if (spec.op !== 'nn.embedding') return;
  const ids = arrays[1] as Int32Array;
  for (const id of ids) {
    if (id < 0 || id >= spec.vocab) {
      throw new KernelShapeMismatch(symbol, `token id ${id} is outside the vocabulary [0, ${spec.vocab})`);
    }
  }
}

import type { ArgSpec, KernelManifest } from '@stitch/compiler';
import type { RawKernelArg, RawLoadResult } from '@stitch/native';
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
};

export interface KernelRuntimeOptions {
  /**
   * How many kernels may run at once on this node (each runs on one libuv pool thread, so the
   * effective limit is also capped by UV_THREADPOOL_SIZE, 4 by default).
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

  /** @internal */
  async schedule(handle: number, args: RawKernelArg[]): Promise<void> {
    if (this.active >= this.threads) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    this.calls++;
    try {
      await (loadNative() as unknown as Native).runKernel(handle, args);
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

export type KernelArray = Float32Array | Int32Array | Int8Array;
const ARRAY_TYPES = { f32: Float32Array, i32: Int32Array, i8: Int8Array } as const;

/** A loaded entry point. `run` checks every array against the manifest before any native call. */
export class Kernel {
  constructor(
    private readonly runtime: KernelRuntime,
    private readonly handle: number,
    readonly symbol: string,
    readonly args: ArgSpec[],
    readonly manifest: KernelManifest,
  ) {}

  /** Runs with arrays in manifest order (inputs, then outputs); resolves when outputs are written. */
  run(arrays: KernelArray[]): Promise<void> {
    return this.runtime.schedule(this.handle, this.check(arrays));
  }

  private check(arrays: KernelArray[]): RawKernelArg[] {
    if (arrays.length !== this.args.length) {
      throw new KernelShapeMismatch(this.symbol, `expected ${this.args.length} arrays, got ${arrays.length}`);
    }
    // Every dynamic size of a spec is one symbol (rows, seq, len, count), so all must agree.
    let dynamic: number | null = null;
    const raw = this.args.map((spec, i) => {
      const data = arrays[i]!;
      const want = ARRAY_TYPES[spec.dtype];
      if (!(data instanceof want)) {
        throw new KernelShapeMismatch(this.symbol, `argument ${spec.name} must be a ${want.name}`);
      }
      const fixed = spec.shape.reduce<number>((p, d) => p * (d ?? 1), 1);
      const shape = spec.shape.map((d) => d ?? data.length / fixed);
      const inferred = shape[spec.shape.indexOf(null)];
      if (inferred !== undefined) {
        if (!Number.isInteger(inferred) || inferred < 1) {
          throw new KernelShapeMismatch(
            this.symbol,
            `argument ${spec.name} has ${data.length} elements, not a multiple of ${fixed}`,
          );
        }
        if (dynamic !== null && dynamic !== inferred) {
          throw new KernelShapeMismatch(
            this.symbol,
            `argument ${spec.name} has ${inferred} rows, others have ${dynamic}`,
          );
        }
        dynamic = inferred;
      } else if (data.length !== fixed) {
        throw new KernelShapeMismatch(
          this.symbol,
          `argument ${spec.name} must have ${fixed} elements, got ${data.length}`,
        );
      }
      return { data, shape };
    });
    this.checkIndices(arrays);
    return raw;
  }

  private checkIndices(arrays: KernelArray[]): void {
    const spec = this.manifest.spec;
    // The fused decode step writes the KV cache row at `pos`: out of range would write out of bounds.
    if (spec.op === 'nn.llama_decode') {
      const pos = arrays[this.args.findIndex((a) => a.name === 'pos')]![0]!;
      if (!(pos >= 0 && pos < spec.seqLen)) {
        throw new KernelShapeMismatch(
          this.symbol,
          `position ${pos} is outside the context [0, ${spec.seqLen})`,
        );
      }
      return;
    }
    if (spec.op !== 'nn.embedding') return;
    const ids = arrays[1] as Int32Array;
    for (const id of ids) {
      if (id < 0 || id >= spec.vocab) {
        throw new KernelShapeMismatch(
          this.symbol,
          `token id ${id} is outside the vocabulary [0, ${spec.vocab})`,
        );
      }
    }
  }
}

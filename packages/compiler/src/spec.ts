import { InvalidKernelSpec } from './errors.js';
import { llamaLayerLayout } from './llama-layout.js';

/** Element types a kernel argument can have. Float math is f32; i32 carries ids and positions; i8 quantized weights. */
export type DType = 'f32' | 'i32' | 'i8';

/** One memref argument of a kernel entry point; `null` in a shape is a size fixed only at run time. */
export interface ArgSpec {
  name: string;
  dtype: DType;
  shape: (number | null)[];
  /** Outputs are written by the kernel; inputs are only read. */
  role: 'in' | 'out';
}

/** Kernel specs, one per `nn.*` op. A `null` row count means "any number of rows at run time". */
export type KernelSpec =
  | { op: 'nn.matmul'; m: number | null; k: number; n: number; transposeB?: boolean }
  | { op: 'nn.batch_matmul'; b: number; m: number; k: number; n: number }
  | { op: 'nn.matvec'; m: number; k: number }
  /** y = A·x with A in q8_0 (int8 values, one f32 scale per 32 along k; mlir/quant.ts). */
  | { op: 'nn.matvec_q8'; m: number; k: number }
  | { op: 'nn.add'; rows: number | null; cols: number }
  | { op: 'nn.rmsnorm'; rows: number | null; dim: number; eps: number }
  | { op: 'nn.softmax'; rows: number | null; cols: number }
  | { op: 'nn.rope'; seq: number | null; heads: number; headDim: number; theta: number }
  | { op: 'nn.swiglu'; rows: number | null; cols: number }
  | { op: 'nn.attention_prefill'; seq: number | null; heads: number; kvHeads: number; headDim: number }
  | { op: 'nn.attention_decode'; len: number | null; heads: number; kvHeads: number; headDim: number }
  | { op: 'nn.embedding'; vocab: number; dim: number; count: number | null }
  | { op: 'nn.topk'; n: number; dim: number; metric: 'dot' | 'cosine' }
  | ({
      /** A whole Llama layer stack's decode step for one token, plus the final RMSNorm (mlir/llama.ts). */
      op: 'nn.llama_decode';
      /** Matrices (layers and classifier excluded) in q8_0; dim and hiddenDim must be multiples of 32. */
      quant?: 'q8_0';
    } & LlamaStackShape)
  | ({
      /**
       * The same layer stack over a prompt's rows at positions pos, pos + 1, …: writes their KV
       * cache rows, attends causally, returns every row's final-normed hidden state (f32 weights).
       */
      op: 'nn.llama_prefill';
    } & LlamaStackShape);

/** The shape of a Llama layer stack, as its fused decode and prefill kernels are compiled for it. */
export interface LlamaStackShape {
  dim: number;
  hiddenDim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  seqLen: number;
  eps: number;
  theta: number;
}

export type KernelOp = KernelSpec['op'];

/** Every op a spec may name; a `Record` so tsc flags an op added to `KernelSpec` but missing here. */
const KERNEL_OPS: Record<KernelOp, true> = {
  'nn.matmul': true,
  'nn.batch_matmul': true,
  'nn.matvec': true,
  'nn.matvec_q8': true,
  'nn.add': true,
  'nn.rmsnorm': true,
  'nn.softmax': true,
  'nn.rope': true,
  'nn.swiglu': true,
  'nn.attention_prefill': true,
  'nn.attention_decode': true,
  'nn.embedding': true,
  'nn.topk': true,
  'nn.llama_decode': true,
  'nn.llama_prefill': true,
};

/** The entry point name of a spec: `_mlir_ciface_<entryName>` in the shared object. */
export function entryName(spec: KernelSpec): string {
  return spec.op.slice('nn.'.length);
}

/** Argument list of a spec's entry point, in call order (inputs first, then outputs). */
export function kernelArgs(spec: KernelSpec): ArgSpec[] {
  const i = (name: string, shape: (number | null)[], dtype: DType = 'f32'): ArgSpec => ({
    name,
    dtype,
    shape,
    role: 'in',
  });
  const o = (name: string, shape: (number | null)[]): ArgSpec => ({ name, dtype: 'f32', shape, role: 'out' });
  switch (spec.op) {
    case 'nn.matmul':
      return [
        i('a', [spec.m, spec.k]),
        i('b', spec.transposeB ? [spec.n, spec.k] : [spec.k, spec.n]),
        o('c', [spec.m, spec.n]),
      ];
    case 'nn.batch_matmul':
      return [
        i('a', [spec.b, spec.m, spec.k]),
        i('b', [spec.b, spec.k, spec.n]),
        o('c', [spec.b, spec.m, spec.n]),
      ];
    case 'nn.matvec':
      return [i('a', [spec.m, spec.k]), i('x', [spec.k]), o('y', [spec.m])];
    case 'nn.matvec_q8':
      return [
        i('q', [spec.m, spec.k], 'i8'),
        i('scales', [spec.m, spec.k / 32]),
        i('x', [spec.k]),
        o('y', [spec.m]),
      ];
    case 'nn.add':
    case 'nn.swiglu':
      return [
        i('a', [spec.rows, spec.cols]),
        i('b', [spec.rows, spec.cols]),
        o('out', [spec.rows, spec.cols]),
      ];
    case 'nn.rmsnorm':
      return [i('x', [spec.rows, spec.dim]), i('weight', [spec.dim]), o('out', [spec.rows, spec.dim])];
    case 'nn.softmax':
      return [i('x', [spec.rows, spec.cols]), o('out', [spec.rows, spec.cols])];
    case 'nn.rope':
      return [
        i('x', [spec.seq, spec.heads, spec.headDim]),
        i('pos', [spec.seq], 'i32'),
        o('out', [spec.seq, spec.heads, spec.headDim]),
      ];
    case 'nn.attention_prefill':
      return [
        i('q', [spec.seq, spec.heads, spec.headDim]),
        i('k', [spec.seq, spec.kvHeads, spec.headDim]),
        i('v', [spec.seq, spec.kvHeads, spec.headDim]),
        o('out', [spec.seq, spec.heads, spec.headDim]),
      ];
    case 'nn.attention_decode':
      return [
        i('q', [spec.heads, spec.headDim]),
        i('k', [spec.len, spec.kvHeads, spec.headDim]),
        i('v', [spec.len, spec.kvHeads, spec.headDim]),
        o('out', [spec.heads, spec.headDim]),
      ];
    case 'nn.embedding':
      return [
        i('table', [spec.vocab, spec.dim]),
        i('ids', [spec.count], 'i32'),
        o('out', [spec.count, spec.dim]),
      ];
    case 'nn.topk':
      return [i('vectors', [spec.n, spec.dim]), i('query', [spec.dim]), o('scores', [spec.n])];
    case 'nn.llama_decode':
    case 'nn.llama_prefill': {
      // Per-layer blocks as llamaLayerLayout says; the KV caches are read and the rows from `pos`
      // on written, so they are listed with the outputs.
      const kv = (spec.dim / spec.heads) * spec.kvHeads;
      const layout = llamaLayerLayout(spec);
      const q8 = spec.op === 'nn.llama_decode' && spec.quant === 'q8_0';
      const rows = spec.op === 'nn.llama_prefill' ? [null] : [];
      return [
        i('x', [...rows, spec.dim]),
        i('weights', [spec.layers, layout.weights], q8 ? 'i8' : 'f32'),
        ...(q8 ? [i('params', [spec.layers, layout.params])] : []),
        i('rmsFinal', [spec.dim]),
        i('pos', [1], 'i32'),
        o('kCache', [spec.layers, spec.seqLen, kv]),
        o('vCache', [spec.layers, spec.seqLen, kv]),
        o('out', [...rows, spec.dim]),
      ];
    }
  }
}

/** Checks every size is a positive integer and attributes are in range. Throws `InvalidKernelSpec`. */
export function validateSpec(spec: KernelSpec): void {
  // Specs may come from JSON or untyped callers: an unknown op would otherwise surface as a TypeError.
  if (typeof spec?.op !== 'string' || !Object.hasOwn(KERNEL_OPS, spec.op)) {
    throw new InvalidKernelSpec(
      `unknown kernel op ${JSON.stringify((spec as { op?: unknown } | undefined)?.op)}; use one of ${Object.keys(KERNEL_OPS).join(', ')}`,
    );
  }
  for (const [key, value] of Object.entries(spec)) {
    if (key === 'op' || key === 'metric' || key === 'transposeB' || value === null) continue;
    if (key === 'quant') {
      if (value !== 'q8_0') throw new InvalidKernelSpec(`${spec.op}.quant must be 'q8_0' when given`);
      continue;
    }
    if (key === 'eps' || key === 'theta') {
      if (typeof value !== 'number' || !(value > 0))
        throw new InvalidKernelSpec(`${spec.op}.${key} must be > 0`);
      continue;
    }
    if (!Number.isInteger(value) || (value as number) < 1) {
      throw new InvalidKernelSpec(`${spec.op}.${key} must be a positive integer, got ${String(value)}`);
    }
  }
  if (spec.op === 'nn.rope' && spec.headDim % 2 !== 0) {
    throw new InvalidKernelSpec('nn.rope.headDim must be even (dimensions rotate in pairs)');
  }
  if (spec.op === 'nn.matvec_q8' && spec.k % 32 !== 0) {
    throw new InvalidKernelSpec('nn.matvec_q8.k must be a multiple of 32 (the q8_0 block)');
  }
  const stack = spec.op === 'nn.llama_decode' || spec.op === 'nn.llama_prefill';
  if (stack && (spec.dim % spec.heads !== 0 || (spec.dim / spec.heads) % 2 !== 0)) {
    throw new InvalidKernelSpec(`${spec.op}.dim must be heads × an even head size`);
  }
  if (spec.op === 'nn.llama_prefill' && 'quant' in spec) {
    throw new InvalidKernelSpec('nn.llama_prefill reads f32 weights: it takes no quant');
  }
  if (spec.op === 'nn.llama_decode' && spec.quant && (spec.dim % 32 !== 0 || spec.hiddenDim % 32 !== 0)) {
    throw new InvalidKernelSpec(
      'nn.llama_decode with quant q8_0 needs dim and hiddenDim to be multiples of 32',
    );
  }
  if (
    (spec.op === 'nn.attention_prefill' || spec.op === 'nn.attention_decode' || stack) &&
    spec.heads % spec.kvHeads !== 0
  ) {
    throw new InvalidKernelSpec(`${spec.op}.heads must be a multiple of kvHeads (grouped-query attention)`);
  }
}

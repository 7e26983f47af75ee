import * as reference from './reference.js';

export { DEFAULT_MMAP_THRESHOLD_BYTES, pinMmapThreshold } from './allocator.js';

export type { Calibration } from './calibrate.js';
export { calibrate, timeRuns } from './calibrate.js';
export type { GgufHeader, GgufTensorInfo, GgufValue } from './checkpoint/gguf.js';
export { GgmlType } from './checkpoint/gguf.js';
export type { GgufCheckpoint } from './checkpoint/gguf-llama.js';
export { loadGguf } from './checkpoint/gguf-llama.js';
export { writeGguf } from './checkpoint/gguf-write.js';
export { loadLlama2c, writeLlama2c } from './checkpoint/llama2c.js';
export type { Checkpoint } from './checkpoint/load.js';
export { loadCheckpoint, loadCheckpointTokenizer } from './checkpoint/load.js';
export { loadTokenizerBin, Tokenizer, writeTokenizerBin } from './checkpoint/tokenizer.js';
export type { ProbedDevice } from './devices.js';
export { calibrateCpu, probeDevices } from './devices.js';
export {
  CheckpointInvalid,
  ContextExceeded,
  KernelError,
  KernelErrorCode,
  KernelIntegrityError,
  KernelLoadError,
  KernelOptionsInvalid,
  KernelShapeMismatch,
  TokenizerInvalid,
} from './errors.js';
export type { FusedDecode, FusedOptions } from './llama/fused.js';
export { fusedDecode } from './llama/fused.js';
export { argmax, Llama } from './llama/model.js';
export type { LlamaOps } from './llama/ops.js';
export { kernelOps, referenceOps } from './llama/ops.js';
export type { Sampler } from './llama/sample.js';
export { sampler } from './llama/sample.js';
export type { LayerBlock, LlamaShardWeights, ShardKv } from './llama/tensor-parallel.js';
export {
  allReduce,
  ExpertShard,
  LlamaShard,
  shardWeights,
  TensorParallelLlama,
  tensorParallelProblem,
} from './llama/tensor-parallel.js';
export type { LlamaConfig, LlamaWeights, LoadOptions, MoeWeights } from './llama/weights.js';
export {
  DEFAULT_MAX_CONTEXT,
  kvCacheBytes,
  MAX_KV_CACHE_BYTES,
  syntheticExperts,
  syntheticWeights,
  withExperts,
} from './llama/weights.js';
export type { HostProbe, IsaFeatures } from './probe.js';
export { probeHost } from './probe.js';
export type { KernelArray, KernelRuntimeOptions } from './runtime.js';
export { Kernel, KernelRuntime } from './runtime.js';
export type { ThreadedKernel } from './threaded.js';
export { splitRows, splittable, threadedKernel } from './threaded.js';

/** Plain TypeScript versions of every kernel (the test oracle), `topK` selection and `relativeError`. */
export { reference };

import * as reference from './reference.js';

export type { Calibration } from './calibrate.js';
export { calibrate, timeRuns } from './calibrate.js';
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
} from './errors.js';
export { argmax, Llama } from './llama/model.js';
export type { LlamaOps } from './llama/ops.js';
export { kernelOps, referenceOps } from './llama/ops.js';
export type { LlamaConfig, LlamaWeights } from './llama/weights.js';
export { loadLlama2c, syntheticWeights, writeLlama2c } from './llama/weights.js';
export type { HostProbe, IsaFeatures } from './probe.js';
export { probeHost } from './probe.js';
export type { KernelArray, KernelRuntimeOptions } from './runtime.js';
export { Kernel, KernelRuntime } from './runtime.js';

/** Plain TypeScript versions of every kernel (the test oracle), `topK` selection and `relativeError`. */
export { reference };

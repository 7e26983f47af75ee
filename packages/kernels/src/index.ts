export type { Calibration } from './calibrate.js';
export { calibrate, timeRuns } from './calibrate.js';
export { KernelIntegrityError, KernelLoadError, KernelShapeMismatch, StitchKernelError } from './errors.js';
export type { HostProbe, IsaFeatures } from './probe.js';
export { probeHost } from './probe.js';
export * as reference from './reference.js';
export type { KernelArray, KernelRuntimeOptions } from './runtime.js';
export { Kernel, KernelRuntime } from './runtime.js';

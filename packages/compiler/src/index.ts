export type { Artifact, CompileOptions, KernelManifest } from './artifact.js';
export { compileKernel, defaultCacheDir, sha256 } from './artifact.js';
export {
  ArtifactIntegrity,
  ArtifactNotFound,
  CompileFailed,
  CompilerError,
  CompilerErrorCode,
  InvalidKernelSpec,
  ToolchainMissing,
} from './errors.js';
export { generateKernel } from './generate.js';
export { fetchArtifact, publishArtifact } from './objectstore.js';
export type { ArgSpec, DType, KernelOp, KernelSpec } from './spec.js';
export { entryName, kernelArgs, validateSpec } from './spec.js';
export type { Target } from './targets.js';
export { runnableTargets, TARGETS } from './targets.js';

export type { Artifact, CompileOptions, KernelManifest } from './artifact.js';
export { CONTENT_HASH, compileKernel, defaultCacheDir, sha256 } from './artifact.js';
export {
  ArtifactIntegrity,
  ArtifactNotFound,
  ArtifactUntrusted,
  CompileFailed,
  CompilerError,
  CompilerErrorCode,
  InvalidKernelSpec,
  ToolchainMissing,
} from './errors.js';
export { generateKernel } from './generate.js';
export type { KernelObtained, KernelOrigin, KernelSourceOptions } from './kernel-source.js';
export {
  KERNEL_STORE_MAX_BYTES,
  KernelSource,
  kernelStoreName,
  obtainKernel,
  onKernelObtained,
  setKernelSource,
  specRefName,
} from './kernel-source.js';
export type { LlamaMatrix, LlamaShape } from './llama-layout.js';
export { LLAMA_MATRICES, llamaLayerLayout } from './llama-layout.js';
export type { FetchOptions, PublishOptions } from './objectstore.js';
export { fetchArtifact, MAX_MANIFEST_BYTES, publishArtifact } from './objectstore.js';
export type { ManifestSignature, PublisherKey } from './signing.js';
export { canonicalManifestBytes, generatePublisherKey, publisherKeyId } from './signing.js';
export type { ArgSpec, DType, KernelOp, KernelSpec } from './spec.js';
export { entryName, kernelArgs, validateSpec } from './spec.js';
export type { Target } from './targets.js';
export { runnableTargets, TARGETS } from './targets.js';

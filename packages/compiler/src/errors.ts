/** Every code a `CompilerError` can carry; the values are stable, so callers may branch on them. */
export const CompilerErrorCode = {
  /** `InvalidKernelSpec`: a kernel spec has a shape or attribute the generator cannot honour. */
  InvalidSpec: 'KERNEL_SPEC',
  /** `ToolchainMissing`: mlir-opt-19, mlir-translate-19 or clang-19 is not installed. */
  ToolchainMissing: 'TOOLCHAIN_MISSING',
  /** `CompileFailed`: a compile step exited non-zero or hung. */
  CompileFailed: 'KERNEL_COMPILE',
  /** `ArtifactIntegrity`: an artifact's bytes do not match its manifest. */
  ArtifactIntegrity: 'KERNEL_INTEGRITY',
  /** `ArtifactNotFound`: no artifact with that hash is in the object store. */
  ArtifactNotFound: 'ARTIFACT_NOT_FOUND',
  /**
   * `ArtifactUntrusted`: an artifact from the object store is unsigned, signed by a key outside
   * `trustedKeys`, badly signed, named by something that is not a SHA-256 hex hash, or its manifest
   * is for another hash; also a publish/fetch call without a key and without `allowUnsigned: true`.
   */
  ArtifactUntrusted: 'ARTIFACT_UNTRUSTED',
} as const;
export type CompilerErrorCode = (typeof CompilerErrorCode)[keyof typeof CompilerErrorCode];

/** Base of every error the kernel compiler throws: a stable `code` and a message that says what to do. */
export class CompilerError extends Error {
  readonly code: CompilerErrorCode;
  constructor(code: CompilerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A kernel spec has a shape or attribute the generator cannot honour. */
export class InvalidKernelSpec extends CompilerError {
  constructor(message: string) {
    super(
      CompilerErrorCode.InvalidSpec,
      `${message}; fix the kernel spec (see @stitch/compiler README for each op's fields).`,
    );
  }
}

/** One of mlir-opt-19, mlir-translate-19 or clang-19 is not installed. */
export class ToolchainMissing extends CompilerError {
  constructor(tool: string, options?: { cause?: unknown }) {
    super(
      CompilerErrorCode.ToolchainMissing,
      `${tool} was not found. Install it with "apt-get install -y mlir-19-tools clang-19", ` +
        'or fetch prebuilt artifacts from the object store instead of compiling.',
      options,
    );
  }
}

/** A compile step exited non-zero; `stage` says which one. */
export class CompileFailed extends CompilerError {
  constructor(stage: string, kernel: string, stderr: string) {
    super(
      CompilerErrorCode.CompileFailed,
      `${stage} failed for kernel ${kernel}:\n${stderr.slice(0, 4000)}\n` +
        'This is a compiler bug or an unsupported spec; report it with the spec that triggered it.',
    );
  }
}

/** An artifact's bytes do not match the SHA-256 in its manifest. */
export class ArtifactIntegrity extends CompilerError {
  constructor(what: string, options?: { cause?: unknown }) {
    super(
      CompilerErrorCode.ArtifactIntegrity,
      `${what}; delete it from the cache (or object store) and compile or fetch it again.`,
      options,
    );
  }
}

/** No artifact with that hash is in the object store. */
export class ArtifactNotFound extends CompilerError {
  constructor(hash: string) {
    super(
      CompilerErrorCode.ArtifactNotFound,
      `artifact ${hash} is not in the object store; publish it from a node that compiled it.`,
    );
  }
}

/**
 * An artifact from the object store is not one this node may run: unsigned, signed by a key that is
 * not in `trustedKeys`, badly signed, named by something that is not a 64-hex SHA-256 hash, or its
 * manifest describes another hash. The message says which option to configure.
 */
export class ArtifactUntrusted extends CompilerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(CompilerErrorCode.ArtifactUntrusted, message, options);
  }
}

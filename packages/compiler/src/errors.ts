/** Base of every error the kernel compiler throws: a stable `code` and a message that says what to do. */
export class StitchCompilerError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A kernel spec has a shape or attribute the generator cannot honour. */
export class InvalidKernelSpec extends StitchCompilerError {
  constructor(message: string) {
    super(
      'KERNEL_SPEC',
      `${message}; fix the kernel spec (see @stitch/compiler README for each op's fields).`,
    );
  }
}

/** One of mlir-opt-19, mlir-translate-19 or clang-19 is not installed. */
export class ToolchainMissing extends StitchCompilerError {
  constructor(tool: string, options?: { cause?: unknown }) {
    super(
      'TOOLCHAIN_MISSING',
      `${tool} was not found. Install it with "apt-get install -y mlir-19-tools clang-19", ` +
        'or fetch prebuilt artifacts from the object store instead of compiling.',
      options,
    );
  }
}

/** A compile step exited non-zero; `stage` says which one. */
export class CompileFailed extends StitchCompilerError {
  constructor(stage: string, kernel: string, stderr: string) {
    super(
      'KERNEL_COMPILE',
      `${stage} failed for kernel ${kernel}:\n${stderr.slice(0, 4000)}\n` +
        'This is a compiler bug or an unsupported spec; report it with the spec that triggered it.',
    );
  }
}

/** An artifact's bytes do not match the SHA-256 in its manifest. */
export class ArtifactIntegrity extends StitchCompilerError {
  constructor(what: string) {
    super(
      'KERNEL_INTEGRITY',
      `${what}; delete it from the cache (or object store) and compile or fetch it again.`,
    );
  }
}

/** No artifact with that hash is in the object store. */
export class ArtifactNotFound extends StitchCompilerError {
  constructor(hash: string) {
    super(
      'ARTIFACT_NOT_FOUND',
      `artifact ${hash} is not in the object store; publish it from a node that compiled it.`,
    );
  }
}

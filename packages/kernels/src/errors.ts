/** Base of every error @stitch/kernels throws: a stable `code` and a message that says what to do. */
export class StitchKernelError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Arguments do not match the kernel's manifest (count, dtype, shape, or an index out of range). */
export class KernelShapeMismatch extends StitchKernelError {
  constructor(kernel: string, detail: string) {
    super('KERNEL_SHAPE', `${kernel}: ${detail}; pass arrays shaped as the manifest's entry point says.`);
  }
}

/** The artifact's bytes do not match its manifest's SHA-256: it was corrupted or tampered with. */
export class KernelIntegrityError extends StitchKernelError {
  constructor(detail: string) {
    super('KERNEL_INTEGRITY', `${detail}. Delete the artifact and compile or fetch it again.`);
  }
}

/** The artifact could not be read or dlopened, or lacks its entry point. */
export class KernelLoadError extends StitchKernelError {
  constructor(detail: string) {
    super('KERNEL_LOAD', `${detail}. Check the file exists and was built for this host's ISA.`);
  }
}

/** Every code a `KernelError` can carry; the values are stable, so callers may branch on them. */
export const KernelErrorCode = {
  /** `KernelShapeMismatch`: arguments do not match the kernel's manifest. */
  ShapeMismatch: 'KERNEL_SHAPE',
  /** `KernelIntegrityError`: the artifact's bytes do not match its manifest's SHA-256. */
  Integrity: 'KERNEL_INTEGRITY',
  /** `KernelLoadError`: the artifact could not be read or dlopened, or lacks its entry point. */
  Load: 'KERNEL_LOAD',
  /** `KernelOptionsInvalid`: an option passed to a @stitch/kernels API is out of range or unsupported here. */
  InvalidOptions: 'KERNEL_OPTIONS',
  /** `CheckpointInvalid`: a llama2.c or GGUF checkpoint could not be read. */
  CheckpointInvalid: 'CHECKPOINT_INVALID',
  /** `TokenizerInvalid`: a tokenizer (llama2.c tokenizer.bin or GGUF metadata) could not be read, or text cannot be encoded. */
  TokenizerInvalid: 'TOKENIZER_INVALID',
  /** `ContextExceeded`: more tokens than the model's context (KV cache) holds. */
  ContextExceeded: 'CONTEXT_EXCEEDED',
} as const;
export type KernelErrorCode = (typeof KernelErrorCode)[keyof typeof KernelErrorCode];

/** Base of every error @stitch/kernels throws: a stable `code` and a message that says what to do. */
export class KernelError extends Error {
  readonly code: KernelErrorCode;
  constructor(code: KernelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Arguments do not match the kernel's manifest (count, dtype, shape, or an index out of range). */
export class KernelShapeMismatch extends KernelError {
  constructor(kernel: string, detail: string) {
    super(
      KernelErrorCode.ShapeMismatch,
      `${kernel}: ${detail}; pass arrays shaped as the manifest's entry point says.`,
    );
  }
}

/** The artifact's bytes do not match its manifest's SHA-256: it was corrupted or tampered with. */
export class KernelIntegrityError extends KernelError {
  constructor(detail: string) {
    super(KernelErrorCode.Integrity, `${detail}. Delete the artifact and compile or fetch it again.`);
  }
}

/** The artifact could not be read or dlopened, or lacks its entry point. */
export class KernelLoadError extends KernelError {
  constructor(detail: string) {
    super(KernelErrorCode.Load, `${detail}. Check the file exists and was built for this host's ISA.`);
  }
}

/** An option passed to a @stitch/kernels API is out of range, or unsupported on this host. */
export class KernelOptionsInvalid extends KernelError {
  constructor(message: string) {
    super(KernelErrorCode.InvalidOptions, message);
  }
}

/** A llama2.c or GGUF checkpoint could not be read. */
export class CheckpointInvalid extends KernelError {
  constructor(path: string, detail: string, options?: { cause?: unknown }) {
    super(
      KernelErrorCode.CheckpointInvalid,
      `${path}: ${detail}; pass a llama2.c (version 0) float32 checkpoint or a GGUF v3 Llama file ` +
        'with f32, f16 or q8_0 tensors.',
      options,
    );
  }
}

/** A tokenizer could not be read, or text cannot be encoded with it. */
export class TokenizerInvalid extends KernelError {
  constructor(source: string, detail: string, options?: { cause?: unknown }) {
    super(
      KernelErrorCode.TokenizerInvalid,
      `${source}: ${detail}; pass llama2.c's tokenizer.bin for this model's vocabulary, or a GGUF file ` +
        'with tokenizer.ggml.tokens and scores.',
      options,
    );
  }
}

/** A prompt plus generated tokens would not fit in the model's context (its KV cache). */
export class ContextExceeded extends KernelError {
  constructor(seqLen: number, wanted: number) {
    super(
      KernelErrorCode.ContextExceeded,
      `${wanted} tokens do not fit in the model's context of ${seqLen}; shorten the prompt or generate ` +
        'fewer tokens, or use weights with a longer seqLen.',
    );
  }
}

/** A position in IR text; 1-based line and column. */
export interface SourceLoc {
  readonly line: number;
  readonly col: number;
}

/** One problem found in a graph; diagnostics are data, an `IrError` carries them to the API edge. */
export interface Diagnostic {
  readonly message: string;
  readonly loc?: SourceLoc;
}

/** Every code an `IrError` can carry; the values are stable, so callers may branch on them. */
export const IrErrorCode = {
  /** The text is not well-formed IR, or the input could not be read. */
  Parse: 'IR_PARSE',
  /** The graph parsed but breaks a rule of its ops (types, operands, cycles, unknown ops in strict mode). */
  Verify: 'IR_VERIFY',
  /** A pass was misconfigured or cannot apply to this graph. */
  Pass: 'IR_PASS',
  /** `AgentGraphBuilder` was given an inconsistent graph. */
  Build: 'IR_BUILD',
} as const;
export type IrErrorCode = (typeof IrErrorCode)[keyof typeof IrErrorCode];

/**
 * The one error class of @stitch/ir. Its message is the diagnostics formatted as
 * `file:line:col: error: …` lines, so a CLI can print it as is; `exitCode` 2 marks bad input.
 */
export class IrError extends Error {
  readonly code: IrErrorCode;
  readonly diagnostics: readonly Diagnostic[];
  readonly file: string;
  /** Exit status a CLI should use: every IR error comes from bad input. */
  readonly exitCode = 2;

  constructor(
    code: IrErrorCode,
    diagnostics: readonly Diagnostic[],
    file = '<input>',
    options?: { cause?: unknown },
  ) {
    super(diagnostics.map((d) => formatDiagnostic(d, file)).join('\n'), options);
    this.name = new.target.name;
    this.code = code;
    this.diagnostics = diagnostics;
    this.file = file;
  }

  /** The same error reported against another file name (the CLI knows the path, the parser does not). */
  withFile(file: string): IrError {
    return new IrError(
      this.code,
      this.diagnostics,
      file,
      this.cause === undefined ? undefined : { cause: this.cause },
    );
  }
}

export function formatDiagnostic(d: Diagnostic, file: string): string {
  const where = d.loc ? `${file}:${d.loc.line}:${d.loc.col}` : file;
  return `${where}: error: ${d.message}`;
}

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

export type IrErrorCode = 'IR_PARSE' | 'IR_VERIFY' | 'IR_PASS' | 'IR_BUILD';

/**
 * The one error class of @stitch/ir. Its message is the diagnostics formatted as
 * `file:line:col: error: …` lines, so a CLI can print it as is; `exitCode` 2 marks bad input.
 */
export class IrError extends Error {
  override readonly name = 'IrError';
  readonly exitCode = 2;
  constructor(
    readonly code: IrErrorCode,
    readonly diagnostics: readonly Diagnostic[],
    readonly file = '<input>',
  ) {
    super(diagnostics.map((d) => formatDiagnostic(d, file)).join('\n'));
  }

  /** The same error reported against another file name (the CLI knows the path, the parser does not). */
  withFile(file: string): IrError {
    return new IrError(this.code, this.diagnostics, file);
  }
}

export function formatDiagnostic(d: Diagnostic, file: string): string {
  const where = d.loc ? `${file}:${d.loc.line}:${d.loc.col}` : file;
  return `${where}: error: ${d.message}`;
}

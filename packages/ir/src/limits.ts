import { IrError, IrErrorCode } from './errors.js';

/**
 * Bounds on what one parse may build. IR text can come from anyone, so every size read from the
 * text is checked against these before anything proportional to it is allocated; crossing one is an
 * `IrError` (code `IR_PARSE`) at the place in the text that crossed it, naming the option to raise.
 */
export interface ParseLimits {
  /**
   * Size of the whole text in UTF-8 bytes; the text with every alias use inlined (counted in UTF-16
   * units) must fit too.
   */
  readonly maxInputBytes: number;
  /** Ops in the graph, those in regions included. */
  readonly maxOps: number;
  /** SSA values in the graph: op results (`%a:4` counts 4) and block arguments. */
  readonly maxValues: number;
  /** Nesting of regions and of attribute arrays/dictionaries inside each other. */
  readonly maxDepth: number;
  /** Dimensions of one tensor type (its rank). */
  readonly maxDims: number;
  /** Elements of one tensor type (product of its dimensions, `?` counting as 1); also bounds each dimension. */
  readonly maxElements: number;
  /** Bytes of one string literal (after escapes). */
  readonly maxStringBytes: number;
  /**
   * Items of one attribute array or dense array, entries of one attribute dictionary, or elements
   * written out in one `dense<[…]>` literal (a splat or hex blob holds one value or one string).
   */
  readonly maxAttrItems: number;
  /** Top-level alias definitions (`#name = …` and `!name = …`) in the text. */
  readonly maxAliases: number;
}

/** What `parseGraph` allows unless told otherwise; far above any real agent graph. */
export const PARSE_LIMITS: ParseLimits = Object.freeze({
  maxInputBytes: 16 * 1024 * 1024,
  maxOps: 100_000,
  maxValues: 1_000_000,
  maxDepth: 100,
  maxDims: 16,
  // 2^40 elements of 8 bytes stay below 2^53, so byte sizes computed from a type stay exact.
  maxElements: 2 ** 40,
  maxStringBytes: 1024 * 1024,
  maxAttrItems: 65_536,
  maxAliases: 10_000,
});

/** Options of `parseGraph`: any subset of the limits, each a positive integer. */
export type ParseOptions = Partial<ParseLimits>;

/** Op names are identifiers such as `llm.call`; longer is not a name. */
export const MAX_OP_NAME_BYTES = 256;

export function resolveParseLimits(options: ParseOptions = {}): ParseLimits {
  const out: Record<string, number> = { ...PARSE_LIMITS };
  for (const key of Object.keys(PARSE_LIMITS)) {
    const v = (options as Record<string, unknown>)[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
      throw new IrError(IrErrorCode.Parse, [
        { message: `parse option ${key} must be a positive integer, found ${String(v)}` },
      ]);
    }
    out[key] = v;
  }
  return out as unknown as ParseLimits;
}

/** Index of the first UTF-16 unit whose UTF-8 bytes end past `maxBytes`, or -1 when the text fits. */
export function overflowIndex(text: string, maxBytes: number): number {
  if (text.length * 3 <= maxBytes) return -1;
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c < 0xdc00) {
      bytes += 4;
      if (bytes > maxBytes) return i;
      i++;
      continue;
    } else bytes += 3;
    if (bytes > maxBytes) return i;
  }
  return -1;
}

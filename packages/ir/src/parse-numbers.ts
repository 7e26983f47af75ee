import type { Attr } from './attrs.js';
import { FLOAT_TYPE, floatBits, floatFromHex } from './floats.js';
import type { Cursor } from './lexer.js';

export const NUMBER = /-?(0x[0-9a-fA-F]+|\d+(\.\d*)?([eE][-+]?\d+)?)/y;
export const INT_TYPE = /^(i\d+|index)$/;

/** `3`, `-0x10 : i32`, `1.5 : f32`, `1 : i1`: a number literal with an optional scalar type. */
export function parseNumber(c: Cursor): Attr {
  c.skipWs();
  const start = c.pos;
  const lit = c.rawMatch(NUMBER);
  if (lit === undefined) return c.expected('a number');
  let type = isFloatLiteral(lit) ? 'f64' : 'i64';
  if (c.eat(':')) {
    const tpos = c.pos;
    const t = c.ident();
    if (!t || !(INT_TYPE.test(t) || FLOAT_TYPE.test(t))) return c.expected('an integer or float type', tpos);
    type = t;
  }
  const value = numberValue(c, lit, type, start);
  if (FLOAT_TYPE.test(type)) return { kind: 'float', value, type };
  if (type === 'i1') return { kind: 'bool', value: value !== 0 };
  return { kind: 'int', value, type };
}

export const isFloatLiteral = (lit: string) => !lit.includes('0x') && /[.eE]/.test(lit);

/**
 * The value of a number literal `lit` (read at `pos`) as a `type`: a safe integer for integer
 * types; for float types, decimal or hexadecimal bits (MLIR's spelling of NaN and infinities).
 */
export function numberValue(c: Cursor, lit: string, type: string, pos: number): number {
  const negative = lit.startsWith('-');
  const hex = lit.includes('0x');
  if (FLOAT_TYPE.test(type)) {
    if (!hex) return Number(lit);
    // The bits are the whole value, sign included, so a minus has nothing to negate.
    if (negative) {
      c.fail(
        `a hexadecimal float literal takes no sign (mlir-opt refuses one too); write the bits of the negative value, ${negatedBits(lit.slice(3), type)}`,
        pos,
      );
    }
    const bits = floatBits(type);
    if (BigInt(lit) >> BigInt(bits) !== 0n) {
      c.fail(`hexadecimal float ${lit} has more than the ${bits} bits of ${type}`, pos);
    }
    return floatFromHex(lit.slice(2), type);
  }
  if (isFloatLiteral(lit)) c.fail(`expected an integer for type ${type}, found '${lit}'`, pos);
  const value = hex && negative ? -Number(lit.slice(1)) : Number(lit);
  if (!Number.isSafeInteger(value)) c.fail(`integer ${lit} is out of range (|n| must be below 2^53)`, pos);
  return value;
}

/** `hex` float bits with the sign bit flipped, as `floatFromHex` reads them for `type`. */
function negatedBits(hex: string, type: string): string {
  const digits = floatBits(type) / 4;
  const sign = 1n << BigInt(digits * 4 - 1);
  const bits = (BigInt(`0x${hex}`) ^ sign) & (2n * sign - 1n);
  return `0x${bits.toString(16).toUpperCase().padStart(digits, '0')}`;
}

/**
 * A number literal as an element of a `what` (`dense array`, …) of type `elem`. A non-finite element
 * is a typo (`1e999`) or stray bits, never a size, factor or weight an op can use.
 */
export function finiteElement(c: Cursor, lit: string, elem: string, pos: number, what: string): number {
  const value = numberValue(c, lit, elem, pos);
  if (!Number.isFinite(value)) {
    c.fail(`${what} element ${lit} is not a finite ${elem}; elements of a ${what} must be finite`, pos);
  }
  return value;
}

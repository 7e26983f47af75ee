import { type Attr, type Attrs, floatFromHex } from './attrs.js';
import type { SourceLoc } from './errors.js';
import type { Cursor } from './lexer.js';
import { SCALAR_TYPES, type Type } from './types.js';
import { utf8Decode } from './utf8.js';

const NUMBER = /-?(0x[0-9a-fA-F]+|\d+(\.\d*)?([eE][-+]?\d+)?)/y;
const DIM = /(\d+|\?)x/y;
const ELEM = /[A-Za-z_]\w*/y;
const INT_TYPE = /^(i\d+|index)$/;
const FLOAT_TYPE = /^(f16|bf16|f32|f64)$/;

export function parseType(c: Cursor): Type {
  c.skipWs();
  const start = c.pos;
  if (c.eat('!')) {
    const name = c.rawMatch(/[A-Za-z_][\w$]*\.[\w$.]+/y);
    if (!name) return c.expected("a dialect type such as '!agent.text'", start);
    if (c.src[c.pos] === '<') c.fail(`parameterised dialect types are not supported ('!${name}<…>')`, start);
    const dot = name.indexOf('.');
    return { kind: 'dialect', dialect: name.slice(0, dot), name: name.slice(dot + 1) };
  }
  const word = c.ident();
  if (word === 'tensor' && c.src[c.pos] === '<') {
    c.pos++;
    if (c.src[c.pos] === '*')
      c.fail('unranked tensors are not supported; give the shape, e.g. tensor<4x8xf32>');
    const shape = tensorShape(c, start);
    const elemPos = c.pos;
    const elem = c.rawMatch(ELEM);
    if (!elem || !SCALAR_TYPES.has(elem)) return c.expected('a tensor element type such as f32', elemPos);
    if (c.src[c.pos] !== '>') return c.expected("'>'");
    c.pos++;
    return { kind: 'tensor', shape, elem };
  }
  if (word !== undefined && SCALAR_TYPES.has(word)) return { kind: 'scalar', name: word };
  return c.expected('a type (tensor<…>, !dialect.type, i64, f32, …)', start);
}

/**
 * Reads `4x?x8x` (the dims before the element type), checking rank and element count against the
 * limits as it goes, so a hostile type fails at `start` before anything proportional to it is made.
 */
function tensorShape(c: Cursor, start: number): (number | null)[] {
  const { maxDims, maxElements } = c.limits;
  const shape: (number | null)[] = [];
  let elements = 1;
  for (let d = c.rawMatch(DIM); d !== undefined; d = c.rawMatch(DIM)) {
    if (shape.length >= maxDims) {
      c.fail(
        `tensor type has more than ${maxDims} dimensions; reshape it or raise the parse option maxDims`,
        start,
      );
    }
    const dim = d === '?x' ? null : Number(d.slice(0, -1));
    elements *= dim ?? 1;
    if (dim !== null && !(dim <= maxElements && elements <= maxElements)) {
      c.fail(
        `tensor type has an element count above ${maxElements}; use smaller dimensions or raise the parse option maxElements`,
        start,
      );
    }
    shape.push(dim);
  }
  return shape;
}

function parseNumber(c: Cursor): Attr {
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

const isFloatLiteral = (lit: string) => !lit.includes('0x') && /[.eE]/.test(lit);

/**
 * The value of a number literal `lit` (read at `pos`) as a `type`: a safe integer for integer
 * types; for float types, decimal or hexadecimal bits (MLIR's spelling of NaN and infinities).
 */
function numberValue(c: Cursor, lit: string, type: string, pos: number): number {
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
    return floatFromHex(lit.slice(2), type);
  }
  if (isFloatLiteral(lit)) c.fail(`expected an integer for type ${type}, found '${lit}'`, pos);
  const value = hex && negative ? -Number(lit.slice(1)) : Number(lit);
  if (!Number.isSafeInteger(value)) c.fail(`integer ${lit} is out of range (|n| must be below 2^53)`, pos);
  return value;
}

/** `hex` float bits with the sign bit flipped, as `floatFromHex` reads them (32 bits for f32, else 64). */
function negatedBits(hex: string, type: string): string {
  const digits = type === 'f32' ? 8 : 16;
  const sign = 1n << BigInt(digits * 4 - 1);
  const bits = (BigInt(`0x${hex}`) ^ sign) & (2n * sign - 1n);
  return `0x${bits.toString(16).toUpperCase().padStart(digits, '0')}`;
}

function parseDense(c: Cursor, start: number): Attr {
  c.expect('<');
  const epos = c.pos;
  const elem = c.ident();
  if (!elem || !(INT_TYPE.test(elem) || FLOAT_TYPE.test(elem))) return c.expected('an element type', epos);
  const values: number[] = [];
  if (c.eat(':')) {
    do {
      c.checkItems(values.length, start, 'dense array');
      c.skipWs();
      const pos = c.pos;
      const lit = c.rawMatch(NUMBER);
      if (lit === undefined) return c.expected('a number');
      const value = numberValue(c, lit, elem, pos);
      // A non-finite element is a typo (`1e999`) or stray bits, never a size or factor an op can use.
      if (!Number.isFinite(value)) {
        c.fail(
          `dense array element ${lit} is not a finite ${elem}; elements of a dense array must be finite`,
          pos,
        );
      }
      values.push(value);
    } while (c.eat(','));
  }
  c.expect('>');
  return { kind: 'dense', elem, values };
}

export function parseAttr(c: Cursor): Attr {
  const ch = c.peek();
  if (ch === '"') return { kind: 'str', value: utf8Decode(c.stringBytes()) };
  const start = c.pos;
  if (ch === '[') {
    c.enter(start);
    c.expect('[');
    const items: Attr[] = [];
    if (!c.eat(']')) {
      do {
        c.checkItems(items.length, start, 'attribute array');
        items.push(parseAttr(c));
      } while (c.eat(','));
      c.expect(']');
    }
    c.leave();
    return { kind: 'array', items };
  }
  if (ch === '{') {
    c.enter(start);
    const entries = parseAttrDict(c);
    c.leave();
    return { kind: 'dict', entries };
  }
  if (ch === '-' || /\d/.test(ch)) return parseNumber(c);
  if (ch === '#') c.fail('attribute aliases (#name) are not supported; inline the attribute');
  const word = c.ident();
  if (word === 'true' || word === 'false') return { kind: 'bool', value: word === 'true' };
  if (word === 'unit') return { kind: 'unit' };
  if (word === 'array' && c.src[c.pos] === '<') return parseDense(c, start);
  c.pos = start;
  if (ch === '!' || word !== undefined) return { kind: 'type', type: parseType(c) };
  return c.expected('an attribute value');
}

/**
 * `{key = value, flag, "quoted key" = value}` → entries; a key without value is a unit attribute.
 * `locs`, when given, gets where each key starts, so a check on one attribute can point at it.
 */
export function parseAttrDict(c: Cursor, locs?: Record<string, SourceLoc>): Attrs {
  c.skipWs();
  const start = c.pos;
  c.expect('{');
  // A null prototype keeps keys such as "__proto__" as plain entries.
  const entries: Record<string, Attr> = Object.create(null);
  if (c.eat('}')) return entries;
  let count = 0;
  do {
    c.checkItems(count++, start, 'attribute dictionary');
    c.skipWs();
    const kpos = c.pos;
    const key = c.peek() === '"' ? utf8Decode(c.stringBytes()) : c.ident();
    if (key === undefined) return c.expected('an attribute name', kpos);
    if (Object.hasOwn(entries, key)) c.fail(`duplicate attribute '${key}'`, kpos);
    if (locs) locs[key] = c.locAt(kpos);
    entries[key] = c.eat('=') ? parseAttr(c) : { kind: 'unit' };
  } while (c.eat(','));
  c.expect('}');
  return entries;
}

import { type Attr, type Attrs, floatFromHex } from './attrs.js';
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
  const isFloatLit = !lit.includes('0x') && /[.eE]/.test(lit);
  let type = isFloatLit ? 'f64' : 'i64';
  if (c.eat(':')) {
    const tpos = c.pos;
    const t = c.ident();
    if (!t || !(INT_TYPE.test(t) || FLOAT_TYPE.test(t))) return c.expected('an integer or float type', tpos);
    type = t;
  }
  if (FLOAT_TYPE.test(type)) {
    if (lit.includes('0x'))
      return { kind: 'float', value: floatFromHex(lit.replace(/^-?0x/, ''), type), type };
    return { kind: 'float', value: Number(lit), type };
  }
  if (isFloatLit) c.fail(`expected an integer for type ${type}, found '${lit}'`, start);
  const value = Number(lit.startsWith('-0x') ? -Number(lit.slice(1)) : lit);
  if (!Number.isSafeInteger(value)) c.fail(`integer ${lit} is out of range (|n| must be below 2^53)`, start);
  if (type === 'i1') return { kind: 'bool', value: value !== 0 };
  return { kind: 'int', value, type };
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
      const lit = c.rawMatch(NUMBER);
      if (lit === undefined) return c.expected('a number');
      values.push(Number(lit));
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

/** `{key = value, flag, "quoted key" = value}` → entries; a key without value is a unit attribute. */
export function parseAttrDict(c: Cursor): Attrs {
  c.skipWs();
  const start = c.pos;
  c.expect('{');
  // A null prototype keeps keys such as "__proto__" as plain entries.
  const entries: Record<string, Attr> = Object.create(null);
  if (c.eat('}')) return entries;
  let count = 0;
  do {
    c.checkItems(count++, start, 'attribute dictionary');
    const kpos = c.pos;
    const key = c.peek() === '"' ? utf8Decode(c.stringBytes()) : c.ident();
    if (key === undefined) return c.expected('an attribute name', kpos);
    if (Object.hasOwn(entries, key)) c.fail(`duplicate attribute '${key}'`, kpos);
    entries[key] = c.eat('=') ? parseAttr(c) : { kind: 'unit' };
  } while (c.eat(','));
  c.expect('}');
  return entries;
}

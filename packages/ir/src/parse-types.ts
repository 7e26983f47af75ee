import type { Attr } from './attrs.js';
import type { Cursor } from './lexer.js';
import { SCALAR_TYPES, type Type } from './types.js';

const DIM = /(\d+|\?)x/y;
const ELEM = /[A-Za-z_]\w*/y;
/** What follows `!`: a dialect type (`agent.text`) or, without a dot, a type alias (`t`). */
const BANG_NAME = /[\w$.-]+/y;
const DIALECT_TYPE = /^[A-Za-z_][\w$]*\.[\w$.]+$/;

export function parseType(c: Cursor): Type {
  c.skipWs();
  const start = c.pos;
  if (c.eat('!')) {
    const name = c.rawMatch(BANG_NAME);
    if (name !== undefined && !name.includes('.')) {
      // Type aliases are read with `parseType`, so each holds a type attribute.
      return (c.useAlias(`!${name}`, start) as Extract<Attr, { kind: 'type' }>).type;
    }
    if (!name || !DIALECT_TYPE.test(name)) return c.expected("a dialect type such as '!agent.text'", start);
    if (c.src[c.pos] === '<') c.fail(`parameterised dialect types are not supported ('!${name}<…>')`, start);
    const dot = name.indexOf('.');
    return { kind: 'dialect', dialect: name.slice(0, dot), name: name.slice(dot + 1) };
  }
  const word = c.ident();
  if (word === 'vector' && c.src[c.pos] === '<') {
    c.fail('vector types are not supported; use a tensor type such as tensor<4xf32>', start);
  }
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

import type { Attr, Element } from './attrs.js';
import { FLOAT_TYPE } from './floats.js';
import type { Cursor } from './lexer.js';
import { finiteElement, isFloatLiteral, NUMBER, numberValue } from './parse-numbers.js';
import { parseType } from './parse-types.js';
import { elemBytes, numElements, printType, type TensorType } from './types.js';
import { utf8Decode } from './utf8.js';

const WHAT = 'dense literal';
const HEX_BLOB = /^0x((?:[0-9a-fA-F]{2})*)$/;

/** An element as written, kept until the type after the literal says how to read it. */
interface Leaf {
  readonly text: string;
  readonly pos: number;
}

/** `[[1, 2], [3, 4]]` read flat: its leaves in order and the length of the lists at each depth. */
interface Lists {
  readonly leaves: Leaf[];
  readonly dims: number[];
  /** Depth of the leaves (0 inside the outer list); undefined while none was read. */
  leafDepth?: number;
}

/**
 * Reads `dense<…> : type` from the `<` on (MLIR's DenseElementsAttr): a splat (`dense<1.0>`), nested
 * lists (`dense<[[1, 2], [3, 4]]>`), nothing (`dense<>`) or a hex blob (`dense<"0x0000803F">`), then
 * checks the literal against its type, which must be a tensor of static shape.
 */
export function parseElements(c: Cursor, start: number): Attr {
  c.expect('<');
  c.skipWs();
  const lpos = c.pos;
  const ch = c.src[lpos];
  const hex = ch === '"' ? hexBlob(c) : undefined;
  const lists = ch === '[' ? nestedLists(c) : undefined;
  const splat = hex === undefined && lists === undefined && ch !== '>' ? leaf(c) : undefined;
  c.expect('>');
  c.expect(':');
  c.skipWs();
  const tpos = c.pos;
  const type = parseType(c);
  if (type.kind !== 'tensor' || type.shape.includes(null)) {
    return c.fail(
      `a dense literal needs a tensor type with a static shape, such as tensor<4xf32>; found ${printType(type)}`,
      tpos,
    );
  }
  if (hex !== undefined) return { kind: 'elements', type, hex: checkHex(c, hex, type, lpos) };
  if (splat !== undefined) return { kind: 'elements', type, splat: element(c, splat, type.elem) };
  if (lists === undefined) {
    if (numElements(type) !== 0) {
      c.fail(
        `empty dense literal for ${printType(type)}, which has ${numElements(type)} elements; list them or write one value for all`,
        start,
      );
    }
    return { kind: 'elements', type, values: [] };
  }
  const shape = type.shape as readonly number[];
  if (lists.dims.join('x') !== shape.join('x')) {
    c.fail(
      `dense literal has shape [${lists.dims.join(', ')}], but its type ${printType(type)} has shape [${shape.join(', ')}]; make the lists match the type or write one value for all`,
      lpos,
    );
  }
  return { kind: 'elements', type, values: lists.leaves.map((l) => element(c, l, type.elem)) };
}

function leaf(c: Cursor): Leaf {
  c.skipWs();
  const pos = c.pos;
  const text = c.rawMatch(NUMBER) ?? c.ident();
  if (text === undefined || (/^[A-Za-z_]/.test(text) && text !== 'true' && text !== 'false')) {
    return c.expected('an element (a number, true or false)', pos);
  }
  return { text, pos };
}

/** Reads the nested lists at the cursor, checking as it goes that they form a box, not a ragged tree. */
function nestedLists(c: Cursor): Lists {
  const lists: Lists = { leaves: [], dims: [] };
  const start = c.pos;
  list(c, lists, 0, start);
  return lists;
}

function list(c: Cursor, lists: Lists, depth: number, start: number): void {
  c.skipWs();
  const pos = c.pos;
  if (lists.leafDepth !== undefined && lists.leafDepth <= depth) raggedDepth(c, pos);
  c.enter(pos);
  c.expect('[');
  let length = 0;
  if (!c.eat(']')) {
    do {
      length++;
      if (c.peek() === '[') list(c, lists, depth + 1, start);
      else {
        if (lists.dims.length > depth + 1) raggedDepth(c, c.pos);
        lists.leafDepth ??= depth + 1;
        if (lists.leafDepth !== depth + 1) raggedDepth(c, c.pos);
        c.checkItems(lists.leaves.length, start, WHAT);
        lists.leaves.push(leaf(c));
      }
    } while (c.eat(','));
    c.expect(']');
  }
  c.leave();
  const first = lists.dims[depth];
  if (first === undefined) lists.dims[depth] = length;
  else if (first !== length) {
    c.fail(
      `this list holds ${length}, but the first list at its depth holds ${first}; every list at one depth needs the same length`,
      pos,
    );
  }
}

function raggedDepth(c: Cursor, pos: number): never {
  return c.fail('elements are nested at different depths; every element needs as many enclosing lists', pos);
}

/** An element for type `elem`: i1 takes true, false, 0 or 1; an integer must fit the bits of its type. */
function element(c: Cursor, l: Leaf, elem: string): Element {
  const bool = l.text === 'true' || l.text === 'false';
  if (elem === 'i1') {
    if (bool) return l.text === 'true';
    if (l.text === '0' || l.text === '1') return l.text === '1';
    return c.fail(`expected true, false, 0 or 1 for an i1 element, found '${l.text}'`, l.pos);
  }
  if (bool) return c.fail(`true and false are i1 elements; write a number for ${elem}`, l.pos);
  if (FLOAT_TYPE.test(elem)) {
    // mlir-opt reads `1` as an integer and refuses it for a float element type.
    if (!isFloatLiteral(l.text) && !l.text.includes('0x')) {
      c.fail(`expected a float such as ${l.text}.0 for an ${elem} element, found '${l.text}'`, l.pos);
    }
    return finiteElement(c, l.text, elem, l.pos, WHAT);
  }
  const value = numberValue(c, l.text, elem, l.pos);
  const bits = /^i(\d+)$/.exec(elem);
  if (!bits || Number(bits[1]) >= 53) return value;
  // MLIR reads iN from either signed or unsigned text and prints it signed: 255 : i8 is -1.
  const width = 2 ** Number(bits[1]);
  if (value < -width / 2 || value >= width) c.fail(`integer ${l.text} does not fit in ${elem}`, l.pos);
  return value >= width / 2 ? value - width : value;
}

/** The string of `dense<"0x…">`, checked to be whole bytes of hex digits; stored with upper-case digits. */
function hexBlob(c: Cursor): string {
  const pos = c.pos;
  const text = utf8Decode(c.stringBytes());
  const m = HEX_BLOB.exec(text);
  if (!m) {
    c.fail('expected a hex string of whole bytes such as "0x0000803F" in dense<"…">', pos);
  }
  return `0x${m[1]!.toUpperCase()}`;
}

/**
 * The sizes mlir-opt accepts for `hex`: one element (a splat) or every element; i1 is packed 8 to a
 * byte, and one byte of 0x00 or 0xFF is an i1 splat.
 */
function checkHex(c: Cursor, hex: string, type: TensorType, pos: number): string {
  const bytes = (hex.length - 2) / 2;
  const n = numElements(type);
  const fits =
    type.elem === 'i1'
      ? bytes === Math.ceil(n / 8) || hex === '0x00' || hex === '0xFF'
      : bytes === elemBytes(type.elem) || bytes === n * elemBytes(type.elem);
  if (!fits) {
    const need = type.elem === 'i1' ? Math.ceil(n / 8) : n * elemBytes(type.elem);
    c.fail(
      `hex data has ${bytes} bytes, but ${printType(type)} needs ${need} (or one element's worth for a splat)`,
      pos,
    );
  }
  return hex;
}

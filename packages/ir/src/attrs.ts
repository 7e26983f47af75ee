import { FLOAT_TYPE, floatsEqual, printFloatLiteral } from './floats.js';
import { numElements, printType, type TensorType, type Type, typesEqual } from './types.js';
import { utf8Encode } from './utf8.js';

/** Attribute values, the subset of MLIR's builtin attributes the agent dialects use. */
export type Attr =
  | { readonly kind: 'str'; readonly value: string }
  | { readonly kind: 'int'; readonly value: number; readonly type: string }
  | { readonly kind: 'float'; readonly value: number; readonly type: string }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'unit' }
  | { readonly kind: 'array'; readonly items: readonly Attr[] }
  | { readonly kind: 'dense'; readonly elem: string; readonly values: readonly number[] }
  | ElementsAttr
  | { readonly kind: 'dict'; readonly entries: Readonly<Record<string, Attr>> }
  | { readonly kind: 'type'; readonly type: Type };

/** One element of an elements attribute: a boolean for i1, else a finite number of the element type. */
export type Element = number | boolean;

/**
 * MLIR's DenseElementsAttr, `dense<…> : tensor<…>`, over a static shape. Exactly one of: `splat`, the
 * value of every element; `values`, every element in row-major order; `hex`, MLIR's `"0x…"` blob of
 * the raw little-endian bytes (digits upper case), kept as text because nothing here reads weights.
 */
export type ElementsAttr = { readonly kind: 'elements'; readonly type: TensorType } & (
  | { readonly splat: Element }
  | { readonly values: readonly Element[] }
  | { readonly hex: string }
);

export type Attrs = Readonly<Record<string, Attr>>;

export const str = (value: string): Attr => ({ kind: 'str', value });
export const int = (value: number, type = 'i64'): Attr => ({ kind: 'int', value: Math.round(value), type });

/** Converts a plain JS value to an attribute: integers → i64, other numbers → f64. */
export function toAttr(v: string | number | boolean): Attr {
  if (typeof v === 'string') return str(v);
  if (typeof v === 'boolean') return { kind: 'bool', value: v };
  return Number.isInteger(v) ? int(v) : { kind: 'float', value: v, type: 'f64' };
}

const BARE_KEY = /^[A-Za-z_][\w$.]*$/;

export function printKey(k: string): string {
  return BARE_KEY.test(k) ? k : printString(k);
}

/** MLIR's escaping: printable ASCII as is, `\\`, and every other byte as `\XX`. */
export function printString(s: string): string {
  let out = '"';
  for (const b of utf8Encode(s)) {
    if (b === 0x5c) out += '\\\\';
    else if (b >= 0x20 && b < 0x7f && b !== 0x22) out += String.fromCharCode(b);
    else out += `\\${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return `${out}"`;
}

export function printAttr(a: Attr): string {
  switch (a.kind) {
    case 'str':
      return printString(a.value);
    case 'int':
      return `${a.value} : ${a.type}`;
    case 'float':
      return `${printFloatLiteral(a.value, a.type)} : ${a.type}`;
    case 'bool':
      return a.value ? 'true' : 'false';
    case 'unit':
      return 'unit';
    case 'array':
      return `[${a.items.map(printAttr).join(', ')}]`;
    case 'dense':
      return a.values.length === 0
        ? `array<${a.elem}>`
        : `array<${a.elem}: ${a.values.map((v) => printElement(v, a.elem)).join(', ')}>`;
    case 'elements':
      return `dense<${elementsLiteral(a)}> : ${printType(a.type)}`;
    case 'dict':
      return `{${printAttrEntries(a.entries)}}`;
    case 'type':
      return printType(a.type);
  }
}

/** mlir-opt reads a float element only in float spelling: `1.0`, never `1`. */
function printElement(v: Element, elem: string): string {
  if (typeof v === 'boolean') return String(v);
  return FLOAT_TYPE.test(elem) ? printFloatLiteral(v, elem) : String(v);
}

function elementsLiteral(a: ElementsAttr): string {
  if ('hex' in a) return `"${a.hex}"`;
  if ('splat' in a) return printElement(a.splat, a.type.elem);
  if (a.values.length === 0) return '';
  return nestedList(
    a.values.map((v) => printElement(v, a.type.elem)),
    a.type.shape.map((d) => d ?? 1),
  );
}

/** Row-major `items` as the nested lists of `shape` (`[[1, 2], [3, 4]]` for 2x2); a scalar for rank 0. */
function nestedList(items: readonly string[], shape: readonly number[]): string {
  const [outer, ...inner] = shape;
  if (outer === undefined) return items[0] ?? '';
  const stride = inner.reduce((n, d) => n * d, 1);
  const rows = Array.from({ length: outer }, (_, i) =>
    inner.length ? nestedList(items.slice(i * stride, (i + 1) * stride), inner) : items[i],
  );
  return `[${rows.join(', ')}]`;
}

/** Entries sorted by key, as mlir-opt prints them; a unit entry prints as its bare key. */
export function printAttrEntries(entries: Attrs): string {
  return Object.keys(entries)
    .sort()
    .map((k) => {
      const v = entries[k]!;
      return v.kind === 'unit' ? printKey(k) : `${printKey(k)} = ${printAttr(v)}`;
    })
    .join(', ');
}

export function attrEquals(a: Attr, b: Attr): boolean {
  switch (a.kind) {
    case 'str':
    case 'bool':
      return b.kind === a.kind && b.value === a.value;
    case 'int':
      return b.kind === 'int' && b.value === a.value && b.type === a.type;
    case 'float':
      return b.kind === 'float' && b.type === a.type && floatsEqual(a.value, b.value, a.type);
    case 'unit':
      return b.kind === 'unit';
    case 'array':
      return (
        b.kind === 'array' &&
        b.items.length === a.items.length &&
        a.items.every((x, i) => attrEquals(x, b.items[i]!))
      );
    case 'dense':
      return b.kind === 'dense' && b.elem === a.elem && a.values.join(',') === b.values.join(',');
    case 'elements':
      return b.kind === 'elements' && elementsEqual(a, b);
    case 'dict':
      return b.kind === 'dict' && attrsEqual(a.entries, b.entries);
    case 'type':
      return b.kind === 'type' && typesEqual(a.type, b.type);
  }
}

/**
 * Same type and same elements, as MLIR sees them: a splat equals a list of one repeated value (mlir-opt
 * prints `dense<[1, 1]>` as `dense<1>`). Hex blobs are not decoded, so they equal only the same blob.
 */
function elementsEqual(a: ElementsAttr, b: ElementsAttr): boolean {
  if (!typesEqual(a.type, b.type)) return false;
  if ('hex' in a || 'hex' in b) return 'hex' in a && 'hex' in b && a.hex === b.hex;
  const same = (x: Element | undefined, y: Element | undefined) =>
    typeof x === 'number' && typeof y === 'number' ? floatsEqual(x, y, a.type.elem) : x === y;
  if ('splat' in a && 'splat' in b) return same(a.splat, b.splat);
  const count = 'values' in a ? a.values.length : numElements(a.type);
  if ('values' in b && b.values.length !== count) return false;
  const at = (e: typeof a, i: number) => ('values' in e ? e.values[i] : e.splat);
  for (let i = 0; i < count; i++) if (!same(at(a, i), at(b, i))) return false;
  return true;
}

export function attrsEqual(a: Attrs, b: Attrs): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.join('\0') === kb.join('\0') && ka.every((k) => attrEquals(a[k]!, b[k]!));
}

/** Plain value of a scalar attribute (what a demand table row shows); undefined for containers. */
export function scalarValue(a: Attr | undefined): string | number | boolean | undefined {
  if (!a) return undefined;
  switch (a.kind) {
    case 'str':
    case 'int':
    case 'float':
    case 'bool':
      return a.value;
    case 'unit':
      return true;
    case 'type':
      return printType(a.type);
    default:
      return undefined;
  }
}

export function intAttr(attrs: Attrs, key: string): number | undefined {
  const a = attrs[key];
  return a?.kind === 'int' ? a.value : undefined;
}

export function numAttr(attrs: Attrs, key: string): number | undefined {
  const a = attrs[key];
  return a?.kind === 'int' || a?.kind === 'float' ? a.value : undefined;
}

export function strAttr(attrs: Attrs, key: string): string | undefined {
  const a = attrs[key];
  return a?.kind === 'str' ? a.value : undefined;
}

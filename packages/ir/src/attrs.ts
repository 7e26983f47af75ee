import { printType, type Type, typesEqual } from './types.js';
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
  | { readonly kind: 'dict'; readonly entries: Readonly<Record<string, Attr>> }
  | { readonly kind: 'type'; readonly type: Type };

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

/** Shortest decimal that MLIR reads as a float (it needs a `.`); NaN and infinities as hex bits. */
export function printFloatLiteral(v: number, type: string): string {
  if (!Number.isFinite(v)) return floatHex(v, type);
  let s = Object.is(v, -0) ? '-0' : String(v);
  if (!s.includes('.')) {
    const e = s.indexOf('e');
    s = e < 0 ? `${s}.0` : `${s.slice(0, e)}.0${s.slice(e)}`;
  }
  return s;
}

function floatHex(v: number, type: string): string {
  const view = new DataView(new ArrayBuffer(8));
  if (type === 'f32') {
    view.setFloat32(0, v);
    return `0x${view.getUint32(0).toString(16).toUpperCase().padStart(8, '0')}`;
  }
  view.setFloat64(0, v);
  return `0x${view.getBigUint64(0).toString(16).toUpperCase().padStart(16, '0')}`;
}

/** Reads hex float bits as MLIR prints them for NaN/inf (`0x7FF0000000000000 : f64`). */
export function floatFromHex(hex: string, type: string): number {
  const view = new DataView(new ArrayBuffer(8));
  if (type === 'f32') {
    view.setUint32(0, Number.parseInt(hex, 16));
    return view.getFloat32(0);
  }
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
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
      return a.values.length === 0 ? `array<${a.elem}>` : `array<${a.elem}: ${denseValues(a)}>`;
    case 'dict':
      return `{${printAttrEntries(a.entries)}}`;
    case 'type':
      return printType(a.type);
  }
}

/** mlir-opt reads a float element only in float spelling: `1.0`, never `1`. */
function denseValues(a: Extract<Attr, { kind: 'dense' }>): string {
  const float = /^(f|bf)\d+$/.test(a.elem);
  return a.values.map((v) => (float ? printFloatLiteral(v, a.elem) : String(v))).join(', ');
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

function floatsEqual(a: number, b: number, type: string): boolean {
  if (Number.isNaN(a)) return Number.isNaN(b);
  return type === 'f32' ? Math.fround(a) === Math.fround(b) : a === b;
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
    case 'dict':
      return b.kind === 'dict' && attrsEqual(a.entries, b.entries);
    case 'type':
      return b.kind === 'type' && typesEqual(a.type, b.type);
  }
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

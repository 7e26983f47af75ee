// Float encodings MLIR spells: shortest decimals, and hex bits for f16, bf16, f32 and f64.

export const FLOAT_TYPE = /^(f16|bf16|f32|f64)$/;

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

const FLOAT_BITS: Readonly<Record<string, number>> = { f16: 16, bf16: 16, f32: 32, f64: 64 };

/** Width in bits of a float type's encoding (64 for a type this package does not know). */
export function floatBits(type: string): number {
  return FLOAT_BITS[type] ?? 64;
}

/** Reads hex float bits as MLIR prints them for NaN/inf (`0x7FF0000000000000 : f64`). */
export function floatFromHex(hex: string, type: string): number {
  const view = new DataView(new ArrayBuffer(8));
  const bits = floatBits(type);
  if (bits === 16) {
    const b = Number.parseInt(hex, 16);
    if (type === 'f16') return f16Value(b);
    // bf16 is the upper half of an f32.
    view.setUint32(0, b * 0x10000);
    return view.getFloat32(0);
  }
  if (bits === 32) {
    view.setUint32(0, Number.parseInt(hex, 16));
    return view.getFloat32(0);
  }
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

/** IEEE half precision: 1 sign, 5 exponent (bias 15) and 10 fraction bits; Node 20's DataView has no getFloat16. */
function f16Value(b: number): number {
  const exp = (b >> 10) & 0x1f;
  const frac = b & 0x3ff;
  let mag = (0x400 + frac) * 2 ** (exp - 25);
  if (exp === 0) mag = frac * 2 ** -24;
  else if (exp === 0x1f) mag = frac ? Number.NaN : Number.POSITIVE_INFINITY;
  return b & 0x8000 ? -mag : mag;
}

/** Equal as values of `type`: an f32 stored from a longer decimal equals its f32 rounding; NaN equals NaN. */
export function floatsEqual(a: number, b: number, type: string): boolean {
  if (Number.isNaN(a)) return Number.isNaN(b);
  return type === 'f32' ? Math.fround(a) === Math.fround(b) : a === b;
}

// A small deterministic PRNG (mulberry32) and the byte mutations the fuzzer builds cases from.
// Nothing here uses Math.random: one seed gives one sequence of cases.

export class Rng {
  #s: number;

  constructor(seed: number) {
    this.#s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** Printable-ish ASCII, sometimes with control characters and non-ASCII. */
  text(max: number): string {
    const n = this.int(max + 1);
    let s = '';
    for (let i = 0; i < n; i++) {
      const r = this.next();
      if (r < 0.8) s += String.fromCharCode(32 + this.int(95));
      else if (r < 0.9) s += String.fromCharCode(this.int(32));
      else s += String.fromCharCode(128 + this.int(0x2000));
    }
    return s;
  }
}

/** msgpack type bytes and boundary values that steer decoders into their edge cases. */
const INTERESTING = [
  0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9,
  0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
  0xe0, 0xff, 0x7b, 0x7d, 0x5b, 0x5d, 0x22, 0x3a, 0x2c, 0x2e,
];

/** One to four random edits of `input`: bit flips, byte sets, inserts, deletes, truncation, splices. */
export function mutate(rng: Rng, input: Uint8Array, other?: Uint8Array, maxLen = 4096): Uint8Array {
  let b = Array.from(input);
  const edits = rng.chance(0.6) ? 1 : 1 + rng.int(4);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(b.length + 1);
    switch (rng.int(8)) {
      case 0:
        if (b.length) {
          const i = rng.int(b.length);
          b[i] = (b[i] as number) ^ (1 << rng.int(8));
        }
        break;
      case 1:
        if (b.length) b[rng.int(b.length)] = rng.int(256);
        break;
      case 2:
        if (b.length) b[rng.int(b.length)] = rng.pick(INTERESTING);
        break;
      case 3:
        b.splice(at, 0, ...rng.bytes(1 + rng.int(8)));
        break;
      case 4:
        b.splice(at, 1 + rng.int(8));
        break;
      case 5:
        b = b.slice(0, rng.int(b.length + 1));
        break;
      case 6: {
        const from = rng.int(b.length + 1);
        const part = b.slice(from, from + 1 + rng.int(16));
        b.splice(at, 0, ...part);
        break;
      }
      default:
        if (other?.length) {
          const from = rng.int(other.length);
          b.splice(at, rng.int(4), ...other.subarray(from, from + 1 + rng.int(16)));
        }
    }
  }
  if (b.length > maxLen) b.length = maxLen;
  return Uint8Array.from(b);
}

/** A mutated string (edits on its UTF-8 bytes, read back as UTF-8). */
export function mutateText(rng: Rng, s: string): string {
  return Buffer.from(mutate(rng, Buffer.from(s, 'utf8'))).toString('utf8');
}

/** Values that sit on the edges of what handlers expect: wrong types, extremes, odd shapes. */
function oddValue(rng: Rng): unknown {
  return rng.pick<() => unknown>([
    () => null,
    () => undefined,
    () => true,
    () => 0,
    () => -1,
    () => 2 ** 53 + 2,
    () => -(2 ** 31),
    () => Number.NaN,
    () => Number.POSITIVE_INFINITY,
    () => 1e-308,
    () => '',
    () => rng.text(24),
    () => 'x'.repeat(1 + rng.int(20_000)),
    () => [],
    () => [1, 'a', null],
    () => ({}),
    () => ({ __proto__: { polluted: true } }),
    () => JSON.parse('{"__proto__":{"polluted":true}}'),
    () => ({ constructor: { prototype: 1 } }),
    () => rng.bytes(rng.int(32)),
    () => new Date(rng.int(2 ** 31) * 1000),
    () => Array.from({ length: rng.int(2000) }, (_, i) => i),
    () => nest(rng.int(200)),
  ])();
}

function nest(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { v };
  return v;
}

/**
 * One to three edits of a decoded value: a field's value replaced by an odd one, a field removed or
 * added, an array element changed, or the whole value wrapped. The result still encodes, so the case
 * gets past the decoder and tests what the handlers and their checks make of it. Top-level fields in
 * `keep` are left as they are (the message type, so the case reaches its handler).
 */
export function mutateValue(
  rng: Rng,
  input: unknown,
  keys: readonly string[] = [],
  keep: readonly string[] = [],
): unknown {
  let v = structuredCloneSafe(input);
  const edits = 1 + rng.int(3);
  for (let e = 0; e < edits; e++) {
    if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array) && !(v instanceof Date)) {
      const target = v as Record<string, unknown> | unknown[];
      const own = Object.keys(target).filter((k) => !keep.includes(k));
      const r = rng.next();
      if (Array.isArray(target)) {
        if (r < 0.5 && target.length) target[rng.int(target.length)] = oddValue(rng);
        else if (r < 0.8) target.push(oddValue(rng));
        else target.splice(rng.int(target.length + 1), 1);
      } else if (r < 0.55 && own.length) {
        const k = rng.pick(own);
        const o = target as Record<string, unknown>;
        setOwn(o, k, rng.chance(0.3) ? mutateValue(rng, o[k], keys) : oddValue(rng));
      } else if (r < 0.75 && own.length) {
        delete (target as Record<string, unknown>)[rng.pick(own)];
      } else {
        const k = keys.length && rng.chance(0.7) ? rng.pick(keys) : rng.text(8);
        setOwn(target as Record<string, unknown>, k, oddValue(rng));
      }
    } else {
      v = rng.chance(0.5) ? oddValue(rng) : { value: v };
    }
  }
  return v;
}

function structuredCloneSafe(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof Uint8Array) return Uint8Array.from(v);
  if (v instanceof Date) return new Date(v.getTime());
  if (Array.isArray(v)) return v.map(structuredCloneSafe);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) setOwn(out, k, structuredCloneSafe(x));
  return out;
}

/** Sets an own property, even one named `__proto__` (plain assignment would change the prototype). */
function setOwn(o: Record<string, unknown>, k: string, value: unknown): void {
  Object.defineProperty(o, k, { value, enumerable: true, writable: true, configurable: true });
}

/** Value types: ranked tensors, dialect types such as `!agent.text`, and builtin scalars (`i64`, `f32`). */
export type Type =
  | { readonly kind: 'tensor'; readonly shape: readonly (number | null)[]; readonly elem: string }
  | { readonly kind: 'dialect'; readonly dialect: string; readonly name: string }
  | { readonly kind: 'scalar'; readonly name: string };

export type TensorType = Extract<Type, { readonly kind: 'tensor' }>;

export const SCALAR_TYPES: ReadonlySet<string> = new Set([
  'i1',
  'i8',
  'i16',
  'i32',
  'i64',
  'index',
  'f16',
  'bf16',
  'f32',
  'f64',
]);

export function tensorType(shape: readonly (number | null)[], elem = 'f32'): TensorType {
  return { kind: 'tensor', shape, elem };
}

export function dialectType(spelling: string): Type {
  const body = spelling.startsWith('!') ? spelling.slice(1) : spelling;
  const dot = body.indexOf('.');
  return { kind: 'dialect', dialect: body.slice(0, dot), name: body.slice(dot + 1) };
}

export const TEXT: Type = dialectType('!agent.text');
export const JSON_T: Type = dialectType('!agent.json');
export const KV_CACHE: Type = dialectType('!kv.cache');

export function printType(t: Type): string {
  switch (t.kind) {
    case 'tensor': {
      const dims = t.shape.map((d) => (d === null ? '?' : String(d)));
      return `tensor<${[...dims, t.elem].join('x')}>`;
    }
    case 'dialect':
      return `!${t.dialect}.${t.name}`;
    case 'scalar':
      return t.name;
  }
}

export function typesEqual(a: Type, b: Type): boolean {
  return printType(a) === printType(b);
}

/** Bytes per element of a scalar type; sub-byte and unknown types count as one byte. */
export function elemBytes(elem: string): number {
  const m = /^[a-z]+?(\d+)$/.exec(elem);
  if (elem === 'index') return 8;
  return m ? Math.max(1, Number(m[1]) / 8) : 1;
}

/** Element count of a tensor, with unknown (`?`) dimensions counted as 1. */
export function numElements(t: Type): number {
  if (t.kind !== 'tensor') return 1;
  return t.shape.reduce<number>((n, d) => n * (d ?? 1), 1);
}

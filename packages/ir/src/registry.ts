import type { NameGen, Op, Value } from './graph.js';
import type { Type } from './types.js';

export type OpKind = 'agent' | 'llm' | 'kv' | 'tool' | 'memory' | 'text' | 'nn';

export interface OpDemand {
  flops: number;
  bytesRead: number;
  bytesWritten: number;
  memoryBytes: number;
  networkBytes: number;
}

/** A type predicate with the words a diagnostic uses for it ("expected <describe>, found …"). */
export interface TypeConstraint {
  readonly describe: string;
  readonly accepts: (t: Type) => boolean;
}

export type AttrKindSpec = 'str' | 'int' | 'number' | 'bool' | 'unit' | 'type' | 'dense' | 'array' | 'any';

export interface AttrSpec {
  readonly kind: AttrKindSpec;
  readonly required?: boolean;
  /** For an int or number: the least value allowed; the value must also be finite. */
  readonly min?: number;
}

/** What a demand function may ask about the graph around its op. */
export interface DemandContext {
  /** Size in bytes of a value as it travels on an edge. */
  bytesOf(v: Value): number;
}

export interface DecomposeOptions {
  /** Tensor-parallel degree: prefill shards per layer group, joined by `llm.allreduce`. @default 1 */
  readonly tp: number;
  /** Expert-parallel split: FFN shards per layer group, joined by `llm.merge`. @default 1 */
  readonly ep: number;
  /** Layer groups the prefill is cut into when tp or ep > 1. @default 4 */
  readonly layerGroups: number;
}

export interface DecomposeContext {
  readonly names: NameGen;
  readonly options: DecomposeOptions;
}

/** Everything the IR knows about one op: signature, attributes, checks, cost and lowering. */
export interface OpSchema {
  readonly name: string;
  readonly summary: string;
  readonly operands: readonly TypeConstraint[];
  /** Constraint on operands past the fixed ones; absent = no extra operands allowed. */
  readonly variadicOperands?: TypeConstraint;
  readonly results: readonly TypeConstraint[];
  readonly variadicResults?: TypeConstraint;
  readonly attrs?: Readonly<Record<string, AttrSpec>>;
  readonly regions?: number;
  /** Op-specific checks; returns problems as messages. */
  readonly verify?: (op: Op) => readonly string[];
  readonly demand?: (op: Op, ctx: DemandContext) => Partial<OpDemand>;
  /** Replacement ops (same result ids for the values the rest of the graph uses), or undefined to keep. */
  readonly decompose?: (op: Op, ctx: DecomposeContext) => readonly Op[] | undefined;
}

/** The op registry: op name → schema. `defaultRegistry()` holds the stitch dialects. */
export class Registry {
  private readonly schemas = new Map<string, OpSchema>();

  register(...schemas: readonly OpSchema[]): this {
    for (const s of schemas) this.schemas.set(s.name, s);
    return this;
  }

  get(name: string): OpSchema | undefined {
    return this.schemas.get(name);
  }

  names(): string[] {
    return [...this.schemas.keys()].sort();
  }
}

export function constraint(describe: string, accepts: (t: Type) => boolean): TypeConstraint {
  return { describe, accepts };
}

const isDialect = (d: string, n: string) => (t: Type) =>
  t.kind === 'dialect' && t.dialect === d && t.name === n;

export const ANY = constraint('any type', () => true);
export const TEXT_C = constraint('!agent.text', isDialect('agent', 'text'));
export const JSON_C = constraint('!agent.json', isDialect('agent', 'json'));
export const KV_C = constraint('!kv.cache', isDialect('kv', 'cache'));
export const TEXT_OR_JSON = constraint(
  '!agent.text or !agent.json',
  (t) => TEXT_C.accepts(t) || JSON_C.accepts(t),
);
export const TENSOR = constraint('a tensor', (t) => t.kind === 'tensor');
export const FLOAT_TENSOR = constraint(
  'a float tensor',
  (t) => t.kind === 'tensor' && /^(f|bf)\d+$/.test(t.elem),
);
export const TOKENS = constraint(
  'a 1-d tensor of i32 token ids',
  (t) => t.kind === 'tensor' && t.elem === 'i32' && t.shape.length === 1,
);

export function tensorOfRank(rank: number): TypeConstraint {
  return constraint(
    `a rank-${rank} float tensor`,
    (t) => FLOAT_TENSOR.accepts(t) && t.kind === 'tensor' && t.shape.length === rank,
  );
}

import { type Attrs, attrsEqual } from './attrs.js';
import type { SourceLoc } from './errors.js';
import { printType, type Type } from './types.js';

/** An SSA value: `id` is its name without `%` (unique in a graph), `type` its type. */
export interface Value {
  readonly id: string;
  readonly type: Type;
}

/** One operation. Immutable: passes build new ops instead of editing these. */
export interface Op {
  readonly name: string;
  readonly operands: readonly Value[];
  readonly results: readonly Value[];
  readonly attrs: Attrs;
  readonly regions: readonly Region[];
  /** Where the op was parsed from, for diagnostics; absent for built ops. */
  readonly loc?: SourceLoc;
  /** Where each attribute's name was parsed, for diagnostics about one attribute; absent for built ops. */
  readonly attrLocs?: Readonly<Record<string, SourceLoc>>;
}

export interface Block {
  readonly args: readonly Value[];
  readonly ops: readonly Op[];
}

export interface Region {
  readonly blocks: readonly Block[];
}

/** A whole IR file: the top-level ops (mlir-opt wraps them in a `builtin.module`, the parser unwraps it). */
export interface Graph {
  readonly ops: readonly Op[];
}

export interface OpInit {
  operands?: readonly Value[];
  results?: readonly Value[];
  attrs?: Attrs;
  regions?: readonly Region[];
  loc?: SourceLoc;
  attrLocs?: Readonly<Record<string, SourceLoc>>;
}

export function makeOp(name: string, init: OpInit = {}): Op {
  const op: Op = {
    name,
    operands: init.operands ?? [],
    results: init.results ?? [],
    attrs: init.attrs ?? {},
    regions: init.regions ?? [],
    ...(init.loc ? { loc: init.loc } : {}),
    ...(init.attrLocs ? { attrLocs: init.attrLocs } : {}),
  };
  return Object.freeze(op);
}

export function singleBlockRegion(args: readonly Value[], ops: readonly Op[]): Region {
  return { blocks: [{ args, ops }] };
}

/** The dialect prefix of an op name (`llm.call` → `llm`). */
export function dialectOf(opName: string): string {
  const dot = opName.indexOf('.');
  return dot < 0 ? opName : opName.slice(0, dot);
}

/** Visits every op, outer before inner, in textual order. */
export function* walkOps(ops: readonly Op[]): Generator<Op> {
  for (const op of ops) {
    yield op;
    for (const r of op.regions) for (const b of r.blocks) yield* walkOps(b.ops);
  }
}

/** Every value name defined in the graph (results and block arguments). */
export function definedNames(ops: readonly Op[]): Set<string> {
  const names = new Set<string>();
  for (const op of walkOps(ops)) {
    for (const v of op.results) names.add(v.id);
    for (const r of op.regions) for (const b of r.blocks) for (const a of b.args) names.add(a.id);
  }
  return names;
}

/** Hands out value names not yet used in a graph (`base`, `base_1`, …). */
export class NameGen {
  private readonly used: Set<string>;
  /**
   * Per base, the suffix below which every name is taken. Names are never given back, so the
   * search for a free one resumes there: thousands of names from one base stay linear.
   */
  private readonly next = new Map<string, number>();
  constructor(ops: readonly Op[]) {
    this.used = definedNames(ops);
  }
  fresh(base: string): string {
    let i = this.next.get(base) ?? 0;
    let name = i === 0 ? base : `${base}_${i}`;
    while (this.used.has(name)) name = `${base}_${++i}`;
    this.next.set(base, i + 1);
    this.used.add(name);
    return name;
  }
}

/** MLIR spells a region holding one empty, argument-less block and a region with no blocks alike: `{}`. */
function isEmptyRegion(r: Region): boolean {
  const only = r.blocks[0];
  return (
    r.blocks.length === 0 || (r.blocks.length === 1 && only!.args.length === 0 && only!.ops.length === 0)
  );
}

/**
 * A name-free description of a graph: values are numbered in definition order, so two graphs
 * that differ only in SSA names (as after mlir-opt renumbers them) compare equal.
 */
function canonical(graph: Graph): unknown {
  const index = new Map<string, number>();
  const number = (v: Value): string => {
    index.set(v.id, index.size);
    return printType(v.type);
  };
  const ref = (v: Value): string => `${index.get(v.id) ?? `?${v.id}`}:${printType(v.type)}`;
  const ops = (list: readonly Op[]): unknown[] =>
    list.map((op) => ({
      name: op.name,
      operands: op.operands.map(ref),
      results: op.results.map(number),
      regions: op.regions.map((r) =>
        isEmptyRegion(r) ? [] : r.blocks.map((b) => ({ args: b.args.map(number), ops: ops(b.ops) })),
      ),
    }));
  return ops(graph.ops);
}

function sameAttrs(a: readonly Op[], b: readonly Op[]): boolean {
  const la = [...walkOps(a)];
  const lb = [...walkOps(b)];
  return la.length === lb.length && la.every((op, i) => attrsEqual(op.attrs, lb[i]!.attrs));
}

/** Structural equality: same ops, types, attributes and use-def edges, whatever the value names. */
export function graphsEqual(a: Graph, b: Graph): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b)) && sameAttrs(a.ops, b.ops);
}

import { type Attr, printAttr } from './attrs.js';
import { type Diagnostic, IrError, IrErrorCode } from './errors.js';
import type { Graph, Op } from './graph.js';
import type { AttrKindSpec, OpSchema, Registry, TypeConstraint } from './registry.js';
import { SIZE_ATTRS } from './sizes.js';
import { printType, type Type, typesEqual } from './types.js';

export interface VerifyOptions {
  readonly registry: Registry;
  /** Reject ops the registry does not know. @default false */
  readonly strict?: boolean;
}

const KIND_WORDS: Record<AttrKindSpec, string> = {
  str: 'a string',
  int: 'an integer',
  number: 'a number',
  bool: 'a boolean',
  unit: 'a unit attribute (the bare name)',
  type: 'a type',
  dense: 'a dense array',
  array: 'an array',
  any: 'any attribute',
};

function attrMatches(a: Attr, kind: AttrKindSpec): boolean {
  if (kind === 'any') return true;
  if (kind === 'number') return a.kind === 'int' || a.kind === 'float';
  return a.kind === kind;
}

/** A problem with an op; `attr` names the attribute it is about, so the diagnostic can point at it. */
interface Problem {
  readonly message: string;
  readonly attr?: string;
}

/** Checks a numeric attribute against `min`; NaN and infinities never pass (sizes and counts are finite). */
function boundProblem(key: string, a: Attr, kind: AttrKindSpec, min: number): Problem[] {
  if ((a.kind !== 'int' && a.kind !== 'float') || (Number.isFinite(a.value) && a.value >= min)) return [];
  const allowed = kind === 'int' ? `an integer ≥ ${min}` : `a finite number ≥ ${min}`;
  return [{ message: `attribute '${key}': expected ${allowed}, found ${printAttr(a)}`, attr: key }];
}

/**
 * Sizes `valueBytes` reads from whatever op produces a value, so they are checked on every op,
 * known or not: a negative or non-finite one would reach the demand table and the planner.
 */
function sizeProblems(op: Op, s: OpSchema | undefined): Problem[] {
  return SIZE_ATTRS.flatMap((key) => {
    const a = op.attrs[key];
    return a && !s?.attrs?.[key] ? boundProblem(key, a, 'number', 0) : [];
  });
}

function checkValues(
  what: string,
  values: readonly { type: Type }[],
  fixed: readonly TypeConstraint[],
  variadic: TypeConstraint | undefined,
): string[] {
  const count = variadic ? `at least ${fixed.length}` : `${fixed.length}`;
  if (values.length < fixed.length || (!variadic && values.length > fixed.length)) {
    return [`expected ${count} ${what}(s), found ${values.length}`];
  }
  return values.flatMap((v, i) => {
    const c = fixed[i] ?? variadic!;
    return c.accepts(v.type) ? [] : [`${what} #${i}: expected ${c.describe}, found ${printType(v.type)}`];
  });
}

function checkSchema(op: Op, s: OpSchema): Problem[] {
  const problems: Problem[] = [
    ...checkValues('operand', op.operands, s.operands, s.variadicOperands),
    ...checkValues('result', op.results, s.results, s.variadicResults),
  ].map((message) => ({ message }));
  for (const [key, spec] of Object.entries(s.attrs ?? {})) {
    const a = op.attrs[key];
    if (!a) {
      if (spec.required)
        problems.push({ message: `missing required attribute '${key}' (${KIND_WORDS[spec.kind]})` });
    } else if (!attrMatches(a, spec.kind)) {
      problems.push({
        message: `attribute '${key}': expected ${KIND_WORDS[spec.kind]}, found ${printAttr(a)}`,
        attr: key,
      });
    } else if (spec.min !== undefined) problems.push(...boundProblem(key, a, spec.kind, spec.min));
  }
  const regions = s.regions ?? 0;
  if (op.regions.length !== regions)
    problems.push({ message: `expected ${regions} region(s), found ${op.regions.length}` });
  return problems;
}

/** Walks a graph checking SSA (defined before use, one type per value) and every op's schema. */
class Verifier {
  readonly diagnostics: Diagnostic[] = [];
  private readonly scopes: Map<string, Type>[] = [new Map()];
  private readonly ids = new Set<string>();
  constructor(private readonly opts: VerifyOptions) {}

  /** Reports at the attribute a problem is about where the parser recorded it, else at the op. */
  private report(op: Op, message: string, attr?: string): void {
    const loc = (attr !== undefined ? op.attrLocs?.[attr] : undefined) ?? op.loc;
    this.diagnostics.push({ message, ...(loc ? { loc } : {}) });
  }

  /** Value ids are unique in the whole graph (not only per scope): demand rows and passes key on them. */
  private unique(op: Op, id: string): void {
    if (this.ids.has(id))
      this.report(op, `value '%${id}' is defined twice; value names must be unique in a graph`);
    this.ids.add(id);
  }

  private typeOf(id: string): Type | undefined {
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const t = this.scopes[i]!.get(id);
      if (t) return t;
    }
    return undefined;
  }

  ops(list: readonly Op[]): void {
    for (const op of list) this.op(op);
  }

  private op(op: Op): void {
    for (const v of op.operands) {
      const t = this.typeOf(v.id);
      if (!t) this.report(op, `use of undefined value '%${v.id}' in '${op.name}'; define it before this op`);
      else if (!typesEqual(t, v.type)) {
        this.report(
          op,
          `type mismatch for '%${v.id}' in '${op.name}': expected ${printType(t)}, found ${printType(v.type)}`,
        );
      }
    }
    const schema = this.opts.registry.get(op.name);
    if (schema) {
      for (const p of checkSchema(op, schema)) this.report(op, `'${op.name}' ${p.message}`, p.attr);
      for (const p of schema.verify?.(op) ?? []) this.report(op, p);
    } else if (this.opts.strict) {
      this.report(op, `unknown op '${op.name}'; register it in the dialect registry or drop --strict`);
    }
    for (const p of sizeProblems(op, schema)) this.report(op, `'${op.name}' ${p.message}`, p.attr);
    for (const r of op.regions) {
      for (const b of r.blocks) {
        for (const a of b.args) this.unique(op, a.id);
        this.scopes.push(new Map(b.args.map((a) => [a.id, a.type])));
        this.ops(b.ops);
        this.scopes.pop();
      }
    }
    for (const v of op.results) {
      this.unique(op, v.id);
      this.scopes[this.scopes.length - 1]!.set(v.id, v.type);
    }
  }
}

/** All problems in a graph, in textual order. */
export function verifyGraph(graph: Graph, opts: VerifyOptions): Diagnostic[] {
  const v = new Verifier(opts);
  v.ops(graph.ops);
  return v.diagnostics;
}

/** Throws `IrError` (code `IR_VERIFY`) listing every problem, or returns the graph unchanged. */
export function verify(graph: Graph, opts: VerifyOptions): Graph {
  const diagnostics = verifyGraph(graph, opts);
  if (diagnostics.length > 0) throw new IrError(IrErrorCode.Verify, diagnostics);
  return graph;
}

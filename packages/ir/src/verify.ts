import { type Attr, printAttr } from './attrs.js';
import { type Diagnostic, IrError, IrErrorCode } from './errors.js';
import type { Graph, Op } from './graph.js';
import type { AttrKindSpec, OpSchema, Registry, TypeConstraint } from './registry.js';
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

function checkSchema(op: Op, s: OpSchema): string[] {
  const problems = [
    ...checkValues('operand', op.operands, s.operands, s.variadicOperands),
    ...checkValues('result', op.results, s.results, s.variadicResults),
  ];
  for (const [key, spec] of Object.entries(s.attrs ?? {})) {
    const a = op.attrs[key];
    if (!a) {
      if (spec.required) problems.push(`missing required attribute '${key}' (${KIND_WORDS[spec.kind]})`);
    } else if (!attrMatches(a, spec.kind)) {
      problems.push(`attribute '${key}': expected ${KIND_WORDS[spec.kind]}, found ${printAttr(a)}`);
    }
  }
  const regions = s.regions ?? 0;
  if (op.regions.length !== regions)
    problems.push(`expected ${regions} region(s), found ${op.regions.length}`);
  return problems.map((p) => `'${op.name}' ${p}`);
}

/** Walks a graph checking SSA (defined before use, one type per value) and every op's schema. */
class Verifier {
  readonly diagnostics: Diagnostic[] = [];
  private readonly scopes: Map<string, Type>[] = [new Map()];
  private readonly ids = new Set<string>();
  constructor(private readonly opts: VerifyOptions) {}

  private report(op: Op, message: string): void {
    this.diagnostics.push({ message, ...(op.loc ? { loc: op.loc } : {}) });
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
      for (const p of [...checkSchema(op, schema), ...(schema.verify?.(op) ?? [])]) this.report(op, p);
    } else if (this.opts.strict) {
      this.report(op, `unknown op '${op.name}'; register it in the dialect registry or drop --strict`);
    }
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

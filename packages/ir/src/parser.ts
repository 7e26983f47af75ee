import type { Attrs } from './attrs.js';
import { IrError, type SourceLoc } from './errors.js';
import { type Block, type Graph, NameGen, type Op, type Region, type Value } from './graph.js';
import { Cursor } from './lexer.js';
import { MAX_OP_NAME_BYTES, overflowIndex, type ParseOptions, resolveParseLimits } from './limits.js';
import { parseAliasDef, parseAttrDict } from './parse-attrs.js';
import { parseType } from './parse-types.js';
import { printType, type Type, typesEqual } from './types.js';

const VALUE_NAME = /%([\w$.-]+)(#\d+)?/y;

interface Use {
  readonly name: string;
  readonly pos: number;
}

/**
 * Parses MLIR generic syntax (what `mlir-opt --mlir-print-op-generic` prints) into a Graph; top-level
 * alias definitions may come between ops, each before its first use.
 */
class Parser {
  private readonly c: Cursor;
  private readonly scopes: Map<string, Value>[] = [new Map()];
  private readonly names = new NameGen([]);
  private opCount = 0;
  private valueCount = 0;

  constructor(src: string, options?: ParseOptions) {
    const limits = resolveParseLimits(options);
    const over = overflowIndex(src, limits.maxInputBytes);
    // Only the text up to the limit is indexed for line numbers: enough to place the error.
    this.c = new Cursor(over < 0 ? src : src.slice(0, over + 1), limits);
    if (over >= 0) {
      this.c.fail(
        `input is larger than ${limits.maxInputBytes} bytes; split the graph or raise the parse option maxInputBytes`,
        over,
      );
    }
  }

  file(): Graph {
    const ops: Op[] = [];
    try {
      while (!this.c.atEnd()) {
        if (this.c.peek() === '#' || this.c.peek() === '!') parseAliasDef(this.c);
        else ops.push(this.op());
      }
    } catch (e) {
      // maxDepth keeps nesting far below the stack; a caller that raised it a lot still gets a located error.
      if (!(e instanceof RangeError)) throw e;
      this.c.fail('input is nested too deeply for the parser; lower the parse option maxDepth');
    }
    const only = ops[0];
    if (ops.length === 1 && only?.name === 'builtin.module' && only.regions.length === 1) {
      const blocks = only.regions[0]!.blocks;
      if (blocks.length === 1) return { ops: blocks[0]!.ops };
    }
    return { ops };
  }

  private lookup(name: string): Value | undefined {
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const scope = this.scopes[i]!;
      const v = scope.get(name) ?? (name.includes('#') ? undefined : scope.get(`${name}#0`));
      if (v) return v;
    }
    return undefined;
  }

  /**
   * Defines a value under its source name. Ids stay unique in the whole graph even where MLIR lets
   * sibling regions reuse a name: a reused name gets a `_N` suffix (names carry no meaning).
   */
  private define(name: string, type: Type, pos: number): Value {
    this.countValue(name, pos);
    if (this.lookup(name)) this.c.fail(`redefinition of value '%${name}'; give it another name`, pos);
    const v = { id: this.names.fresh(name), type };
    this.scopes[this.scopes.length - 1]!.set(name, v);
    return v;
  }

  /** Counts one more value, failing at `pos` past `maxValues`. */
  private countValue(name: string, pos: number): void {
    const max = this.c.limits.maxValues;
    if (++this.valueCount > max) {
      this.c.fail(
        `'%${name}' brings the graph to more than ${max} values; use fewer or raise the parse option maxValues`,
        pos,
      );
    }
  }

  private valueRef(): Use {
    this.c.skipWs();
    const pos = this.c.pos;
    const m = this.c.rawMatch(VALUE_NAME);
    if (m === undefined) return this.c.expected("a value such as '%0'", pos);
    return { name: m.slice(1), pos };
  }

  /** `%a, %b:2 =` → the result names, expanded (`b#0`, `b#1`). */
  private resultNames(): Use[] {
    const names: Use[] = [];
    do {
      const ref = this.valueRef();
      if (ref.name.includes('#'))
        this.c.fail(`a result name cannot carry '#'; write '%${ref.name.split('#')[0]}'`, ref.pos);
      if (this.c.eat(':')) {
        this.c.skipWs();
        const n = this.c.rawMatch(/\d+/y);
        if (n === undefined) return this.c.expected('a result count');
        // Checked before the names exist: the count is untrusted text (`%a:4000000`).
        this.checkResultCount(names.length + Number(n), n, ref);
        for (let i = 0; i < Number(n); i++) names.push({ name: `${ref.name}#${i}`, pos: ref.pos });
      } else names.push(ref);
    } while (this.c.eat(','));
    this.c.expect('=');
    return names;
  }

  private checkResultCount(total: number, text: string, ref: Use): void {
    const max = this.c.limits.maxValues;
    if (!(total <= max - this.valueCount)) {
      this.c.fail(
        `'%${ref.name}' declares ${text} results, more than the ${max} values a graph may have; use fewer or raise the parse option maxValues`,
        ref.pos,
      );
    }
  }

  private op(): Op {
    const c = this.c;
    c.skipWs();
    const start = c.pos;
    if (++this.opCount > c.limits.maxOps) {
      c.fail(
        `the graph has more than ${c.limits.maxOps} ops; split it or raise the parse option maxOps`,
        start,
      );
    }
    const loc: SourceLoc = c.locAt(start);
    const resultNames = c.peek() === '%' ? this.resultNames() : [];
    c.skipWs();
    const namePos = c.pos;
    if (c.peek() !== '"') {
      return c.expected('a quoted op name such as "llm.call" (only the generic form is read)', namePos);
    }
    const name = this.opName();
    c.expect('(');
    const uses: Use[] = [];
    if (!c.eat(')')) {
      do uses.push(this.valueRef());
      while (c.eat(','));
      c.expect(')');
    }
    const operands = uses.map((u) => this.resolve(u));
    if (c.lookingAt('[')) c.fail('successor blocks are not supported in agent graphs');
    let attrs: Attrs = {};
    // A null prototype keeps keys such as "__proto__" as plain entries.
    const attrLocs: Record<string, SourceLoc> = Object.create(null);
    if (c.eat('<')) {
      attrs = parseAttrDict(c, attrLocs);
      c.expect('>');
    }
    const regions = c.peek() === '(' ? this.regions() : [];
    if (c.peek() === '{') attrs = { ...attrs, ...parseAttrDict(c, attrLocs) };
    c.expect(':');
    const sigPos = c.pos;
    const [inTypes, outTypes] = this.functionType();
    this.skipLoc();
    this.checkOperandTypes(uses, operands, inTypes, sigPos);
    if (outTypes.length !== resultNames.length) {
      c.fail(`expected ${resultNames.length} result type(s) for '${name}', found ${outTypes.length}`, sigPos);
    }
    const results = resultNames.map((u, i) => this.define(u.name, outTypes[i]!, u.pos));
    return {
      name,
      operands: operands.map((v, i) => ({ id: v.id, type: inTypes[i] ?? v.type })),
      results,
      attrs,
      regions,
      loc,
      attrLocs,
    };
  }

  private opName(): string {
    const c = this.c;
    const pos = c.pos;
    const bytes = c.stringBytes();
    if (bytes.length > MAX_OP_NAME_BYTES) {
      c.fail(`op name is longer than ${MAX_OP_NAME_BYTES} bytes; expected "dialect.op"`, pos);
    }
    const name = String.fromCharCode(...bytes);
    if (!/^[A-Za-z_][\w$]*\.[\w$.]+$/.test(name)) {
      c.fail(`expected an op name of the form "dialect.op", found "${name}"`, pos);
    }
    return name;
  }

  private resolve(u: Use): Value {
    const v = this.lookup(u.name);
    if (!v) this.c.fail(`use of undefined value '%${u.name}'; define it before this op`, u.pos);
    return v;
  }

  private checkOperandTypes(uses: Use[], operands: Value[], types: Type[], sigPos: number): void {
    if (types.length !== operands.length) {
      this.c.fail(`expected ${operands.length} operand type(s), found ${types.length}`, sigPos);
    }
    operands.forEach((v, i) => {
      const declared = types[i]!;
      if (!typesEqual(v.type, declared)) {
        const u = uses[i]!;
        this.c.fail(
          `type mismatch for '%${u.name}': expected ${printType(v.type)} (its type where defined), found ${printType(declared)}`,
          u.pos,
        );
      }
    });
  }

  private typeList(): Type[] {
    const c = this.c;
    c.expect('(');
    const types: Type[] = [];
    if (c.eat(')')) return types;
    do types.push(parseType(c));
    while (c.eat(','));
    c.expect(')');
    return types;
  }

  private functionType(): [Type[], Type[]] {
    const ins = this.typeList();
    this.c.expect('->');
    const outs = this.c.peek() === '(' ? this.typeList() : [parseType(this.c)];
    return [ins, outs];
  }

  /** Skips a trailing `loc(...)`: locations are not part of the graph. */
  private skipLoc(): void {
    const c = this.c;
    if (!c.lookingAt('loc(')) return;
    c.pos += 3;
    let depth = 0;
    do {
      const ch = c.src[c.pos++];
      if (ch === undefined) c.fail("unterminated 'loc(' — add the closing ')'");
      if (ch === '"') {
        c.pos--;
        c.stringBytes();
      } else if (ch === '(') depth++;
      else if (ch === ')') depth--;
    } while (depth > 0);
  }

  private regions(): Region[] {
    const c = this.c;
    c.expect('(');
    const regions: Region[] = [];
    do regions.push(this.region());
    while (c.eat(','));
    c.expect(')');
    return regions;
  }

  private region(): Region {
    const c = this.c;
    c.skipWs();
    c.enter(c.pos);
    c.expect('{');
    this.scopes.push(new Map());
    const blocks: Block[] = [];
    while (!c.eat('}')) {
      if (c.atEnd()) c.expected("'}' to close the region");
      blocks.push(this.block(blocks.length === 0));
    }
    this.scopes.pop();
    c.leave();
    return { blocks };
  }

  private block(entry: boolean): Block {
    const c = this.c;
    const args: Value[] = [];
    if (c.eat('^')) {
      if (c.rawMatch(/[\w$.-]+/y) === undefined) c.expected('a block name');
      if (c.eat('(')) {
        do {
          const ref = this.valueRef();
          c.expect(':');
          args.push(this.define(ref.name, parseType(c), ref.pos));
        } while (c.eat(','));
        c.expect(')');
      }
      c.expect(':');
    } else if (!entry) c.expected('a block label such as ^bb1');
    const ops: Op[] = [];
    while (c.peek() !== '}' && c.peek() !== '^' && !c.atEnd()) ops.push(this.op());
    return { args, ops };
  }
}

/**
 * Parses IR text; throws `IrError` (code `IR_PARSE`) with the line and column of the first problem.
 * `options` tightens or loosens the size limits (defaults: `PARSE_LIMITS`).
 */
export function parseGraph(text: string, file?: string, options?: ParseOptions): Graph {
  try {
    return new Parser(text, options).file();
  } catch (e) {
    if (e instanceof IrError && file !== undefined) throw e.withFile(file);
    throw e;
  }
}

import { printAttrEntries } from './attrs.js';
import type { Graph, Op, Region, Value } from './graph.js';
import { printType } from './types.js';

const VALID_NAME = /^([A-Za-z_$.-][\w$.-]*|\d+)$/;

/** Maps value ids to printable, unique SSA names (ids that MLIR cannot spell are sanitised). */
class Names {
  private readonly byId = new Map<string, string>();
  private readonly used = new Set<string>();
  name(v: Value): string {
    const known = this.byId.get(v.id);
    if (known !== undefined) return known;
    let base = VALID_NAME.test(v.id) ? v.id : v.id.replace(/[^\w$.-]/g, '_');
    if (!VALID_NAME.test(base)) base = `v${base}`;
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    this.byId.set(v.id, name);
    return name;
  }
  use(v: Value): string {
    return `%${this.byId.get(v.id) ?? this.name(v)}`;
  }
}

function typeList(values: readonly Value[]): string {
  return values.map((v) => printType(v.type)).join(', ');
}

function printRegion(r: Region, names: Names, indent: string): string {
  const lines: string[] = [];
  r.blocks.forEach((b, i) => {
    if (i > 0 || b.args.length > 0) {
      const args = b.args.map((a) => `%${names.name(a)}: ${printType(a.type)}`).join(', ');
      lines.push(`${indent}^bb${i}${args ? `(${args})` : ''}:`);
    }
    for (const op of b.ops) lines.push(printOp(op, names, `${indent}  `));
  });
  return `{\n${lines.join('\n')}${lines.length ? '\n' : ''}${indent}}`;
}

function printOp(op: Op, names: Names, indent: string): string {
  const results = op.results.length ? `${op.results.map((v) => `%${names.name(v)}`).join(', ')} = ` : '';
  const operands = op.operands.map((v) => names.use(v)).join(', ');
  const regions = op.regions.length
    ? ` (${op.regions.map((r) => printRegion(r, names, indent)).join(', ')})`
    : '';
  const attrs = Object.keys(op.attrs).length ? ` {${printAttrEntries(op.attrs)}}` : '';
  const res = op.results.length === 1 ? typeList(op.results) : `(${typeList(op.results)})`;
  const head = `${indent}${results}"${op.name}"(${operands})`;
  return `${head}${regions}${attrs} : (${typeList(op.operands)}) -> ${res}`;
}

/** Prints a graph in MLIR generic syntax, one op per line, attributes sorted as mlir-opt does. */
export function printGraph(graph: Graph): string {
  const names = new Names();
  return `${graph.ops.map((op) => printOp(op, names, '')).join('\n')}\n`;
}

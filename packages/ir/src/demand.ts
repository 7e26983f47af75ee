import { type Attr, int, scalarValue } from './attrs.js';
import { IrError, IrErrorCode } from './errors.js';
import { dialectOf, type Graph, makeOp, type Op, type Value, walkOps } from './graph.js';
import { rewriteOps } from './passes/rewrite.js';
import type { DemandContext, OpDemand, OpKind, Registry } from './registry.js';
import { valueBytes } from './sizes.js';

export interface DemandRow {
  id: string;
  op: string;
  kind: OpKind;
  demand: OpDemand;
  deps: string[];
  edgeBytes: Record<string, number>;
  attrs: Record<string, string | number | boolean>;
}

/** Ops that only give a graph its shape: they get no row; values flow through them. */
const STRUCTURAL = new Set(['agent.graph', 'agent.yield', 'nn.yield']);
const KINDS: ReadonlySet<string> = new Set(['agent', 'llm', 'kv', 'tool', 'memory', 'text', 'nn']);
const DEMAND_KEYS = ['flops', 'bytes_read', 'bytes_written', 'memory_bytes', 'network_bytes'] as const;

/** Ops whose result is their input passed on unchanged: its size is the input's size. */
const PASS_THROUGH = new Set(['agent.route', 'text.privacy_filter']);

/**
 * Who produces each value, and how many ops use it. Block arguments of an `agent.graph` resolve to
 * the matching operand and its results to the yielded values, so edges cross sub-agent boundaries.
 */
class Producers {
  private readonly byId = new Map<string, Op>();
  private readonly alias = new Map<string, Value>();
  private readonly uses = new Map<string, number>();
  /** Edge size per source value id, filled as `bytes` resolves pass-through chains. */
  private readonly sizes = new Map<string, number>();

  constructor(ops: readonly Op[]) {
    for (const op of walkOps(ops)) {
      for (const r of op.results) this.byId.set(r.id, op);
      const body = op.regions[0]?.blocks[0];
      if (op.name === 'agent.graph' && body) this.aliasGraph(op, body.args, body.ops);
      if (STRUCTURAL.has(op.name)) continue;
      for (const v of op.operands) {
        const id = this.source(v).id;
        this.uses.set(id, (this.uses.get(id) ?? 0) + 1);
      }
    }
  }

  private aliasGraph(op: Op, args: readonly Value[], body: readonly Op[]): void {
    args.forEach((a, i) => {
      if (op.operands[i]) this.alias.set(a.id, op.operands[i]);
    });
    const last = body[body.length - 1];
    if (last?.name !== 'agent.yield') return;
    op.results.forEach((r, i) => {
      if (last.operands[i]) this.alias.set(r.id, last.operands[i]);
    });
  }

  /** The value an alias stands for (block argument → outer operand, graph result → yielded value). */
  source(v: Value): Value {
    let cur = v;
    for (let a = this.alias.get(cur.id); a; a = this.alias.get(cur.id)) cur = a;
    return cur;
  }

  of(v: Value): Op | undefined {
    return this.byId.get(this.source(v).id);
  }

  useCount(v: Value): number {
    return this.uses.get(this.source(v).id) ?? 0;
  }

  /**
   * Follows pass-through producers up to the value that sets the size, iteratively and caching
   * every value on the way: chains of routes and filters (an unrolled loop makes them thousands
   * long) must neither grow the stack nor be walked again for each value on them.
   */
  bytes(v: Value): number {
    const chain = new Set<string>();
    let cur = this.source(v);
    let size = this.sizes.get(cur.id);
    while (size === undefined) {
      chain.add(cur.id);
      const producer = this.byId.get(cur.id);
      const input = producer && PASS_THROUGH.has(producer.name) ? producer.operands[0] : undefined;
      const next = input && this.source(input);
      // An unverified graph may feed a route its own result: stop there rather than loop forever.
      if (!next || chain.has(next.id)) size = valueBytes(cur, producer);
      else {
        cur = next;
        size = this.sizes.get(cur.id);
      }
    }
    for (const id of chain) this.sizes.set(id, size);
    return size;
  }
}

function demandOf(op: Op, registry: Registry, p: Producers): OpDemand {
  const ctx: DemandContext = { bytesOf: (v) => p.bytes(v) };
  const d = registry.get(op.name)?.demand?.(op, ctx) ?? {};
  const edges = op.results.reduce((n, r) => n + p.bytes(r) * p.useCount(r), 0);
  return {
    flops: d.flops ?? 0,
    bytesRead: d.bytesRead ?? 0,
    bytesWritten: d.bytesWritten ?? 0,
    memoryBytes: d.memoryBytes ?? 0,
    networkBytes: (d.networkBytes ?? 0) + edges,
  };
}

/** Attaches `demand = {flops, bytes_read, bytes_written, memory_bytes, network_bytes}` (i64) to every op. */
export function annotateDemand(graph: Graph, registry: Registry): Graph {
  const p = new Producers(graph.ops);
  const annotate = (op: Op): Op[] => {
    if (STRUCTURAL.has(op.name)) return [op];
    const d = demandOf(op, registry, p);
    const values = [d.flops, d.bytesRead, d.bytesWritten, d.memoryBytes, d.networkBytes];
    const entries: Record<string, Attr> = {};
    DEMAND_KEYS.forEach((k, i) => {
      entries[k] = int(values[i]!);
    });
    return [makeOp(op.name, { ...op, attrs: { ...op.attrs, demand: { kind: 'dict', entries } } })];
  };
  return { ops: rewriteOps(graph.ops, annotate) };
}

function readDemand(op: Op, id: string): OpDemand {
  const a = op.attrs['demand'];
  if (a?.kind !== 'dict') {
    throw new IrError(IrErrorCode.Pass, [
      {
        message: `op '${id}' (${op.name}) has no demand; run annotate-demand first`,
        ...(op.loc ? { loc: op.loc } : {}),
      },
    ]);
  }
  const n = (k: (typeof DEMAND_KEYS)[number]) => Number(scalarValue(a.entries[k]) ?? 0);
  return {
    flops: n('flops'),
    bytesRead: n('bytes_read'),
    bytesWritten: n('bytes_written'),
    memoryBytes: n('memory_bytes'),
    networkBytes: n('network_bytes'),
  };
}

function rowOps(ops: readonly Op[], out: Op[]): void {
  for (const op of ops) {
    if (op.name === 'agent.loop') {
      throw new IrError(IrErrorCode.Pass, [
        {
          message: 'demand table needs an acyclic graph; run unroll-loops first',
          ...(op.loc ? { loc: op.loc } : {}),
        },
      ]);
    }
    if (!STRUCTURAL.has(op.name)) out.push(op);
    // A fused op is one row; its inner ops are its implementation.
    if (op.name !== 'nn.fused') for (const r of op.regions) for (const b of r.blocks) rowOps(b.ops, out);
  }
}

/** One row per op of an annotated, loop-free graph: its demand, the ops it depends on, bytes per edge. */
export function demandTable(graph: Graph): DemandRow[] {
  const p = new Producers(graph.ops);
  const ops: Op[] = [];
  rowOps(graph.ops, ops);
  const idOf = new Map<Op, string>();
  ops.forEach((op, i) => {
    idOf.set(op, op.results[0]?.id ?? `${op.name}#${i}`);
  });
  return ops.map((op) => {
    const id = idOf.get(op)!;
    const edgeBytes: Record<string, number> = {};
    for (const v of op.operands) {
      const producer = p.of(v);
      const dep = producer && idOf.get(producer);
      if (dep !== undefined) edgeBytes[dep] = (edgeBytes[dep] ?? 0) + p.bytes(v);
    }
    const attrs: Record<string, string | number | boolean> = {};
    for (const [k, a] of Object.entries(op.attrs)) {
      const v = scalarValue(a);
      if (v !== undefined && k !== 'demand') attrs[k] = v;
    }
    const dialect = dialectOf(op.name);
    const kind = (KINDS.has(dialect) ? dialect : 'agent') as OpKind;
    return {
      id,
      op: op.name,
      kind,
      demand: readDemand(op, id),
      deps: Object.keys(edgeBytes),
      edgeBytes,
      attrs,
    };
  });
}

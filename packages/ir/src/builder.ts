import { type Attrs, int, str, toAttr } from './attrs.js';
import { IrError, IrErrorCode } from './errors.js';
import { type Graph, makeOp, type Op, singleBlockRegion, type Value } from './graph.js';
import { parseGraph } from './parser.js';
import { printGraph } from './printer.js';
import { JSON_T, TEXT, type Type, tensorType } from './types.js';

export type ExtraAttrs = Record<string, string | number | boolean>;

interface Node {
  readonly name: string;
  readonly op: string;
  readonly results: readonly Type[];
  readonly attrs: Attrs;
  readonly body?: AgentGraphBuilder;
}

interface Edge {
  readonly from: string;
  readonly index: number;
  readonly to: string;
}

export interface LlmOptions {
  model: string;
  promptTokens: number;
  maxTokens: number;
  attrs?: ExtraAttrs;
}

const buildError = (message: string) => new IrError(IrErrorCode.Build, [{ message }], '<builder>');

function attrsOf(base: Record<string, string | number | boolean>, extra: ExtraAttrs = {}): Attrs {
  const out: Record<string, Attrs[string]> = Object.create(null);
  for (const [k, v] of Object.entries({ ...base, ...extra })) out[k] = toAttr(v);
  return out;
}

/**
 * Builds agent graphs in the LangGraph manner: named nodes, explicit edges, conditional edges,
 * bounded loops and sub-agents. A node's inputs are its incoming edges, in the order they were added.
 */
export class AgentGraphBuilder {
  private readonly nodes = new Map<string, Node>();
  private readonly edges: Edge[] = [];
  /** Edges by target, built on first use and dropped whenever an edge is added. */
  private byTarget: Map<string, Edge[]> | undefined;

  constructor(
    readonly name: string,
    private readonly graphAttrs: ExtraAttrs = {},
  ) {}

  node(
    name: string,
    op: string,
    results: readonly Type[],
    attrs: Attrs = {},
    body?: AgentGraphBuilder,
  ): this {
    if (this.nodes.has(name)) throw buildError(`node '${name}' is defined twice; node names must be unique`);
    this.nodes.set(name, { name, op, results, attrs, ...(body ? { body } : {}) });
    return this;
  }

  input(name: string, type: Type = TEXT): this {
    return this.node(name, 'agent.input', [type], attrsOf({ name }));
  }

  output(name: string): this {
    return this.node(name, 'agent.output', [], attrsOf({ name }));
  }

  llm(name: string, o: LlmOptions): this {
    const base = { model: o.model, prompt_tokens: o.promptTokens, max_tokens: o.maxTokens };
    return this.node(name, 'llm.call', [TEXT], attrsOf(base, o.attrs));
  }

  tool(name: string, tool: string, attrs?: ExtraAttrs): this {
    return this.node(name, 'tool.invoke', [JSON_T], attrsOf({ tool }, attrs));
  }

  memoryLoad(name: string, key: string, attrs?: ExtraAttrs): this {
    return this.node(name, 'memory.load', [JSON_T], attrsOf({ key }, attrs));
  }

  memoryStore(name: string, key: string, attrs?: ExtraAttrs): this {
    return this.node(name, 'memory.store', [], attrsOf({ key }, attrs));
  }

  stt(name: string, engine: string, attrs?: ExtraAttrs): this {
    return this.node(name, 'text.stt', [TEXT], attrsOf({ engine }, attrs));
  }

  tts(name: string, engine: string, samples: number, attrs?: ExtraAttrs): this {
    return this.node(name, 'text.tts', [tensorType([samples], 'f32')], attrsOf({ engine }, attrs));
  }

  privacyFilter(name: string, attrs?: ExtraAttrs): this {
    return this.node(name, 'text.privacy_filter', [TEXT], attrsOf({}, attrs));
  }

  /** A sub-agent: `body` has one input per incoming edge and one output per result. */
  subgraph(name: string, body: AgentGraphBuilder): this {
    return this.node(name, 'agent.graph', body.outputTypes(), attrsOf({ sym_name: body.name }), body);
  }

  /** A bounded cycle: `body` maps the carried values to their next values, at most `maxIterations` times. */
  loop(name: string, body: AgentGraphBuilder, o: { maxIterations: number }): this {
    return this.node(
      name,
      'agent.loop',
      body.outputTypes(),
      { max_iterations: int(o.maxIterations), sym_name: str(body.name) },
      body,
    );
  }

  edge(from: string, to: string): this {
    this.edges.push({ from, index: 0, to });
    this.byTarget = undefined;
    return this;
  }

  /** Routes `from`'s value to one of `routes` (label → node) chosen at run time by `condition`. */
  conditionalEdge(from: string, condition: string, routes: Record<string, string>): this {
    const labels = Object.keys(routes);
    const type = this.nodes.get(from)?.results[0];
    if (!type) throw buildError(`conditionalEdge: node '${from}' does not exist or has no result`);
    const router = `${from}.route`;
    const branches = { kind: 'array', items: labels.map(str) } as const;
    this.node(
      router,
      'agent.route',
      labels.map(() => type),
      { condition: str(condition), branches },
    );
    this.edge(from, router);
    labels.forEach((l, index) => {
      this.edges.push({ from: router, index, to: routes[l]! });
      this.byTarget = undefined;
    });
    return this;
  }

  private outputTypes(): Type[] {
    return this.ordered()
      .filter((n) => n.op === 'agent.output')
      .flatMap((n) => this.incoming(n.name).map((e) => this.nodes.get(e.from)!.results[e.index]!));
  }

  private incoming(node: string): Edge[] {
    if (!this.byTarget) {
      this.byTarget = new Map();
      for (const e of this.edges) this.byTarget.set(e.to, [...(this.byTarget.get(e.to) ?? []), e]);
    }
    return this.byTarget.get(node) ?? [];
  }

  /** Nodes in dependency order (insertion order among ready nodes); a cycle is an error. */
  private ordered(): Node[] {
    for (const e of this.edges) {
      for (const n of [e.from, e.to])
        if (!this.nodes.has(n)) throw buildError(`edge ${e.from} → ${e.to}: no node '${n}'`);
    }
    const indegree = new Map([...this.nodes.keys()].map((n) => [n, 0]));
    for (const e of this.edges) indegree.set(e.to, indegree.get(e.to)! + 1);
    const outgoing = new Map<string, Edge[]>();
    for (const e of this.edges) outgoing.set(e.from, [...(outgoing.get(e.from) ?? []), e]);
    const out: Node[] = [];
    const ready = [...this.nodes.keys()].filter((n) => indegree.get(n) === 0);
    while (ready.length > 0) {
      const n = ready.shift()!;
      out.push(this.nodes.get(n)!);
      for (const e of outgoing.get(n) ?? []) {
        indegree.set(e.to, indegree.get(e.to)! - 1);
        if (indegree.get(e.to) === 0) ready.push(e.to);
      }
    }
    if (out.length < this.nodes.size) {
      const stuck = [...this.nodes.keys()].filter((n) => !out.some((o) => o.name === n));
      throw buildError(
        `cycle through ${stuck.join(', ')}; express agent ⇄ tool cycles with .loop(name, body, { maxIterations })`,
      );
    }
    return out;
  }

  /** Ops of this graph; as a body, inputs become block arguments and outputs the yield. */
  private toOps(prefix: string, asBody: boolean): { args: Value[]; ops: Op[] } {
    const values = new Map<string, Value[]>();
    const args: Value[] = [];
    const ops: Op[] = [];
    const yields: Value[] = [];
    for (const n of this.ordered()) {
      const operands = this.incoming(n.name).map((e) => values.get(e.from)![e.index]!);
      const id = `${prefix}${n.name}`;
      const results = n.results.map((type, i) => ({ id: n.results.length > 1 ? `${id}.${i}` : id, type }));
      values.set(n.name, results);
      if (asBody && n.op === 'agent.input') args.push(...results);
      else if (asBody && n.op === 'agent.output') yields.push(...operands);
      else if (n.body) {
        const inner = n.body.toOps(`${id}.`, true);
        const region = singleBlockRegion(inner.args, inner.ops);
        ops.push(makeOp(n.op, { operands, results, attrs: n.attrs, regions: [region] }));
      } else ops.push(makeOp(n.op, { operands, results, attrs: n.attrs }));
    }
    if (asBody) ops.push(makeOp('agent.yield', { operands: yields }));
    return { args, ops };
  }

  /** The whole agent as one `agent.graph` op named after the builder. */
  toGraph(): Graph {
    const { ops } = this.toOps('', false);
    const attrs = attrsOf({ sym_name: this.name }, this.graphAttrs);
    return { ops: [makeOp('agent.graph', { attrs, regions: [singleBlockRegion([], ops)] })] };
  }

  toMLIR(): string {
    return printGraph(this.toGraph());
  }

  static fromMLIR(text: string): Graph {
    return parseGraph(text);
  }
}

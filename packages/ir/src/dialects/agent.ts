import { intAttr } from '../attrs.js';
import type { Op } from '../graph.js';
import { ANY, type OpSchema } from '../registry.js';
import { printType, type Type } from '../types.js';

const sig = (types: readonly { type: Type }[]) => types.map((v) => printType(v.type)).join(', ');

/** Checks a single-block region whose arguments match `args` and whose yield matches `yields`. */
function checkBody(op: Op, args: readonly { type: Type }[], yields: readonly { type: Type }[]): string[] {
  const block = op.regions[0]?.blocks;
  if (block?.length !== 1) return [`${op.name} needs a region with exactly one block`];
  const body = block[0]!;
  const problems: string[] = [];
  if (sig(body.args) !== sig(args)) {
    problems.push(`${op.name} block arguments: expected (${sig(args)}), found (${sig(body.args)})`);
  }
  const last = body.ops[body.ops.length - 1];
  if (yields.length > 0 || last?.name === 'agent.yield') {
    if (last?.name !== 'agent.yield')
      problems.push(
        `${op.name} body must end with "agent.yield", found ${last ? `"${last.name}"` : 'an empty block'}`,
      );
    else if (sig(last.operands) !== sig(yields)) {
      problems.push(`${op.name} yield: expected (${sig(yields)}), found (${sig(last.operands)})`);
    }
  }
  return problems;
}

export const agentDialect: readonly OpSchema[] = [
  {
    name: 'agent.graph',
    summary: 'An agent (or sub-agent): a subgraph in one region; operands feed its block arguments',
    operands: [],
    variadicOperands: ANY,
    results: [],
    variadicResults: ANY,
    attrs: { sym_name: { kind: 'str' }, sla_ms: { kind: 'number' } },
    regions: 1,
    verify: (op) => checkBody(op, op.operands, op.results),
  },
  {
    name: 'agent.input',
    summary: 'A graph input (user query, audio, …)',
    operands: [],
    results: [ANY],
    attrs: { name: { kind: 'str', required: true } },
  },
  {
    name: 'agent.output',
    summary: 'A graph output',
    operands: [ANY],
    variadicOperands: ANY,
    results: [],
    attrs: { name: { kind: 'str', required: true } },
  },
  {
    name: 'agent.loop',
    summary:
      'A bounded cycle (agent ⇄ tool): operands seed the carried values, the body yields the next ones',
    operands: [ANY],
    variadicOperands: ANY,
    results: [ANY],
    variadicResults: ANY,
    attrs: { max_iterations: { kind: 'int' } },
    regions: 1,
    verify: (op) => {
      const bound = intAttr(op.attrs, 'max_iterations');
      const problems: string[] = [];
      if (bound === undefined || bound < 1) {
        problems.push('unbounded loop: agent.loop needs a max_iterations attribute (an integer ≥ 1)');
      }
      if (sig(op.operands) !== sig(op.results)) {
        problems.push(`agent.loop results: expected (${sig(op.operands)}), found (${sig(op.results)})`);
      }
      return [...problems, ...checkBody(op, op.operands, op.operands)];
    },
  },
  {
    name: 'agent.yield',
    summary: 'Terminator of agent.graph and agent.loop bodies',
    operands: [],
    variadicOperands: ANY,
    results: [],
  },
  {
    name: 'agent.route',
    summary: 'A conditional edge: forwards its input to one of its results, chosen by `condition`',
    operands: [ANY],
    results: [ANY],
    variadicResults: ANY,
    attrs: { condition: { kind: 'str', required: true }, branches: { kind: 'array' } },
    verify: (op) =>
      op.results.some((r) => printType(r.type) !== printType(op.operands[0]!.type))
        ? ['agent.route results must have the type of its operand']
        : [],
  },
];

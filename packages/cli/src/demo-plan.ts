import type { Deployment } from '@stitch/agents';

const say = (line = '') => process.stdout.write(`${line}\n`);

/** The placement the coordinator chose: solver, estimates and a row per op, modelled devices labelled. */
export function printPlan(d: Deployment): void {
  say();
  say(
    `placement of ${d.name} (SLA ${d.slaMs} ms) by ${d.solver}: est. ${d.latencyMs.toFixed(1)} ms, $${d.usdPerRequest.toExponential(3)} per request`,
  );
  say(
    `solve time: heuristic ${d.solveMs.heuristic.toFixed(1)} ms, MILP ${d.solveMs.milp === null ? 'n/a' : `${d.solveMs.milp.toFixed(1)} ms`}`,
  );
  for (const n of d.notes) say(`  note: ${n}`);
  const rows = d.ops.map((o) => [
    o.id,
    o.op,
    o.modelled ? `virtual:${o.classId}` : o.classId,
    o.modelled ? 'modelled' : 'measured',
    o.node,
    o.estimatedMs.toFixed(2),
    o.usdPerRequest.toExponential(2),
  ]);
  table(['op', 'kind', 'device', 'timing', 'node', 'est. ms', '$/request'], rows);
  say(
    'LLM ops run a Llama-architecture decoder on synthetic weights (untrained, byte vocabulary) on compiled',
  );
  say('kernels; the plan sizes them as the graph says (tiny-llama, its prompt and new tokens).');
  say();
}

export function table(head: string[], rows: string[][]): void {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i]!)).join('  ');
  say(line(head));
  say(line(w.map((n) => '-'.repeat(n))));
  for (const r of rows) say(line(r));
}

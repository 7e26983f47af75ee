import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultRegistry, demandTable, PassManager, parseGraph } from '../src/index.js';

const registry = defaultRegistry();
const IN = '%q = "agent.input"() {bytes = 4096 : i64, name = "q"} : () -> !agent.text\n';

test('a long chain of privacy filters in an unrolled loop: every edge carries the input size', () => {
  const filters = Array.from(
    { length: 20 },
    (_, i) =>
      `  %f${i + 1} = "text.privacy_filter"(%f${i}) {model_params = 1000 : i64} : (!agent.text) -> !agent.text\n`,
  ).join('');
  const text = `${IN}%l = "agent.loop"(%q) ({
^bb0(%f0: !agent.text):
${filters}  "agent.yield"(%f20) : (!agent.text) -> ()
}) {max_iterations = 1024 : i64} : (!agent.text) -> !agent.text
"agent.output"(%l) {name = "a"} : (!agent.text) -> ()
`;
  const g = new PassManager({ registry }).add('unroll-loops').add('annotate-demand').run(parseGraph(text));
  const rows = demandTable(g);
  const filtered = rows.filter((r) => r.op === 'text.privacy_filter');
  assert.equal(filtered.length, 20 * 1024);
  const last = filtered[filtered.length - 1]!;
  assert.deepEqual(Object.values(last.edgeBytes), [4096]);
  // 2·params FLOPs per token of the 4096-byte input (4 bytes a token).
  assert.equal(last.demand.flops, 2 * 1000 * 1024);
  assert.deepEqual(rows.find((r) => r.op === 'agent.output')!.edgeBytes, { [last.id]: 4096 });
});

test('a flat chain of 12 000 agent.route ops: the edge into the output carries the input size', () => {
  const n = 12_000;
  let text = IN;
  for (let i = 0; i < n; i++) {
    const from = i === 0 ? 'q' : `r${i - 1}`;
    text += `%r${i} = "agent.route"(%${from}) {condition = "c"} : (!agent.text) -> !agent.text\n`;
  }
  text += `"agent.output"(%r${n - 1}) {name = "a"} : (!agent.text) -> ()\n`;
  const rows = demandTable(new PassManager({ registry }).add('annotate-demand').run(parseGraph(text)));
  assert.deepEqual(rows.find((r) => r.op === 'agent.output')!.edgeBytes, { [`r${n - 1}`]: 4096 });
  assert.equal(rows.find((r) => r.id === `r${n - 2}`)!.demand.networkBytes, 4096);
});

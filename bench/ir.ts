// `pnpm bench ir`: parse, print, verify and pass throughput of @stitch/ir on growing agent graphs.
// One JSON object per line: {bench, case, ops, parse_ms, print_ms, verify_ms, passes_ms, ops_per_s}.

import { walkOps } from '@stitch/ir/internal';
import { defaultRegistry, PassManager, parseGraph, printGraph, verify } from '../packages/ir/src/index.js';
import { chainGraph } from './lib/chain-graph.js';

const registry = defaultRegistry();

function time<T>(fn: () => T, reps: number): { ms: number; value: T } {
  let value = fn();
  const start = performance.now();
  for (let i = 0; i < reps; i++) value = fn();
  return { ms: (performance.now() - start) / reps, value };
}

// --quick: the smallest graph only (the test command runs this).
for (const n of process.argv.includes('--quick') ? [100] : [100, 1000, 5000]) {
  const g = chainGraph(n);
  const reps = n >= 5000 ? 3 : 10;
  const text = printGraph(g);
  const ops = [...walkOps(g.ops)].length;
  const parse = time(() => parseGraph(text), reps);
  const print = time(() => printGraph(parse.value), reps);
  const ver = time(() => verify(parse.value, { registry, strict: true }), reps);
  const pm = new PassManager({ registry, verifyEach: false })
    .add('decompose', { tp: 2 })
    .add('annotate-demand');
  const passes = time(() => pm.run(parse.value), reps);
  const out = [...walkOps(passes.value.ops)].length;
  process.stdout.write(
    `${JSON.stringify({
      bench: 'ir',
      case: `chain-${n}`,
      ops,
      ops_after_decompose: out,
      bytes: text.length,
      parse_ms: +parse.ms.toFixed(2),
      print_ms: +print.ms.toFixed(2),
      verify_ms: +ver.ms.toFixed(2),
      decompose_annotate_ms: +passes.ms.toFixed(2),
      parse_ops_per_s: Math.round(ops / (parse.ms / 1000)),
    })}\n`,
  );
}

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sampleFiles } from '../samples/agents.js';
import { defaultRegistry, graphsEqual, PassManager, parseGraph, printGraph, verify } from '../src/index.js';
import { walkOps } from '../src/internal.js';
import { mlirOpt } from './mlir-opt.js';

const samples = join(dirname(fileURLToPath(import.meta.url)), '..', 'samples');
const registry = defaultRegistry();

for (const { file, builder } of sampleFiles()) {
  test(`${file}: matches its builder, verifies strictly, and survives mlir-opt both ways`, () => {
    const graph = parseGraph(readFileSync(join(samples, file), 'utf8'), file);
    assert.ok(graphsEqual(graph, builder.toGraph()), 'sample file is stale: run samples/generate.ts');
    verify(graph, { registry, strict: true });
    const back = parseGraph(mlirOpt(printGraph(graph)));
    assert.ok(graphsEqual(back, graph), 'mlir-opt output parses to a different graph');
    assert.equal(printGraph(parseGraph(printGraph(back))), printGraph(back));
  });
}

test('attribute names like __proto__ stay plain entries', () => {
  const g = parseGraph('"x.y"() {"__proto__" = 1, constructor = 2, d = {"__proto__" = "s"}} : () -> ()');
  assert.deepEqual(Object.keys(g.ops[0]!.attrs).sort(), ['__proto__', 'constructor', 'd']);
  const back = mlirOpt(printGraph(g));
  assert.match(back, /__proto__ = 1 : i64/);
  assert.ok(graphsEqual(parseGraph(back), g));
});

test('names reused in sibling regions (legal MLIR) get unique ids', () => {
  const text = `"x.a"() ({
^bb0(%v: i64):
  "x.use"(%v) : (i64) -> ()
}, {
^bb0(%v: f32):
  "x.use"(%v) : (f32) -> ()
}) : () -> ()
%v = "x.b"() : () -> i64
`;
  const g = parseGraph(text);
  const ids = [...walkOps(g.ops)].flatMap((o) => [
    ...o.results,
    ...o.regions.flatMap((r) => r.blocks.flatMap((b) => b.args)),
  ]);
  assert.deepEqual(
    ids.map((v) => v.id),
    ['v', 'v_1', 'v_2'],
  );
  verify(g, { registry });
  assert.ok(graphsEqual(parseGraph(mlirOpt(printGraph(g))), g));
});

test('decomposed, sharded and annotated graphs also survive mlir-opt', () => {
  const text = readFileSync(join(samples, 'voice-agent.llama3-70b.mlir'), 'utf8');
  const pm = new PassManager({ registry, strict: true })
    .add('unroll-loops')
    .add('decompose', { tp: 4, layerGroups: 2 })
    .add('annotate-demand');
  const annotated = pm.run(parseGraph(text));
  const back = parseGraph(mlirOpt(printGraph(annotated)));
  assert.ok(graphsEqual(back, annotated));
  verify(back, { registry, strict: true });
});

test('mlir-opt spellings the printer never uses still parse: hex floats, %x:2 results, i1, escapes, loc', () => {
  const text = `"builtin.module"() ({
  %0:2 = "x.a"() {f = 0x7FF0000000000000 : f64, b = 1 : i1, s = "\\C3\\A9\\0A"} : () -> (i64, f32) loc("a.mlir":1:1)
  "x.b"(%0#1, %0#0) : (f32, i64) -> ()
}) : () -> ()`;
  const g = parseGraph(text);
  const [a, b] = g.ops;
  assert.deepEqual(a?.attrs['f'], { kind: 'float', value: Number.POSITIVE_INFINITY, type: 'f64' });
  assert.deepEqual(a?.attrs['b'], { kind: 'bool', value: true });
  assert.deepEqual(a?.attrs['s'], { kind: 'str', value: 'é\n' });
  assert.deepEqual(
    b?.operands.map((v) => v.id),
    ['0#1', '0#0'],
  );
  assert.ok(graphsEqual(parseGraph(mlirOpt(printGraph(g))), g));
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { voiceAgent } from '../samples/agents.js';
import {
  AgentGraphBuilder,
  type DecomposeOptions,
  defaultRegistry,
  demandTable,
  type Graph,
  graphsEqual,
  IrError,
  IrErrorCode,
  makeOp,
  PassManager,
  parseGraph,
  printGraph,
  Registry,
  type Value,
} from '../src/index.js';
import { decompose, unrollLoops, walkOps } from '../src/internal.js';
import { mlirOpt } from './mlir-opt.js';

const registry = defaultRegistry();
// Llama 3 8B public architecture facts (the same ones src/models.ts holds).
const PARAMS = 8.03e9;
const LAYERS = 32;
const D_MODEL = 4096;
const KV_HEADS = 8;
const HEAD_DIM = 128;
const KV_PER_TOKEN = 2 * LAYERS * KV_HEADS * HEAD_DIM * 2; // K and V, FP16

const CALL = `"agent.graph"() ({
  %q = "agent.input"() {name = "q"} : () -> !agent.text
  %a = "llm.call"(%q) {max_tokens = 128 : i64, model = "llama3-8b", prompt_tokens = 512 : i64} : (!agent.text) -> !agent.text
  "agent.output"(%a) {name = "a"} : (!agent.text) -> ()
}) {sym_name = "one_call"} : () -> ()
`;

function run(
  g: Graph,
  ...passes: [Parameters<PassManager['add']>[0], Parameters<PassManager['add']>[1]?][]
): Graph {
  const pm = new PassManager({ registry, strict: true });
  for (const [name, opts] of passes) pm.add(name, opts);
  return pm.run(g);
}

test('llm.call on Llama 3 8B decomposes into granular ops with hand-computed demand', () => {
  const g = run(parseGraph(CALL), ['decompose'], ['annotate-demand']);
  const rows = demandTable(g);
  assert.deepEqual(
    rows.map((r) => r.op),
    [
      'agent.input',
      'llm.tokenize',
      'llm.prefill',
      'kv.transfer',
      'llm.decode',
      'llm.detokenize',
      'agent.output',
    ],
  );
  const by = (op: string) => rows.find((r) => r.op === op)!;
  const T = 512;
  const N = 128;
  const prefill = by('llm.prefill');
  assert.equal(prefill.demand.flops, 2 * PARAMS * T + 2 * LAYERS * T * T * D_MODEL);
  assert.equal(prefill.demand.bytesRead, PARAMS * 2);
  assert.equal(prefill.demand.bytesWritten, KV_PER_TOKEN * T);
  assert.equal(prefill.demand.memoryBytes, PARAMS * 2 + KV_PER_TOKEN * T);
  assert.equal(KV_PER_TOKEN, 131072);
  const transfer = by('kv.transfer');
  assert.deepEqual(transfer.deps, [prefill.id]);
  assert.equal(transfer.edgeBytes[prefill.id], KV_PER_TOKEN * T);
  const positions = N * T + (N * (N - 1)) / 2;
  const decode = by('llm.decode');
  assert.equal(decode.demand.flops, N * 2 * PARAMS + 4 * LAYERS * D_MODEL * positions);
  assert.equal(decode.demand.bytesRead, N * PARAMS * 2 + KV_PER_TOKEN * positions);
  assert.equal(decode.demand.memoryBytes, PARAMS * 2 + KV_PER_TOKEN * (T + N));
  assert.equal(by('llm.detokenize').id, 'a', 'the call result id is kept for its users');
  assert.deepEqual(by('agent.output').deps, ['a']);
});

test('tensor parallelism shards prefill per layer group with an all-reduce each, same total FLOPs', () => {
  const plain = demandTable(run(parseGraph(CALL), ['decompose'], ['annotate-demand']));
  const tp = demandTable(
    run(parseGraph(CALL), ['decompose', { tp: 4, layerGroups: 2 }], ['annotate-demand']),
  );
  const sum = (rows: typeof plain, op: string) =>
    rows.filter((r) => r.op === op).reduce((n, r) => n + r.demand.flops, 0);
  assert.equal(tp.filter((r) => r.op === 'llm.prefill').length, 8);
  const reduces = tp.filter((r) => r.op === 'llm.allreduce');
  assert.equal(reduces.length, 2);
  assert.equal(reduces[0]!.deps.length, 4);
  assert.ok(Math.abs(sum(tp, 'llm.prefill') - sum(plain, 'llm.prefill')) < 1e3);
  // Ring all-reduce over 16 layers, 2 per layer: 2·16 · 2·(4−1) · T·d·2 bytes, plus its outgoing edges.
  const ring = 2 * 16 * 2 * 3 * 512 * D_MODEL * 2;
  assert.ok(reduces[0]!.demand.networkBytes >= ring);
  const ep = demandTable(
    run(parseGraph(CALL), ['decompose', { ep: 2, layerGroups: 4 }], ['annotate-demand']),
  );
  assert.equal(ep.filter((r) => r.op === 'llm.merge').length, 4);
});

test("a call's tp and layer_groups attrs split it as the pass options would; a tp its heads do not allow is refused", () => {
  const withAttrs = CALL.replace(
    'prompt_tokens = 512 : i64}',
    'prompt_tokens = 512 : i64, tp = 2 : i64, layer_groups = 3 : i64}',
  );
  const byAttrs = demandTable(run(parseGraph(withAttrs), ['decompose'], ['annotate-demand']));
  const byOptions = demandTable(
    run(parseGraph(CALL), ['decompose', { tp: 2, layerGroups: 3 }], ['annotate-demand']),
  );
  assert.deepEqual(byAttrs, byOptions);
  assert.equal(byAttrs.filter((r) => r.op === 'llm.allreduce').length, 3);
  const byEp = demandTable(
    run(
      parseGraph(CALL.replace('prompt_tokens = 512 : i64}', 'prompt_tokens = 512 : i64, ep = 2 : i64}')),
      ['decompose'],
      ['annotate-demand'],
    ),
  );
  assert.deepEqual(byEp, demandTable(run(parseGraph(CALL), ['decompose', { ep: 2 }], ['annotate-demand'])));
  assert.equal(byEp.find((r) => r.op === 'llm.decode')!.attrs.ep, 2);
  // The split attrs describe the call only: no granular op carries layer_groups.
  assert.ok(byAttrs.every((r) => r.attrs.layer_groups === undefined));
  const bad = CALL.replace('prompt_tokens = 512 : i64}', 'prompt_tokens = 512 : i64, tp = 3 : i64}');
  assert.throws(
    () => run(parseGraph(bad), ['decompose']),
    (e: Error) =>
      /tp = 3 does not divide llama3-8b's 32 heads and 8 KV heads/.test(e.message) &&
      /:3:\d+/.test(e.message),
  );
});

test('unroll-loops expands the bounded research loop to its bound; the table is a DAG', () => {
  const g = run(voiceAgent('llama3-8b').toGraph(), ['unroll-loops'], ['decompose'], ['annotate-demand']);
  const names = [...walkOps(g.ops)].map((o) => o.name);
  assert.equal(names.filter((n) => n === 'agent.loop').length, 0);
  assert.equal(names.filter((n) => n === 'tool.invoke').length, 3);
  assert.equal(names.filter((n) => n === 'llm.prefill').length, 6);
  const rows = demandTable(g);
  const seen = new Set<string>();
  for (const r of rows) {
    for (const d of r.deps) assert.ok(seen.has(d), `${r.id} depends on ${d} which comes later`);
    seen.add(r.id);
  }
  assert.throws(() => demandTable(run(voiceAgent('llama3-8b').toGraph(), ['annotate-demand'])), {
    code: 'IR_PASS',
  });
});

test('fuse merges a chain of elementwise nn ops and reads only the chain inputs', () => {
  const text = `%x = "agent.input"() {name = "x"} : () -> tensor<64x128xf32>
%w = "agent.input"() {name = "w"} : () -> tensor<128x256xf32>
%g = "nn.matmul"(%x, %w) {dtype = f32} : (tensor<64x128xf32>, tensor<128x256xf32>) -> tensor<64x256xf32>
%u = "nn.matmul"(%x, %w) {dtype = f32} : (tensor<64x128xf32>, tensor<128x256xf32>) -> tensor<64x256xf32>
%s = "nn.swiglu"(%g, %u) {dtype = f32} : (tensor<64x256xf32>, tensor<64x256xf32>) -> tensor<64x256xf32>
%r = "nn.add"(%s, %g) {dtype = f32} : (tensor<64x256xf32>, tensor<64x256xf32>) -> tensor<64x256xf32>
"agent.output"(%r) {name = "y"} : (tensor<64x256xf32>) -> ()
`;
  const plain = demandTable(run(parseGraph(text), ['annotate-demand']));
  const fusedGraph = run(parseGraph(text), ['fuse'], ['annotate-demand']);
  assert.ok(
    graphsEqual(parseGraph(mlirOpt(printGraph(fusedGraph))), fusedGraph),
    'nn.fused survives mlir-opt',
  );
  const fused = demandTable(fusedGraph);
  assert.deepEqual(
    fused.map((r) => r.op),
    ['agent.input', 'agent.input', 'nn.matmul', 'nn.matmul', 'nn.fused', 'agent.output'],
  );
  const f = fused.find((r) => r.op === 'nn.fused')!;
  const elementwise = plain.filter((r) => r.op === 'nn.swiglu' || r.op === 'nn.add');
  assert.equal(
    f.demand.flops,
    elementwise.reduce((n, r) => n + r.demand.flops, 0),
  );
  const tensor = 64 * 256 * 4;
  assert.equal(f.demand.bytesRead, 2 * tensor, 'reads g and u once, never the intermediate');
  assert.equal(f.demand.bytesWritten, tensor);
});

test('builder: conditional edges, sub-agents, and cycles rejected with advice', () => {
  const sub = new AgentGraphBuilder('lookup')
    .input('q')
    .tool('t', 'kb')
    .output('o')
    .edge('q', 't')
    .edge('t', 'o');
  const g = new AgentGraphBuilder('router')
    .input('q')
    .llm('classify', { model: 'tiny-llama', promptTokens: 64, maxTokens: 4 })
    .subgraph('kb', sub)
    .llm('chat', { model: 'tiny-llama', promptTokens: 64, maxTokens: 64 })
    .output('a')
    .output('b')
    .edge('q', 'classify')
    .conditionalEdge('classify', 'needs_lookup', { yes: 'kb', no: 'chat' })
    .edge('kb', 'a')
    .edge('chat', 'b');
  const graph = AgentGraphBuilder.fromMLIR(g.toMLIR());
  const rows = demandTable(run(graph, ['decompose'], ['annotate-demand']));
  const route = rows.find((r) => r.op === 'agent.route')!;
  assert.equal(route.attrs['condition'], 'needs_lookup');
  assert.ok(
    rows.some((r) => r.op === 'tool.invoke' && r.deps.includes(route.id)),
    'sub-agent input resolves to the router',
  );
  // classify emits maxTokens (4) × 4 bytes of text; the router passes it on along both branches,
  // one of which enters the sub-agent: edges inside sub-agents count as uses of the outer value.
  assert.equal(route.demand.networkBytes, 2 * 4 * 4);
  const tool = rows.find((r) => r.op === 'tool.invoke')!;
  const output = rows.find((r) => r.op === 'agent.output' && r.deps.includes(tool.id))!;
  assert.equal(tool.demand.networkBytes, output.edgeBytes[tool.id]);
  const cyclic = new AgentGraphBuilder('c')
    .input('q')
    .tool('a', 'x')
    .tool('b', 'y')
    .edge('q', 'a')
    .edge('a', 'b')
    .edge('b', 'a');
  assert.throws(
    () => cyclic.toGraph(),
    (e: Error & { code?: string }) => e.code === 'IR_BUILD' && /maxIterations/.test(e.message),
  );
});

test('the tp, ep and layerGroups pass options get the checks the call attrs get', () => {
  const refused = (options: Partial<DecomposeOptions>, message: RegExp) =>
    assert.throws(
      () => decompose(parseGraph(CALL), registry, options),
      (e: unknown) => e instanceof IrError && e.code === IrErrorCode.Pass && message.test(e.message),
    );
  refused({ tp: 10_000 }, /^<input>:3:3: error: decompose: option tp = 10000 is not an integer in 1\.\.64$/);
  refused({ tp: 100_000 }, /option tp = 100000 is not an integer in 1\.\.64/);
  refused({ ep: 0 }, /option ep = 0 is not an integer in 1\.\.64/);
  refused({ layerGroups: 2.5 }, /option layerGroups = 2\.5 is not an integer in 1\.\.64/);
  refused({ tp: Number.NaN }, /option tp = NaN is not an integer in 1\.\.64/);
  refused({ tp: 3 }, /option tp = 3 does not divide llama3-8b's 32 heads and 8 KV heads/);
  // A call that states its own split does not use the options, so they cannot be wrong for it.
  const own = CALL.replace('prompt_tokens = 512 : i64}', 'prompt_tokens = 512 : i64, tp = 2 : i64}');
  const ops = decompose(parseGraph(own), registry, { tp: 3 }).ops[0]!.regions[0]!.blocks[0]!.ops;
  assert.equal(ops.filter((o) => o.name === 'llm.allreduce').length, 4);
});

test('a decomposition into 300 000 ops is spliced in whole', () => {
  const many = new Registry().register({
    name: 'x.many',
    summary: 'test op that decomposes into many copies of x.one',
    operands: [],
    results: [],
    decompose: () => Array(300_000).fill(makeOp('x.one')),
  });
  const g = decompose(parseGraph('"x.many"() : () -> ()\n'), many);
  assert.equal(g.ops.length, 300_000);
  assert.ok(g.ops.every((o) => o.name === 'x.one'));
});

test('unroll-loops copies a loop body of 300 000 ops whole', () => {
  const text: Value = { id: 't', type: { kind: 'dialect', dialect: 'agent', name: 'text' } };
  const body = [...Array(300_000).fill(makeOp('x.one')), makeOp('agent.yield', { operands: [text] })];
  const loop = makeOp('agent.loop', {
    operands: [text],
    results: [{ id: 'l', type: text.type }],
    attrs: { max_iterations: { kind: 'int', value: 1, type: 'i64' } },
    regions: [{ blocks: [{ args: [text], ops: body }] }],
  });
  const g = unrollLoops({ ops: [loop] }, { maxOps: 1_000_000 });
  assert.equal(g.ops.length, 300_000);
  assert.ok(g.ops.every((o) => o.name === 'x.one'));
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  defaultRegistry,
  demandTable,
  graphsEqual,
  PassManager,
  parseGraph,
  printGraph,
  verify,
} from '../src/index.js';
import { mlirOpt } from './mlir-opt.js';

const registry = defaultRegistry();

// One op of each kernel in the contract, shapes of a tiny-llama layer (d 288, 6 heads × 48, seq 32).
const LAYER = `%x = "agent.input"() {name = "x"} : () -> tensor<32x288xf32>
%w = "agent.input"() {name = "w"} : () -> tensor<288x288xf32>
%nw = "agent.input"() {name = "nw"} : () -> tensor<288xf32>
%q3 = "agent.input"() {name = "q3"} : () -> tensor<32x6x48xf32>
%qd = "agent.input"() {name = "qd"} : () -> tensor<6x48xf32>
%kc = "agent.input"() {name = "kc"} : () -> tensor<128x6x48xf32>
%ids = "agent.input"() {name = "ids"} : () -> tensor<32xi32>
%tab = "agent.input"() {name = "tab"} : () -> tensor<32000x288xf32>
%vec = "agent.input"() {name = "vec"} : () -> tensor<288xf32>
%db = "agent.input"() {name = "db"} : () -> tensor<1000x288xf32>
%b3 = "agent.input"() {name = "b3"} : () -> tensor<4x32x48xf32>
%b3t = "agent.input"() {name = "b3t"} : () -> tensor<4x48x32xf32>
%n = "nn.rmsnorm"(%x, %nw) {dtype = f32, eps = 1.0e-05} : (tensor<32x288xf32>, tensor<288xf32>) -> tensor<32x288xf32>
%m = "nn.matmul"(%n, %w) {dtype = f32} : (tensor<32x288xf32>, tensor<288x288xf32>) -> tensor<32x288xf32>
%mt = "nn.matmul"(%n, %w) {dtype = f32, transpose_b} : (tensor<32x288xf32>, tensor<288x288xf32>) -> tensor<32x288xf32>
%bm = "nn.batch_matmul"(%b3, %b3t) {dtype = f32} : (tensor<4x32x48xf32>, tensor<4x48x32xf32>) -> tensor<4x32x32xf32>
%mv = "nn.matvec"(%w, %vec) {dtype = f32} : (tensor<288x288xf32>, tensor<288xf32>) -> tensor<288xf32>
%sm = "nn.softmax"(%m) {dtype = f32} : (tensor<32x288xf32>) -> tensor<32x288xf32>
%r = "nn.rope"(%q3) {dtype = f32, position_offset = 0 : i64, theta = 1.0e+04} : (tensor<32x6x48xf32>) -> tensor<32x6x48xf32>
%ap = "nn.attention_prefill"(%r, %q3, %q3) {dtype = f32} : (tensor<32x6x48xf32>, tensor<32x6x48xf32>, tensor<32x6x48xf32>) -> tensor<32x6x48xf32>
%ad = "nn.attention_decode"(%qd, %kc, %kc) {dtype = f32} : (tensor<6x48xf32>, tensor<128x6x48xf32>, tensor<128x6x48xf32>) -> tensor<6x48xf32>
%e = "nn.embedding"(%tab, %ids) {dtype = f32} : (tensor<32000x288xf32>, tensor<32xi32>) -> tensor<32x288xf32>
%sw = "nn.swiglu"(%m, %mt) {dtype = f32} : (tensor<32x288xf32>, tensor<32x288xf32>) -> tensor<32x288xf32>
%a = "nn.add"(%sw, %e) {dtype = f32} : (tensor<32x288xf32>, tensor<32x288xf32>) -> tensor<32x288xf32>
%ts, %ti = "nn.topk"(%db, %vec) {dtype = f32, k = 5 : i64, metric = "cosine"} : (tensor<1000x288xf32>, tensor<288xf32>) -> (tensor<5xf32>, tensor<5xi32>)
`;

test('every nn kernel op verifies with consistent shapes, round-trips mlir-opt, and has a demand', () => {
  const g = parseGraph(LAYER);
  verify(g, { registry, strict: true });
  assert.ok(graphsEqual(parseGraph(mlirOpt(printGraph(g))), g));
  const rows = demandTable(new PassManager({ registry }).add('annotate-demand').run(g));
  const by = (id: string) => rows.find((r) => r.id === id)!.demand;
  assert.equal(by('m').flops, 2 * 32 * 288 * 288);
  assert.equal(by('mt').flops, 2 * 32 * 288 * 288);
  assert.equal(by('bm').flops, 2 * 4 * 32 * 48 * 32);
  assert.equal(by('mv').flops, 2 * 288 * 288);
  assert.equal(by('ap').flops, 2 * 32 * 32 * 6 * 48, 'causal: half of the 4·S²·H·D of full attention');
  assert.equal(by('ad').flops, 4 * 128 * 6 * 48);
  assert.equal(by('ts').flops, 3 * 1000 * 288);
  for (const r of rows.filter((x) => x.kind === 'nn')) assert.ok(r.demand.bytesRead > 0, r.id);
});

test('nn shape errors name the shapes', () => {
  const bad = [
    ['nn.batch_matmul', '(tensor<4x32x48xf32>, tensor<3x48x32xf32>) -> tensor<4x32x32xf32>'],
    [
      'nn.attention_prefill',
      '(tensor<32x6x48xf32>, tensor<32x4x48xf32>, tensor<32x4x48xf32>) -> tensor<32x6x48xf32>',
    ],
    ['nn.embedding', '(tensor<100x8xf32>, tensor<7xi32>) -> tensor<8x8xf32>'],
  ];
  for (const [op, sig] of bad) {
    const ins = sig!.slice(1, sig!.indexOf(')')).split(', ');
    const defs = ins.map((t, i) => `%i${i} = "agent.input"() {name = "i${i}"} : () -> ${t}`).join('\n');
    const use = `%o = "${op}"(${ins.map((_, i) => `%i${i}`).join(', ')}) {dtype = f32} : ${sig}`;
    assert.throws(
      () => verify(parseGraph(`${defs}\n${use}\n`), { registry }),
      (e: Error & { code?: string }) => e.code === 'IR_VERIFY' && e.message.includes(`${op}: operands (`),
      op,
    );
  }
});

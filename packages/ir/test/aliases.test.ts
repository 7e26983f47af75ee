// Top-level aliases, `#name = attribute` and `!name = type`: resolved while parsing, printed inline.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { graphsEqual, IrError, IrErrorCode, parseGraph, printGraph, tensorType } from '../src/index.js';
import { mlirOpt } from './mlir-opt.js';

function assertAt(text: string, line: number, col: number, message: RegExp): void {
  let error: unknown;
  try {
    parseGraph(text, 'in.mlir');
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof IrError, `expected a parse error for ${text}`);
  assert.equal(error.code, IrErrorCode.Parse);
  assert.deepEqual(error.diagnostics[0]!.loc, { line, col }, error.message);
  assert.match(error.message, new RegExp(`^in\\.mlir:${line}:${col}: error: `));
  assert.match(error.message, message);
}

const ALIASED = `#weights = dense<[[1, 2], [3, 4]]> : tensor<2x2xi32>
#pair = [#weights, 7 : i32]
#0 = "zero"
#flag-$x = unit
!vec = tensor<4xf32>
"builtin.module"() ({
  %a = "x.a"() {w = #weights, p = #pair, z = #0, f = #flag-$x, t = !vec} : () -> !vec
  "x.b"(%a) {d = {inner = #pair}} : (!vec) -> ()
}) : () -> ()
`;

test('attribute and type aliases resolve while parsing; the graph and its printed form hold the values', () => {
  const g = parseGraph(ALIASED);
  const [a, b] = g.ops;
  const weights = { kind: 'elements', type: tensorType([2, 2], 'i32'), values: [1, 2, 3, 4] };
  assert.deepEqual(a?.attrs['w'], weights);
  assert.deepEqual(a?.attrs['p'], {
    kind: 'array',
    items: [weights, { kind: 'int', value: 7, type: 'i32' }],
  });
  assert.deepEqual(a?.attrs['z'], { kind: 'str', value: 'zero' });
  assert.deepEqual(a?.attrs['f'], { kind: 'unit' });
  assert.deepEqual(a?.attrs['t'], { kind: 'type', type: tensorType([4], 'f32') });
  assert.deepEqual(a?.results[0]?.type, tensorType([4], 'f32'));
  const d = b?.attrs['d'];
  assert.equal(d?.kind === 'dict' && d.entries['inner'], a?.attrs['p']);
  const printed = printGraph(g);
  assert.ok(!/[#!](weights|pair|0|flag|vec)\b/.test(printed), printed);
  assert.equal(printGraph(parseGraph(printed)), printed);
  // Definitions may also come between top-level ops, each before its first use.
  const between = parseGraph(
    '#a = 1 : i8\n"x.a"() {v = #a} : () -> ()\n#b = #a\n"x.b"() {v = #b} : () -> ()\n',
  );
  assert.deepEqual(
    between.ops.map((o) => o.attrs['v']),
    [1, 1].map((value) => ({ kind: 'int', value, type: 'i8' })),
  );
});

test('mlir-opt-19 reads the aliased text to the same graph, and accepts the inlined print', () => {
  const g = parseGraph(ALIASED);
  assert.ok(graphsEqual(parseGraph(mlirOpt(ALIASED)), g));
  assert.ok(graphsEqual(parseGraph(mlirOpt(printGraph(g))), g));
});

test('an undefined alias, or one used before its definition, is refused at the use', () => {
  assertAt(
    '"x.a"() {v = #nope} : () -> ()\n',
    1,
    14,
    /undefined alias '#nope'; define it at the top level before its first use/,
  );
  assertAt('"x.a"() {v = #late} : () -> ()\n#late = 1\n', 1, 14, /undefined alias '#late'/);
  assertAt('"x.a"() : () -> !t\n', 1, 17, /undefined alias '!t'/);
});

test('a redefined alias is refused at the second definition', () => {
  assertAt('#a = 1\n!a = i64\n#a = 2\n', 3, 1, /redefinition of alias '#a'; give it another name/);
  assertAt('!t = i64\n!t = f32\n', 2, 1, /redefinition of alias '!t'/);
});

test('an alias that refers to itself is refused at the reference', () => {
  assertAt(
    '#a = [1, {b = #a}]\n',
    1,
    15,
    /alias '#a' refers to itself; an alias cannot be used in its own definition/,
  );
  assertAt('!t = !t\n', 1, 6, /alias '!t' refers to itself/);
});

test('dialect attribute names and aliases outside the top level are refused with what to do', () => {
  assertAt(
    '#gpu.space = 1\n',
    1,
    1,
    /alias names with a '\.' are reserved for dialect attributes; rename '#gpu\.space'/,
  );
  assertAt(
    '"x.a"() {v = #gpu.space<1>} : () -> ()\n',
    1,
    14,
    /dialect attributes such as '#gpu\.space' are not supported/,
  );
  assertAt('# = 1\n', 1, 1, /expected an alias name such as '#map'/);
  assertAt('#a 1\n', 1, 4, /expected '='/);
  assertAt('"x.a"() ({\n  #a = 1\n}) : () -> ()\n', 2, 3, /expected a quoted op name/);
  assertAt('#map = affine_map<(d0) -> (d0)>\n', 1, 8, /expected an attribute value .*found 'affine_map'/);
});

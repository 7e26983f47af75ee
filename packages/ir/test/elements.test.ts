// dense<…> : tensor<…> (MLIR's DenseElementsAttr): parsed, checked against its type, printed, compared.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Attr,
  graphsEqual,
  IrError,
  IrErrorCode,
  parseGraph,
  printGraph,
  tensorType,
} from '../src/index.js';
import { mlirOpt } from './mlir-opt.js';

const op = (value: string) => `"x.op"() {v = ${value}} : () -> ()\n`;
const attrOf = (value: string): Attr => parseGraph(op(value)).ops[0]!.attrs.v!;

/** `value` starts at column 15 of `op(value)`; `at` is the offset of the error in `value`. */
function assertAt(value: string, at: string, message: RegExp): void {
  let error: unknown;
  try {
    parseGraph(op(value), 'in.mlir');
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof IrError, `expected a parse error for ${value}`);
  assert.equal(error.code, IrErrorCode.Parse);
  const col = 15 + value.indexOf(at);
  assert.deepEqual(error.diagnostics[0]!.loc, { line: 1, col }, error.message);
  assert.match(error.message, new RegExp(`^in\\.mlir:1:${col}: error: `));
  assert.match(error.message, message);
}

test('dense literals parse to elements attributes: splat, nested lists, i1, empty, hex', () => {
  const t = tensorType;
  assert.deepEqual(attrOf('dense<1.0> : tensor<4xf32>'), { kind: 'elements', type: t([4], 'f32'), splat: 1 });
  assert.deepEqual(attrOf('dense<[[1, 2], [3, 4]]> : tensor<2x2xi32>'), {
    kind: 'elements',
    type: t([2, 2], 'i32'),
    values: [1, 2, 3, 4],
  });
  assert.deepEqual(attrOf('dense<[true, 0, 1, false]> : tensor<4xi1>'), {
    kind: 'elements',
    type: t([4], 'i1'),
    values: [true, false, true, false],
  });
  assert.deepEqual(attrOf('dense<> : tensor<0xf32>'), { kind: 'elements', type: t([0], 'f32'), values: [] });
  assert.deepEqual(attrOf('dense<[[]]> : tensor<1x0xi8>'), {
    kind: 'elements',
    type: t([1, 0], 'i8'),
    values: [],
  });
  assert.deepEqual(attrOf('dense<"0x0000803f00000040"> : tensor<2xf32>'), {
    kind: 'elements',
    type: t([2], 'f32'),
    hex: '0x0000803F00000040',
  });
  // Integers are stored as MLIR prints them: signed, so 255 : i8 is -1; hex ints and float bits are read too.
  assert.deepEqual(attrOf('dense<[0x10, 255, -128]> : tensor<3xi8>'), {
    kind: 'elements',
    type: t([3], 'i8'),
    values: [16, -1, -128],
  });
  assert.deepEqual(attrOf('dense<[0x3F800000, -2.5e1]> : tensor<2xf32>'), {
    kind: 'elements',
    type: t([2], 'f32'),
    values: [1, -25],
  });
  assert.deepEqual(attrOf('dense<[0x3C00, 0xC000]> : tensor<2xf16>'), {
    kind: 'elements',
    type: t([2], 'f16'),
    values: [1, -2],
  });
  assert.deepEqual(attrOf('dense<5> : tensor<index>'), { kind: 'elements', type: t([], 'index'), splat: 5 });
});

test('dense literals print to a fixed point that mlir-opt-19 reads back as the same attributes', () => {
  const text = `%r = "x.op"() {a = dense<1.0> : tensor<4xf32>, b = dense<[[1, 2], [3, 4]]> : tensor<2x2xi32>,
  c = dense<[true, false]> : tensor<2xi1>, d = dense<> : tensor<0xf32>, e = dense<[[], []]> : tensor<2x0xi64>,
  f = dense<[[1.5, -0.0, 2.5e-3]]> : tensor<1x3xf64>, g = dense<[7, 7]> : tensor<2xi64>, h = dense<-3> : tensor<2x3xindex>,
  i = [dense<[0x3C00, 1.5]> : tensor<2xf16>, dense<1.0> : tensor<bf16>], j = dense<[[[true]]]> : tensor<1x1x1xi1>} : () -> tensor<2xi1>
`;
  const g = parseGraph(text);
  const printed = printGraph(g);
  assert.equal(printGraph(parseGraph(printed)), printed);
  assert.match(printed, /b = dense<\[\[1, 2\], \[3, 4\]\]> : tensor<2x2xi32>/);
  assert.match(printed, /e = dense<> : tensor<2x0xi64>/);
  // mlir-opt prints `dense<[7, 7]>` as the splat `dense<7>`: the same attribute, and equal here too.
  const back = mlirOpt(printed);
  assert.match(back, /g = dense<7> : tensor<2xi64>/);
  assert.ok(graphsEqual(parseGraph(back), g), back);
});

test('hex blobs are kept as text: printed as read, and mlir-opt-19 keeps them when asked to print hex', () => {
  const text = `"x.op"() {a = dense<"0x0000803F00000040"> : tensor<2xf32>, b = dense<"0x05"> : tensor<3xi1>,
  c = dense<"0x01000000000000000200000000000000"> : tensor<2xindex>, d = dense<"0x0102"> : tensor<2x1xi8>} : () -> ()
`;
  const g = parseGraph(text);
  const printed = printGraph(g);
  assert.equal(printGraph(parseGraph(printed)), printed);
  const back = mlirOpt(printed, ['--mlir-print-elementsattrs-with-hex-if-larger=1']);
  assert.ok(graphsEqual(parseGraph(back), g), back);
  // Hex is not decoded, so it never equals the same elements written as numbers.
  assert.ok(!graphsEqual(parseGraph(mlirOpt(printed)), g));
});

test('a literal whose nesting does not match the static shape of its type is refused at the literal', () => {
  assertAt(
    'dense<[1, 2, 3]> : tensor<2xi32>',
    '[',
    /dense literal has shape \[3\], but its type tensor<2xi32> has shape \[2\]; make the lists match/,
  );
  assertAt(
    'dense<[[[1]]]> : tensor<1x1xi32>',
    '[',
    /shape \[1, 1, 1\], but its type tensor<1x1xi32> has shape \[1, 1\]/,
  );
  assertAt('dense<[[]]> : tensor<0xi32>', '[', /shape \[1, 0\].*shape \[0\]/);
  assertAt(
    'dense<[[1, 2], [3]]> : tensor<2x2xi32>',
    '[3]',
    /this list holds 1, but the first list at its depth holds 2/,
  );
  assertAt('dense<[1, [2]]> : tensor<2xi32>', '[2]', /nested at different depths/);
  assertAt('dense<[[1], 2]> : tensor<2xi32>', '2]', /nested at different depths/);
  assertAt('dense<> : tensor<2xf32>', 'dense', /empty dense literal for tensor<2xf32>, which has 2 elements/);
  // A splat fits any static shape.
  assert.equal(attrOf('dense<0> : tensor<3x0x2xi32>').kind, 'elements');
});

test('a dense literal needs a tensor type of static shape', () => {
  assertAt(
    'dense<1> : tensor<?xi8>',
    'tensor',
    /needs a tensor type with a static shape.*found tensor<\?xi8>/,
  );
  assertAt('dense<1> : i8', 'i8', /needs a tensor type with a static shape.*found i8/);
  assertAt('dense<1.0> : vector<2xf32>', 'vector', /vector types are not supported; use a tensor type/);
});

test('elements must be finite values of the element type', () => {
  assertAt(
    'dense<[1.0, 1]> : tensor<2xf32>',
    '1]',
    /expected a float such as 1\.0 for an f32 element, found '1'/,
  );
  assertAt('dense<[1, 2.5]> : tensor<2xi32>', '2.5', /expected an integer for type i32, found '2\.5'/);
  assertAt('dense<true> : tensor<2xi32>', 'true', /true and false are i1 elements; write a number for i32/);
  assertAt('dense<[0, 2]> : tensor<2xi1>', '2', /expected true, false, 0 or 1 for an i1 element, found '2'/);
  assertAt('dense<[127, 256]> : tensor<2xi8>', '256', /integer 256 does not fit in i8/);
  assertAt('dense<-129> : tensor<2xi8>', '-129', /integer -129 does not fit in i8/);
  assertAt('dense<[1.0, 1e999]> : tensor<2xf64>', '1e999', /dense literal element 1e999 is not a finite f64/);
  assertAt('dense<0x7FC00000> : tensor<2xf32>', '0x', /element 0x7FC00000 is not a finite f32/);
  assertAt('dense<0x3FF0000000000000> : tensor<2xf32>', '0x', /has more than the 32 bits of f32/);
  assertAt(
    'dense<[1, foo]> : tensor<2xi32>',
    'foo',
    /expected an element \(a number, true or false\), found 'foo'/,
  );
  assertAt('dense<[1, 2> : tensor<2xi32>', '>', /expected ']'/);
});

test('hex blobs need whole bytes of hex digits and one element or every element of the type', () => {
  assertAt('dense<"0xABC"> : tensor<2xi8>', '"', /expected a hex string of whole bytes such as "0x0000803F"/);
  assertAt('dense<"ABCD"> : tensor<2xi8>', '"', /expected a hex string of whole bytes/);
  assertAt('dense<"0xZZ"> : tensor<1xi8>', '"', /expected a hex string of whole bytes/);
  assertAt(
    'dense<"0x010203"> : tensor<2xi16>',
    '"',
    /hex data has 3 bytes, but tensor<2xi16> needs 4 \(or one element's worth for a splat\)/,
  );
  // i1 is packed 8 to a byte, as in MLIR; one byte of 0x00 or 0xFF is a splat.
  assertAt('dense<"0x0000"> : tensor<3xi1>', '"', /hex data has 2 bytes, but tensor<3xi1> needs 1/);
  assert.equal(attrOf('dense<"0xFF"> : tensor<9xi1>').kind, 'elements');
  assert.equal(attrOf('dense<"0x0000803F"> : tensor<8xf32>').kind, 'elements');
});

test('equality: a splat equals the list of its value repeated; f32 elements compare as f32', () => {
  const eq = (a: string, b: string) => graphsEqual(parseGraph(op(a)), parseGraph(op(b)));
  assert.ok(eq('dense<2> : tensor<2x2xi32>', 'dense<[[2, 2], [2, 2]]> : tensor<2x2xi32>'));
  assert.ok(!eq('dense<2> : tensor<2x2xi32>', 'dense<[[2, 2], [2, 3]]> : tensor<2x2xi32>'));
  assert.ok(!eq('dense<2> : tensor<2x2xi32>', 'dense<2> : tensor<4xi32>'));
  assert.ok(eq('dense<[0.1, 1.0]> : tensor<2xf32>', 'dense<[0.100000001, 1.0]> : tensor<2xf32>'));
  assert.ok(!eq('dense<[0.1, 1.0]> : tensor<2xf64>', 'dense<[0.100000001, 1.0]> : tensor<2xf64>'));
  assert.ok(eq('dense<"0x0000803f"> : tensor<2xf32>', 'dense<"0x0000803F"> : tensor<2xf32>'));
  assert.ok(!eq('dense<"0x0000803F"> : tensor<2xf32>', 'dense<1.0> : tensor<2xf32>'));
  assert.ok(!eq('dense<[true, false]> : tensor<2xi1>', 'dense<[true, true]> : tensor<2xi1>'));
});

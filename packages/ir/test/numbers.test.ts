import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Attr, graphsEqual, IrError, IrErrorCode, parseGraph, printGraph } from '../src/index.js';
import { mlirOpt } from './mlir-opt.js';

const attrOf = (value: string): Attr => parseGraph(`"x.op"() {v = ${value}} : () -> ()\n`).ops[0]!.attrs.v!;

function parseError(value: string): IrError {
  try {
    parseGraph(`"x.op"() {v = ${value}} : () -> ()\n`, 'in.mlir');
  } catch (e) {
    if (!(e instanceof IrError)) throw e;
    return e;
  }
  assert.fail(`expected a parse error for ${value}`);
}

function assertAt(value: string, col: number, message: RegExp): void {
  const e = parseError(value);
  assert.equal(e.code, IrErrorCode.Parse);
  assert.deepEqual(e.diagnostics[0]!.loc, { line: 1, col });
  assert.match(e.message, message);
}

test('a hexadecimal float literal with a minus is refused at the literal, as mlir-opt refuses it', () => {
  assertAt(
    '-0x3FF0000000000000 : f64',
    15,
    /^in\.mlir:1:15: error: a hexadecimal float literal takes no sign \(mlir-opt refuses one too\); write the bits of the negative value, 0xBFF0000000000000$/,
  );
  assertAt('-0x3F800000 : f32', 15, /write the bits of the negative value, 0xBF800000$/);
  assert.deepEqual(attrOf('0xBFF0000000000000 : f64'), { kind: 'float', value: -1, type: 'f64' });
  // Integers keep their sign, hexadecimal or not.
  assert.deepEqual(attrOf('-0x10 : i64'), { kind: 'int', value: -16, type: 'i64' });
});

test('dense array elements are read as scalar literals of the element type', () => {
  assert.deepEqual(attrOf('array<i64: -0x10, 7, -3>'), { kind: 'dense', elem: 'i64', values: [-16, 7, -3] });
  assert.deepEqual(attrOf('array<f64: 0x3FF0000000000000, -2.5, 1e3>'), {
    kind: 'dense',
    elem: 'f64',
    values: [1, -2.5, 1000],
  });
  assert.deepEqual(attrOf('array<f32: 0x3F800000>'), { kind: 'dense', elem: 'f32', values: [1] });
});

test('dense array elements out of range or not finite are refused at the element', () => {
  assertAt('array<i64: -0x10, 1e999>', 33, /expected an integer for type i64, found '1e999'/);
  assertAt('array<i64: 99999999999999999999>', 26, /integer 99999999999999999999 is out of range/);
  assertAt('array<i64: 0x20000000000000>', 26, /integer 0x20000000000000 is out of range/);
  assertAt('array<i32: 1.5>', 26, /expected an integer for type i32, found '1\.5'/);
  assertAt(
    'array<f64: 1.0, 1e999>',
    31,
    /dense array element 1e999 is not a finite f64; elements of a dense array must be finite/,
  );
  assertAt(
    'array<f64: 0x7FF8000000000000>',
    26,
    /dense array element 0x7FF8000000000000 is not a finite f64/,
  );
  assertAt('array<f64: -0x3FF0000000000000>', 26, /a hexadecimal float literal takes no sign/);
});

test('dense arrays print as text that parses back, here and in mlir-opt', () => {
  const g = parseGraph(
    '"x.op"() {a = array<i64: -0x10, 9007199254740991>, b = array<f64: 1.0, -2.5, 1e300>, c = array<f32: 0x3F800000>} : () -> ()\n',
  );
  const text = printGraph(g);
  assert.ok(graphsEqual(parseGraph(text), g), text);
  assert.ok(graphsEqual(parseGraph(mlirOpt(text)), g), text);
});

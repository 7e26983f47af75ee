import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Attr, Graph, Op, Type, Value } from '../src/index.js';
import { graphsEqual, makeOp, parseGraph, printGraph, tensorType } from '../src/index.js';
import { mlirOpt } from './mlir-opt.js';

const types: fc.Arbitrary<Type> = fc.oneof(
  fc.constantFrom<Type>(
    { kind: 'dialect', dialect: 'agent', name: 'text' },
    { kind: 'dialect', dialect: 'agent', name: 'json' },
    { kind: 'dialect', dialect: 'kv', name: 'cache' },
    { kind: 'scalar', name: 'i64' },
  ),
  fc
    .tuple(
      fc.array(fc.option(fc.integer({ min: 1, max: 64 }), { nil: null, freq: 5 }), { maxLength: 3 }),
      fc.constantFrom('f32', 'bf16', 'i32'),
    )
    .map(([shape, elem]) => tensorType(shape, elem)),
);

/** Element values MLIR prints back exactly (f32 as f32, integers in range). */
const elementValue: Record<string, fc.Arbitrary<number | boolean>> = {
  i1: fc.boolean(),
  i8: fc.integer({ min: -128, max: 127 }),
  i32: fc.integer(),
  i64: fc.maxSafeInteger(),
  f32: fc.float({ noNaN: true, noDefaultInfinity: true }),
  f64: fc.double({ noNaN: true, noDefaultInfinity: true }),
};
const staticShape = fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 });

/** `dense<…>` as a splat or every element; hex blobs are covered by their own property below. */
const elementsAttr: fc.Arbitrary<Attr> = fc
  .tuple(staticShape, fc.constantFrom(...Object.keys(elementValue)))
  .chain(([shape, elem]) => {
    const type = tensorType(shape, elem);
    const n = shape.reduce((a, d) => a * d, 1);
    const value = elementValue[elem]!;
    return fc.oneof(
      value.map((splat): Attr => ({ kind: 'elements', type, splat })),
      fc
        .array(value, { minLength: n, maxLength: n })
        .map((values): Attr => ({ kind: 'elements', type, values })),
    );
  });

const scalarAttr: fc.Arbitrary<Attr> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }).map((value): Attr => ({ kind: 'str', value })),
  fc.maxSafeInteger().map((value): Attr => ({ kind: 'int', value, type: 'i64' })),
  fc.integer({ min: -1000, max: 1000 }).map((value): Attr => ({ kind: 'int', value, type: 'i32' })),
  fc.double({ noNaN: true }).map((value): Attr => ({ kind: 'float', value, type: 'f64' })),
  fc.float({ noNaN: true }).map((value): Attr => ({ kind: 'float', value, type: 'f32' })),
  fc.boolean().map((value): Attr => ({ kind: 'bool', value })),
  fc.constant<Attr>({ kind: 'unit' }),
  fc
    .array(fc.integer({ min: -99, max: 99 }), { maxLength: 4 })
    .map((values): Attr => ({ kind: 'dense', elem: 'i64', values })),
  elementsAttr,
  types.map((type): Attr => ({ kind: 'type', type })),
);
const key = fc.oneof(fc.stringMatching(/^[a-z_][a-z0-9_]{0,6}$/), fc.string({ minLength: 1, maxLength: 5 }));
const attr: fc.Arbitrary<Attr> = fc.oneof(
  { weight: 4, arbitrary: scalarAttr },
  fc.array(scalarAttr, { maxLength: 3 }).map((items): Attr => ({ kind: 'array', items })),
  fc.dictionary(key, scalarAttr, { maxKeys: 3 }).map((entries): Attr => ({ kind: 'dict', entries })),
);
const attrs = fc.dictionary(key, attr, { maxKeys: 4 });

interface Spec {
  name: string;
  uses: number[];
  results: Type[];
  attrs: Record<string, Attr>;
  body?: Spec[];
  bodyArgs?: Type[];
}

const opSpec = (depth: number): fc.Arbitrary<Spec> =>
  fc.record(
    {
      name: fc.constantFrom('agent.graph', 'llm.call', 'tool.invoke', 'x.op', 'memory.load'),
      uses: fc.array(fc.nat(), { maxLength: 3 }),
      results: fc.array(types, { maxLength: 3 }),
      attrs,
      body: depth > 0 ? fc.array(opSpec(depth - 1), { maxLength: 3 }) : fc.constant(undefined),
      bodyArgs: fc.array(types, { maxLength: 2 }),
    },
    { requiredKeys: ['name', 'uses', 'results', 'attrs'] },
  );

/** Turns specs into well-formed SSA: each use picks one of the values visible at that point. */
function build(specs: Spec[], visible: Value[], counter: { n: number }): Op[] {
  const scope = [...visible];
  return specs.map((s) => {
    const operands = scope.length ? s.uses.map((u) => scope[u % scope.length]!) : [];
    const regions = s.body
      ? [
          (() => {
            const args = (s.bodyArgs ?? []).map((type) => ({ id: `a${counter.n++}`, type }));
            return { blocks: [{ args, ops: build(s.body, [...scope, ...args], counter) }] };
          })(),
        ]
      : [];
    const results = s.results.map((type) => ({ id: `v${counter.n++}`, type }));
    scope.push(...results);
    return makeOp(s.name, { operands, results, attrs: s.attrs, regions });
  });
}

test('random graphs: print → mlir-opt → parse gives the same graph', () => {
  fc.assert(
    fc.property(fc.array(opSpec(2), { minLength: 1, maxLength: 6 }), (specs) => {
      const graph: Graph = { ops: build(specs, [], { n: 0 }) };
      const text = printGraph(graph);
      assert.ok(graphsEqual(parseGraph(text), graph), 'own parser disagrees with own printer');
      assert.ok(graphsEqual(parseGraph(mlirOpt(text)), graph), 'mlir-opt round trip changed the graph');
    }),
    { numRuns: 60 },
  );
});

const hexDigits = (bytes: Uint8Array) =>
  `0x${Array.from(bytes, (b) => b.toString(16).toUpperCase().padStart(2, '0')).join('')}`;

test('random hex blobs: print → parse is the identity, and mlir-opt keeps them when printing hex', () => {
  const blob = fc
    .tuple(
      fc.integer({ min: 2, max: 6 }),
      fc.constantFrom(['i8', 1], ['i16', 2], ['f32', 4], ['f64', 8], ['index', 8]),
    )
    .chain(([n, [elem, width]]) =>
      fc
        .uint8Array({ minLength: n * width, maxLength: n * width })
        // mlir-opt prints a blob of one repeated element as a splat.
        .filter((b) => hexDigits(b.subarray(0, width)) !== hexDigits(b.subarray(width, 2 * width)))
        .map((b): Attr => ({ kind: 'elements', type: tensorType([n], elem), hex: hexDigits(b) })),
    );
  fc.assert(
    fc.property(fc.array(blob, { minLength: 1, maxLength: 4 }), (blobs) => {
      const attrs = Object.fromEntries(blobs.map((a, i) => [`h${i}`, a]));
      const graph: Graph = { ops: [makeOp('x.op', { attrs })] };
      const text = printGraph(graph);
      assert.ok(graphsEqual(parseGraph(text), graph), text);
      const back = mlirOpt(text, ['--mlir-print-elementsattrs-with-hex-if-larger=1']);
      assert.ok(graphsEqual(parseGraph(back), graph), back);
    }),
    { numRuns: 15 },
  );
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AgentsError, calculate } from '../src/index.js';

test('precedence, associativity, unary minus and parentheses', () => {
  assert.equal(calculate('17*23+4'), 395);
  assert.equal(calculate('(2+3)^2'), 25);
  assert.equal(calculate('2^3^2'), 512);
  assert.equal(calculate('-2^2'), -4);
  assert.equal(calculate('10 - 4 - 3'), 3);
  assert.equal(calculate('10 % 4 * 3'), 6);
  assert.equal(calculate(' 1.5e2 / .5 '), 300);
});

test('rejects anything that is not arithmetic, with a code', () => {
  for (const bad of ['', '1+', '2*(3', 'process.exit(1)', '1 2', 'constructor']) {
    assert.throws(
      () => calculate(bad),
      (e) => e instanceof AgentsError && e.code === 'CALC_SYNTAX',
      bad,
    );
  }
  assert.throws(
    () => calculate('1/0'),
    (e) => e instanceof AgentsError && e.code === 'CALC_MATH',
  );
});

type Tree = number | { op: '+' | '-' | '*'; l: Tree; r: Tree };

const tree: fc.Arbitrary<Tree> = fc.letrec<{ t: Tree }>((tie) => ({
  t: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer({ min: 0, max: 999 }),
    fc.record({ op: fc.constantFrom('+' as const, '-' as const, '*' as const), l: tie('t'), r: tie('t') }),
  ),
})).t;

const show = (t: Tree): string => (typeof t === 'number' ? String(t) : `(${show(t.l)} ${t.op} ${show(t.r)})`);
const value = (t: Tree): number => {
  if (typeof t === 'number') return t;
  const [a, b] = [value(t.l), value(t.r)];
  return t.op === '+' ? a + b : t.op === '-' ? a - b : a * b;
};

test('property: printing a fully parenthesised tree and calculating it gives the tree value', () => {
  fc.assert(
    fc.property(tree, (t) => {
      assert.equal(calculate(show(t)), value(t));
    }),
    { numRuns: 300 },
  );
});

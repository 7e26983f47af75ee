import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NameGen } from '../src/graph.js';
import { makeOp, parseGraph } from '../src/index.js';

test('40 000 sibling regions reusing one block argument name get x, x_1, … x_39999', () => {
  const n = 40_000;
  const text = `"x.op"() (${Array(n).fill('{^a(%x: i1):}').join(', ')}) : () -> ()\n`;
  const ids = parseGraph(text).ops[0]!.regions.map((r) => r.blocks[0]!.args[0]!.id);
  assert.equal(ids[0], 'x');
  assert.equal(ids[1], 'x_1');
  assert.equal(ids[n - 1], `x_${n - 1}`);
  assert.equal(new Set(ids).size, n);
});

test('a reused name skips the suffixes the text already defines', () => {
  const text = `%x_1 = "x.def"() : () -> i1
"x.op"() ({^a(%x: i1):}, {^a(%x: i1):}, {^a(%x: i1):}) : () -> ()
`;
  const ids = parseGraph(text).ops[1]!.regions.map((r) => r.blocks[0]!.args[0]!.id);
  assert.deepEqual(ids, ['x', 'x_2', 'x_3']);
});

test('NameGen: 100 000 names from one base skip the graph’s names and never repeat', () => {
  const names = new NameGen([
    makeOp('x.def', { results: [{ id: 'v_2', type: { kind: 'scalar', name: 'i1' } }] }),
  ]);
  const got = Array.from({ length: 100_000 }, () => names.fresh('v'));
  assert.deepEqual(got.slice(0, 4), ['v', 'v_1', 'v_3', 'v_4']);
  assert.equal(got[got.length - 1], 'v_100000');
  assert.equal(new Set(got).size, got.length);
  // A base that is itself a handed-out name gets its own suffixes.
  assert.equal(names.fresh('v_1'), 'v_1_1');
  assert.equal(names.fresh('w'), 'w');
});

// Hostile input: every size the parser and unroll-loops read from the text is checked before it is used.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  defaultRegistry,
  IrError,
  IrErrorCode,
  PARSE_LIMITS,
  type ParseOptions,
  PassManager,
  parseGraph,
  UNROLL_LIMITS,
} from '../src/index.js';
import { unrollLoops } from '../src/internal.js';

function parseError(text: string, options?: ParseOptions): IrError {
  try {
    parseGraph(text, 'in.mlir', options);
  } catch (e) {
    if (!(e instanceof IrError)) throw e;
    return e;
  }
  assert.fail('expected a parse error');
}

function assertAt(e: IrError, line: number, col: number, message: RegExp): void {
  assert.equal(e.code, IrErrorCode.Parse);
  assert.equal(e.diagnostics.length, 1);
  assert.deepEqual(e.diagnostics[0]!.loc, { line, col });
  assert.match(e.message, new RegExp(`^in\\.mlir:${line}:${col}: error: `));
  assert.match(e.message, message);
}

const IN = '%q = "agent.input"() {name = "q"} : () -> !agent.text\n';

test('the limits are documented constants with sane defaults', () => {
  for (const [k, v] of Object.entries(PARSE_LIMITS)) {
    assert.ok(Number.isSafeInteger(v) && v > 0, `${k} = ${v}`);
  }
  assert.ok(PARSE_LIMITS.maxElements * 8 <= Number.MAX_SAFE_INTEGER);
  assert.ok(UNROLL_LIMITS.maxIterations >= 3 && UNROLL_LIMITS.maxOps >= UNROLL_LIMITS.maxIterations);
});

test('a result count is checked before any name is made (%a:4000000)', () => {
  const e = parseError('%a:4000000 = "x.y"() : () -> ()\n');
  assertAt(e, 1, 1, /declares 4000000 results.*maxValues/);
  assertAt(parseError(`${IN}%a:11 = "x.y"() : () -> ()\n`, { maxValues: 10 }), 2, 1, /maxValues/);
  // Up to the limit is fine.
  parseGraph(`%a:2 = "x.y"() : () -> (i64, i64)\n`, 'in.mlir', { maxValues: 2 });
});

test('a result count far above 2^53 is rejected, not looped over', () => {
  const e = parseError('%a:99999999999999999999999 = "x.y"() : () -> ()\n');
  assertAt(e, 1, 1, /maxValues/);
});

test('tensor element count and rank are bounded', () => {
  const big = `%t = "agent.input"() {name = "t"} : () -> tensor<4000000000x4000000000x4000000000xf32>\n`;
  assertAt(parseError(big), 1, 43, /element count .*maxElements/);
  const digits = `%t = "agent.input"() {name = "t"} : () -> tensor<${'9'.repeat(400)}xf32>\n`;
  assertAt(parseError(digits), 1, 43, /maxElements/);
  const rank = `%t = "agent.input"() {name = "t"} : () -> tensor<${'1x'.repeat(1000)}f32>\n`;
  assertAt(parseError(rank), 1, 43, /more than 16 dimensions.*maxDims/);
  assertAt(
    parseError('%t = "agent.input"() {name = "t"} : () -> tensor<2x2xf32>\n', { maxElements: 3 }),
    1,
    43,
    /maxElements/,
  );
  // A zero dimension does not hide a huge one.
  const zero = `%t = "agent.input"() {name = "t"} : () -> tensor<0x${'9'.repeat(30)}xf32>\n`;
  assertAt(parseError(zero), 1, 43, /maxElements/);
  // Types inside attributes go through the same check.
  const inAttr = `"x.y"() {t = tensor<${'1x'.repeat(40)}f32>} : () -> ()\n`;
  assertAt(parseError(inAttr), 1, 14, /maxDims/);
});

test('deep region nesting is a located parse error, not a stack overflow', () => {
  const depth = 5000;
  const text = `${'"a.b"() ({\n'.repeat(depth)}${'}) : () -> ()\n'.repeat(depth)}`;
  const e = parseError(text);
  assertAt(e, PARSE_LIMITS.maxDepth + 1, 10, /nested more than \d+ deep.*maxDepth/);
  // With the limit raised past what the stack holds, it is still a located parse error.
  const deep = `${'"a.b"() ({\n'.repeat(50_000)}`;
  const raised = parseError(deep, { maxDepth: 1_000_000 });
  assert.equal(raised.code, IrErrorCode.Parse);
  assert.match(raised.message, /^in\.mlir:\d+:\d+: error: .*nested too deeply.*maxDepth/);
  const attrs = `"a.b"() {a = ${'['.repeat(200_000)}`;
  assert.match(parseError(attrs, { maxDepth: 1_000_000 }).message, /^in\.mlir:1:\d+: error: .*maxDepth/);
});

test('deep attribute nesting is a located parse error, not a stack overflow', () => {
  const depth = 20_000;
  const arrays = `"a.b"() {a = ${'['.repeat(depth)}${']'.repeat(depth)}} : () -> ()\n`;
  assertAt(parseError(arrays), 1, 14 + PARSE_LIMITS.maxDepth, /maxDepth/);
  const dicts = `"a.b"() {a = ${'{b = '.repeat(depth)}1${'}'.repeat(depth)}} : () -> ()\n`;
  assertAt(parseError(dicts), 1, 14 + 5 * PARSE_LIMITS.maxDepth, /maxDepth/);
  assertAt(parseError('"a.b"() {a = [[[1]]]} : () -> ()\n', { maxDepth: 2 }), 1, 16, /maxDepth/);
});

test('op count is bounded', () => {
  const text = `${IN}${'"x.y"() : () -> ()\n'.repeat(5)}`;
  assertAt(parseError(text, { maxOps: 4 }), 5, 1, /more than 4 ops.*maxOps/);
  parseGraph(text, 'in.mlir', { maxOps: 6 });
});

test('string length and attribute size are bounded', () => {
  const long = `"x.y"() {s = "${'a'.repeat(100)}"} : () -> ()\n`;
  assertAt(parseError(long, { maxStringBytes: 99 }), 1, 14, /string .*longer than 99 bytes.*maxStringBytes/);
  parseGraph(long, 'in.mlir', { maxStringBytes: 100 });
  const items = `"x.y"() {a = [${Array(20).fill('1').join(', ')}]} : () -> ()\n`;
  assertAt(parseError(items, { maxAttrItems: 10 }), 1, 14, /more than 10 items.*maxAttrItems/);
  const dense = `"x.y"() {a = array<i64: ${Array(20).fill('1').join(', ')}>} : () -> ()\n`;
  assertAt(parseError(dense, { maxAttrItems: 10 }), 1, 14, /maxAttrItems/);
  const dict = `"x.y"() {a = {${Array.from({ length: 20 }, (_, i) => `k${i} = 1`).join(', ')}}} : () -> ()\n`;
  assertAt(parseError(dict, { maxAttrItems: 10 }), 1, 14, /maxAttrItems/);
});

test('elements written out in a dense literal are bounded by maxAttrItems, counted over all its lists', () => {
  const flat = `"x.y"() {a = dense<[${Array(20).fill('1').join(', ')}]> : tensor<20xi32>} : () -> ()\n`;
  assertAt(
    parseError(flat, { maxAttrItems: 10 }),
    1,
    20,
    /dense literal has more than 10 items.*maxAttrItems/,
  );
  const rows = `"x.y"() {a = dense<[${Array(6).fill('[1, 2]').join(', ')}]> : tensor<6x2xi32>} : () -> ()\n`;
  assertAt(parseError(rows, { maxAttrItems: 10 }), 1, 20, /maxAttrItems/);
  assertAt(
    parseError(`"x.y"() {a = dense<${'['.repeat(5)}1${']'.repeat(5)}> : tensor<1xi32>} : () -> ()\n`, {
      maxDepth: 3,
    }),
    1,
    23,
    /maxDepth/,
  );
  // A splat and a hex blob hold one value or one string, whatever the element count.
  parseGraph(
    `"x.y"() {a = dense<1.0> : tensor<1000000000xf32>, b = dense<"0x0000803F"> : tensor<1000000000xf32>} : () -> ()\n`,
  );
});

test('alias definitions are bounded by maxAliases', () => {
  const text = Array.from({ length: 5 }, (_, i) => `#a${i} = ${i}\n`).join('');
  assertAt(parseError(text, { maxAliases: 4 }), 5, 1, /more than 4 aliases.*maxAliases/);
  parseGraph(text, 'in.mlir', { maxAliases: 5 });
});

test('aliases count as inlined: doubling chains stop at maxInputBytes, nested chains at maxDepth', () => {
  // Each alias doubles the text the graph stands for; without the count, 60 lines would print 2^60 items.
  const doubling = (n: number) =>
    `#a0 = [1, 1]\n${Array.from({ length: n }, (_, i) => `#a${i + 1} = [#a${i}, #a${i}]\n`).join('')}`;
  assertAt(
    parseError(doubling(60)),
    21,
    15,
    /inlining alias '#a19' here makes the input larger than 16777216 bytes.*maxInputBytes/,
  );
  assertAt(parseError(doubling(15), { maxInputBytes: 1000 }), 7, 8, /inlining alias '#a5'.*maxInputBytes/);
  // Each alias nests the last one once more; the use that passes maxDepth fails.
  const nesting = `#d0 = [[1]]\n${Array.from({ length: 20 }, (_, i) => `#d${i + 1} = [#d${i}]\n`).join('')}`;
  assertAt(parseError(nesting, { maxDepth: 10 }), 10, 8, /nested more than 10 deep.*maxDepth/);
  assertAt(parseError('#d = [[1]]\n"x.y"() {a = [#d]} : () -> ()\n', { maxDepth: 2 }), 2, 15, /maxDepth/);
});

test('a huge op name is a parse error, not a RangeError from spreading its bytes', () => {
  const e = parseError(`"${'a'.repeat(1_000_000)}.b"() : () -> ()\n`);
  assertAt(e, 1, 1, /op name/);
});

test('input size is bounded, reported where the limit is crossed', () => {
  const text = `${IN}${IN}`;
  assertAt(parseError(text, { maxInputBytes: IN.length + 4 }), 2, 5, /larger than \d+ bytes.*maxInputBytes/);
  parseGraph(IN, 'in.mlir', { maxInputBytes: IN.length });
});

test('a limit option must be a positive integer', () => {
  assert.throws(
    () => parseGraph(IN, 'in.mlir', { maxOps: -1 }),
    (e: unknown) => e instanceof IrError && e.code === IrErrorCode.Parse && /maxOps/.test(e.message),
  );
});

const loop = (n: number | string, body = '') =>
  `${IN}%l = "agent.loop"(%q) ({\n^bb0(%x: !agent.text):\n${body}  "agent.yield"(%x) : (!agent.text) -> ()\n}) {max_iterations = ${n} : i64} : (!agent.text) -> !agent.text\n`;

function passError(fn: () => unknown): IrError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof IrError)) throw e;
    assert.equal(e.code, IrErrorCode.Pass);
    return e;
  }
  assert.fail('expected a pass error');
}

test('unroll-loops: max_iterations above the limit fails with IR_PASS and says what to change', () => {
  for (const n of [UNROLL_LIMITS.maxIterations + 1, 2 ** 53 - 1]) {
    const e = passError(() => unrollLoops(parseGraph(loop(n))));
    assert.deepEqual(e.diagnostics[0]!.loc, { line: 2, col: 1 });
    assert.match(e.message, /max_iterations .* above the limit of \d+.*maxIterations/);
  }
  const pm = new PassManager({ registry: defaultRegistry() }).add('unroll-loops', { maxUnrollIterations: 2 });
  assert.match(passError(() => pm.run(parseGraph(loop(3)))).message, /maxUnrollIterations|maxIterations/);
  // At the limit it still unrolls.
  const ok = unrollLoops(parseGraph(loop(3)), { maxIterations: 3 });
  assert.equal(ok.ops.length, 1);
});

test('unroll-loops: the unrolled op count is bounded, nested loops included', () => {
  const inner = `  %i = "agent.loop"(%x) ({\n  ^bb0(%y: !agent.text):\n    %c = "llm.call"(%y) {model = "tiny-llama"} : (!agent.text) -> !agent.text\n    "agent.yield"(%c) : (!agent.text) -> ()\n  }) {max_iterations = 1000 : i64} : (!agent.text) -> !agent.text\n`;
  const text = loop(1000, inner).replace(
    '"agent.yield"(%x) : (!agent.text) -> ()\n}',
    '"agent.yield"(%i) : (!agent.text) -> ()\n}',
  );
  const e = passError(() => unrollLoops(parseGraph(text)));
  assert.match(e.message, /more than \d+ ops.*maxOps/);
  const small = passError(() =>
    unrollLoops(
      parseGraph(
        loop(10, inner.replace('1000', '10')).replace(
          '"agent.yield"(%x) : (!agent.text) -> ()\n}',
          '"agent.yield"(%i) : (!agent.text) -> ()\n}',
        ),
      ),
      { maxOps: 50 },
    ),
  );
  assert.match(small.message, /maxOps/);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AgentGraphBuilder,
  defaultRegistry,
  IrError,
  IrErrorCode,
  PassManager,
  type PassName,
  parseGraph,
  verify,
} from '../src/index.js';

const registry = defaultRegistry();

function parseError(text: string): IrError {
  try {
    parseGraph(text, 'in.mlir');
  } catch (e) {
    assert.ok(e instanceof IrError);
    return e;
  }
  assert.fail('expected a parse error');
}

function verifyError(text: string, strict = false): IrError {
  try {
    verify(parseGraph(text), { registry, strict });
  } catch (e) {
    assert.ok(e instanceof IrError);
    return e;
  }
  assert.fail('expected a verify error');
}

const IN = '%q = "agent.input"() {name = "q"} : () -> !agent.text\n';

test('bad token: line, column, expected and found', () => {
  const e = parseError(`${IN}%a = "llm.call"(%q) @ : (!agent.text) -> !agent.text\n`);
  assert.equal(e.code, 'IR_PARSE');
  assert.equal(e.exitCode, 2);
  assert.equal(e.message, "in.mlir:2:21: error: expected ':', found '@'");
});

test('custom syntax and bad types name what was expected', () => {
  assert.match(
    parseError('%a = llm.call(%q)\n').message,
    /^in\.mlir:1:6: error: expected a quoted op name .* found 'llm\.call'$/,
  );
  assert.match(
    parseError(`${IN}"x.y"(%q) : (!agent.text) -> tensor<4xq8>\n`).message,
    /^in\.mlir:2:39: error: expected a tensor element type/,
  );
  assert.match(
    parseError('"x.y"() {s = "abc} : () -> ()\n').message,
    /^in\.mlir:1:14: error: unterminated string/,
  );
});

test('undefined value points at the use', () => {
  const e = parseError(`${IN}%a = "llm.call"(%nope) : (!agent.text) -> !agent.text\n`);
  assert.equal(e.diagnostics[0]?.loc?.line, 2);
  assert.equal(e.diagnostics[0]?.loc?.col, 17);
  assert.match(e.message, /use of undefined value '%nope'/);
});

test('type mismatch between definition and use', () => {
  const e = parseError(`${IN}%a = "llm.call"(%q) : (!agent.json) -> !agent.text\n`);
  assert.equal(
    e.message,
    "in.mlir:2:17: error: type mismatch for '%q': expected !agent.text (its type where defined), found !agent.json",
  );
});

test('schema type mismatch is a verify error at the op', () => {
  const e = verifyError(`${IN}%k = "kv.cache"() {model = "llama3-8b", tokens = 8 : i64} : () -> !kv.cache
%a = "llm.call"(%k) {max_tokens = 1 : i64, model = "llama3-8b", prompt_tokens = 1 : i64} : (!kv.cache) -> !agent.text\n`);
  assert.equal(e.code, 'IR_VERIFY');
  assert.equal(
    e.message,
    "<input>:3:1: error: 'llm.call' operand #0: expected !agent.text or !agent.json, found !kv.cache",
  );
});

test('unbounded loop is a verify error', () => {
  const e = verifyError(`${IN}%l = "agent.loop"(%q) ({
^bb0(%x: !agent.text):
  "agent.yield"(%x) : (!agent.text) -> ()
}) : (!agent.text) -> !agent.text\n`);
  assert.equal(e.diagnostics.length, 1);
  assert.deepEqual(e.diagnostics[0]?.loc, { line: 2, col: 1 });
  assert.match(e.message, /unbounded loop: agent\.loop needs a max_iterations attribute/);
});

test('unknown op passes by default and fails under strict', () => {
  const text = `${IN}"acme.thing"(%q) : (!agent.text) -> ()\n`;
  verify(parseGraph(text), { registry });
  const e = verifyError(text, true);
  assert.equal(
    e.message,
    "<input>:2:1: error: unknown op 'acme.thing'; register it in the dialect registry or drop --strict",
  );
});

test('unknown model and nn shape errors say what fits', () => {
  assert.match(
    verifyError(
      `${IN}%a = "llm.call"(%q) {max_tokens = 1 : i64, model = "gpt-9", prompt_tokens = 1 : i64} : (!agent.text) -> !agent.text\n`,
    ).message,
    /unknown model 'gpt-9'; known models: llama3-8b/,
  );
  const mm = `%x = "agent.input"() {name = "x"} : () -> tensor<4x8xf32>
%y = "nn.matmul"(%x, %x) {dtype = f32} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>\n`;
  assert.match(
    verifyError(mm).message,
    /^<input>:2:1: error: nn\.matmul: operands \(tensor<4x8xf32>, tensor<4x8xf32>\) give result shape 4x\?, found 4x8$/,
  );
});

test('negative or non-finite token counts, byte sizes and parameter counts are verify errors at the attribute', () => {
  const at = (text: string, line: number, col: number, message: string) => {
    const e = verifyError(text);
    assert.equal(e.code, IrErrorCode.Verify);
    assert.equal(e.diagnostics.length, 1, e.message);
    assert.deepEqual(e.diagnostics[0]!.loc, { line, col });
    assert.equal(e.diagnostics[0]!.message, message);
  };
  at(
    `${IN}%a = "llm.call"(%q) {max_tokens = 1 : i64, model = "llama3-8b",
    prompt_tokens = -5 : i64} : (!agent.text) -> !agent.text\n`,
    3,
    5,
    "'llm.call' attribute 'prompt_tokens': expected an integer ≥ 0, found -5 : i64",
  );
  at(
    `${IN}%a = "llm.call"(%q) {max_tokens = -1 : i64, model = "llama3-8b", prompt_tokens = 5 : i64} : (!agent.text) -> !agent.text\n`,
    2,
    22,
    "'llm.call' attribute 'max_tokens': expected an integer ≥ 0, found -1 : i64",
  );
  at(
    `${IN}%t = "tool.invoke"(%q) {tool = "web", bytes = -1000000 : i64} : (!agent.text) -> !agent.json\n`,
    2,
    39,
    "'tool.invoke' attribute 'bytes': expected an integer ≥ 0, found -1000000 : i64",
  );
  at(
    `${IN}%m = "memory.load"(%q) {bytes = -8 : i64, key = "k"} : (!agent.text) -> !agent.json\n`,
    2,
    25,
    "'memory.load' attribute 'bytes': expected an integer ≥ 0, found -8 : i64",
  );
  at(
    `${IN}%f = "text.privacy_filter"(%q) {model_params = 0x7FF8000000000000 : f64} : (!agent.text) -> !agent.text\n`,
    2,
    33,
    "'text.privacy_filter' attribute 'model_params': expected a finite number ≥ 0, found 0x7FF8000000000000 : f64",
  );
  at(
    `${IN}%f = "text.privacy_filter"(%q) {model_params = 1e400 : f64} : (!agent.text) -> !agent.text\n`,
    2,
    33,
    "'text.privacy_filter' attribute 'model_params': expected a finite number ≥ 0, found 0x7FF0000000000000 : f64",
  );
  // Any op's `bytes`, `tokens` or `max_tokens` sizes the values it produces, known op or not.
  at(
    '%q = "agent.input"() {name = "q", bytes = -1 : i64} : () -> !agent.text\n',
    1,
    35,
    "'agent.input' attribute 'bytes': expected a finite number ≥ 0, found -1 : i64",
  );
  at(
    '%x = "acme.thing"() {max_tokens = -2 : i64} : () -> !agent.text\n',
    1,
    22,
    "'acme.thing' attribute 'max_tokens': expected a finite number ≥ 0, found -2 : i64",
  );
  // Zero is a size like any other.
  verify(
    parseGraph(`%q = "agent.input"() {name = "q", bytes = 0 : i64} : () -> !agent.text
%a = "llm.call"(%q) {max_tokens = 0 : i64, model = "llama3-8b", prompt_tokens = 0 : i64} : (!agent.text) -> !agent.text
%t = "tool.invoke"(%a) {tool = "web", bytes = 0 : i64, latency_ms = 0.0 : f64} : (!agent.text) -> !agent.json
%f = "text.privacy_filter"(%a) {model_params = 0 : i64} : (!agent.text) -> !agent.text\n`),
    { registry },
  );
});

test('IrErrorCode: unique values; every code has a throw site that carries it, with the class name', () => {
  const values = Object.values(IrErrorCode);
  assert.equal(new Set(values).size, values.length);
  for (const v of values) assert.match(v, /^[A-Z][A-Z0-9_]*$/);
  const caught = (fn: () => unknown): IrError => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof IrError && e instanceof Error);
      return e;
    }
    assert.fail('expected an IrError');
  };
  // `satisfies` makes tsc fail when a code is added to the union without a case here.
  const byCode = {
    [IrErrorCode.Parse]: caught(() => parseGraph('%a = @\n')),
    [IrErrorCode.Verify]: caught(() =>
      verify(parseGraph(`${IN}%a = "llm.call"(%q) : (!agent.text) -> !agent.text\n`), { registry }),
    ),
    [IrErrorCode.Pass]: caught(() => new PassManager({ registry }).add('no-such-pass' as PassName)),
    [IrErrorCode.Build]: caught(() => new AgentGraphBuilder('g').input('q').input('q')),
  } satisfies Record<IrErrorCode, IrError>;
  assert.deepEqual(Object.keys(byCode).sort(), [...values].sort());
  for (const [code, e] of Object.entries(byCode)) {
    assert.equal(e.code, code);
    assert.equal(e.name, 'IrError');
    assert.equal(e.exitCode, 2);
    assert.equal(e.withFile('x.mlir').code, code);
  }
  const cause = new Error('underlying');
  assert.equal(new IrError(IrErrorCode.Parse, [{ message: 'm' }], 'f', { cause }).withFile('g').cause, cause);
  // @ts-expect-error: a misspelt code does not type-check.
  const misspelt = () => new IrError('IR_PARSER', []);
  assert.equal(typeof misspelt, 'function');
});

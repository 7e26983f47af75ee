// Runs the built `stitch` CLI (packages/cli/dist) as a child process: exit codes and messages of `stitch ir`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages/cli/dist/bin.js');
const sample = join(root, 'packages/ir/samples/tool-agent.llama3-8b.mlir');
const dir = mkdtempSync(join(tmpdir(), 'stitch-ir-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function stitch(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [bin, 'ir', ...args], { input, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const IN = '%q = "agent.input"() {name = "q"} : () -> !agent.text\n';
const BAD: [string, string, boolean, RegExp][] = [
  [
    'bad-token.mlir',
    `${IN}%a = "llm.call"(%q) @ : (!agent.text) -> !agent.text\n`,
    false,
    /bad-token\.mlir:2:21: error: expected ':', found '@'/,
  ],
  [
    'undefined.mlir',
    `${IN}%a = "llm.call"(%x) : (!agent.text) -> !agent.text\n`,
    false,
    /undefined\.mlir:2:17: error: use of undefined value '%x'/,
  ],
  [
    'mismatch.mlir',
    `${IN}"agent.output"(%q) {name = "a"} : (tensor<4xf32>) -> ()\n`,
    false,
    /mismatch\.mlir:2:16: error: type mismatch for '%q'/,
  ],
  [
    'loop.mlir',
    `${IN}%l = "agent.loop"(%q) ({\n^bb0(%x: !agent.text):\n  "agent.yield"(%x) : (!agent.text) -> ()\n}) : (!agent.text) -> !agent.text\n`,
    false,
    /loop\.mlir:2:1: error: unbounded loop/,
  ],
  [
    'unknown.mlir',
    `${IN}"acme.thing"(%q) : (!agent.text) -> ()\n`,
    true,
    /unknown\.mlir:2:1: error: unknown op 'acme\.thing'/,
  ],
];

for (const [name, text, strict, message] of BAD) {
  test(`stitch ir verify ${name}: precise error, exit 2, no stack trace`, () => {
    const r = stitch(['verify', ...(strict ? ['--strict'] : []), file(name, text)]);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, message);
    assert.doesNotMatch(r.err, /\n\s+at /);
    assert.equal(r.out, '');
  });
}

test('unknown op is accepted without --strict', () => {
  const r = stitch(['verify', file('lenient.mlir', `${IN}"acme.thing"(%q) : (!agent.text) -> ()\n`)]);
  assert.equal(r.code, 0, r.err);
});

test('fmt reads stdin with -, and its output formats to itself', () => {
  const once = stitch(['fmt', '-'], `${IN}"agent.output"(%q) {name="a"}:(!agent.text)->()`);
  assert.equal(once.code, 0, once.err);
  const twice = stitch(['fmt', '-'], once.out);
  assert.equal(twice.out, once.out);
  assert.match(once.out, /"agent.output"\(%q\) \{name = "a"\} : \(!agent.text\) -> \(\)/);
});

test('fmt re-prints a graph that parses but does not verify', () => {
  const unbounded = `${IN}%l = "agent.loop"(%q) ({\n^bb0(%x: !agent.text):\n  "agent.yield"(%x) : (!agent.text) -> ()\n}) : (!agent.text) -> !agent.text\n`;
  const r = stitch(['fmt', '-'], unbounded);
  assert.equal(r.code, 0, r.err);
  assert.equal(stitch(['verify', '-'], r.out).code, 2);
});

test('errors on stdin name <stdin>', () => {
  const r = stitch(['verify', '-'], '%a = "x.y"(%b) : (i64) -> i64\n');
  assert.equal(r.code, 2);
  assert.match(r.err, /^<stdin>:1:12: error: use of undefined value '%b'/);
});

test('a graph larger than the parser takes is refused before it is read whole: a file, a device, stdin', () => {
  const refused =
    /^stitch: the graph (\/dev\/zero|on standard input) is larger than 16777216 bytes, the most this command reads \[CLI_INPUT_TOO_LARGE\]\n$/;
  const device = stitch(['verify', '/dev/zero']);
  assert.equal(device.code, 2, device.err);
  assert.match(device.err, refused);
  const piped = stitch(['fmt', '-'], ' '.repeat(16 * 1024 * 1024 + 1));
  assert.equal(piped.code, 2, piped.err);
  assert.match(piped.err, refused);
});

test('decompose prints granular llm ops; annotate --json prints the demand table', () => {
  const d = stitch(['decompose', '--tp', '2', sample]);
  assert.equal(d.code, 0, d.err);
  for (const op of [
    'llm.tokenize',
    'llm.prefill',
    'llm.allreduce',
    'kv.transfer',
    'llm.decode',
    'llm.detokenize',
  ]) {
    assert.ok(d.out.includes(`"${op}"`), op);
  }
  const a = stitch(['annotate', '--json', sample]);
  assert.equal(a.code, 0, a.err);
  const rows = JSON.parse(a.out) as { op: string; demand: { flops: number } }[];
  assert.ok(rows.find((r) => r.op === 'llm.prefill')!.demand.flops > 0);
  assert.equal(stitch(['decompose', '--tp', 'two', sample]).code, 2);
  assert.equal(stitch(['verify', join(dir, 'missing.mlir')]).code, 2);
});

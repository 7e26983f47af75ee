// Hostile IR through the built CLI (packages/cli/dist): small files that once ran out of time, memory or
// stack end in a located `file:line:col: error:` and exit 2 (bad input), never a crash (exit 1).
// Build first: pnpm exec turbo run build --output-logs=errors-only
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages/cli/dist/bin.js');
const dir = mkdtempSync(join(tmpdir(), 'stitch-ir-hostile-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `stitch ir <cmd> FILE`; the timeout only stops a runaway (the old parser took seconds and GBs). */
function stitch(cmd: string, name: string, text: string) {
  const path = join(dir, name);
  writeFileSync(path, text);
  const r = spawnSync(process.execPath, [bin, 'ir', cmd, path], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, signal: r.signal, err: r.stderr, path };
}

const IN = '%q = "agent.input"() {name = "q"} : () -> !agent.text\n';
const CASES: [string, string, string, RegExp][] = [
  ['verify', 'results.mlir', '%a:4000000 = "x.y"() : () -> ()\n', /:1:1: error: .*maxValues/],
  [
    'verify',
    'tensor.mlir',
    '%t = "agent.input"() {name = "t"} : () -> tensor<4000000000x4000000000x4000000000xf32>\n',
    /:1:43: error: .*maxElements/,
  ],
  [
    'verify',
    'regions.mlir',
    `${'"a.b"() ({\n'.repeat(5000)}${'}) : () -> ()\n'.repeat(5000)}`,
    /:101:10: error: .*maxDepth/,
  ],
  [
    'verify',
    'attrs.mlir',
    `"a.b"() {a = ${'['.repeat(20_000)}${']'.repeat(20_000)}} : () -> ()\n`,
    /:1:114: error: .*maxDepth/,
  ],
  [
    'annotate',
    'loop.mlir',
    `${IN}%l = "agent.loop"(%q) ({\n^bb0(%x: !agent.text):\n  "agent.yield"(%x) : (!agent.text) -> ()\n}) {max_iterations = 9007199254740991 : i64} : (!agent.text) -> !agent.text\n`,
    /:2:1: error: unroll-loops: .*max_iterations.*maxIterations/,
  ],
];

for (const [cmd, name, text, want] of CASES) {
  test(`stitch ir ${cmd} ${name}: located error, exit 2`, () => {
    const r = stitch(cmd, name, text);
    assert.equal(r.signal, null, 'the CLI was stopped by the runaway timeout');
    assert.equal(r.code, 2, r.err);
    assert.ok(r.err.startsWith(r.path), r.err);
    assert.match(r.err, want);
    assert.doesNotMatch(r.err, /RangeError|call stack|\n\s+at /);
  });
}

// Every benchmark has a quick variant, and the test command runs it: each must exit 0 and print JSON
// lines. No thresholds here (speed targets live in the benchmarks' own output), only that it runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../bench/', import.meta.url));
// Modules the benchmarks use, not benchmarks themselves (as bench/run.ts lists them).
const runSource = readFileSync(`${dir}run.ts`, 'utf8');
const helpers = new Set(
  [...(/const HELPERS = new Set\(\[([^\]]*)\]\)/.exec(runSource)?.[1] ?? '').matchAll(/'([^']+)'/g)].map(
    (m) => m[1],
  ),
);
const benches = readdirSync(dir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))
  .filter((f) => !helpers.has(f))
  .sort();

test('the benchmark list is found', () => {
  assert.ok(helpers.has('run'), 'bench/run.ts lists its helper modules');
  assert.ok(benches.length >= 5, benches.join(', '));
});

for (const name of benches) {
  test(`pnpm bench ${name} --quick runs and prints JSON lines`, () => {
    assert.match(
      readFileSync(`${dir}${name}.ts`, 'utf8'),
      /quick/,
      `bench/${name}.ts has no --quick variant`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', `${dir}run.ts`, name, '--quick'], {
      encoding: 'utf8',
      timeout: 300_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stderr.slice(-3000)}`);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('{'));
    assert.ok(lines.length > 0, `no JSON line in:\n${r.stdout.slice(-2000)}`);
    for (const l of lines) JSON.parse(l);
  });
}

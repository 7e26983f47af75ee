import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const bin = new URL('../packages/cli/dist/bin.js', import.meta.url).pathname;
const stitch = (...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'stitch-sweep-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('stitch tco --sweep', () => {
  it('reports every assumption and writes a tornado per scenario; --json carries the same sweep', () => {
    const svg = join(dir, 'tornado.svg');
    const r = stitch('tco', '--sweep', '--sweep-points', '2', '--chart', svg);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Base winners:/);
    // 6 prices + years, interest, power price, utilisation + 6 efficiencies.
    assert.equal(r.stdout.match(/: winner changes in \d+\/16 scenarios/g)?.length, 16);
    const text = readFileSync(svg, 'utf8');
    assert.match(text, /^<svg /);
    assert.equal(text.match(/>base: /g)?.length, 16);
    const json = JSON.parse(stitch('tco', '--sweep-points', '2', '--sweep-years', '3:6', '--json').stdout);
    assert.equal(json.parameters.length, 16);
    assert.deepEqual(json.ranges.years, [3, 6]);
    assert.deepEqual(json.parameters.find((p: { id: string }) => p.id === 'years').values, [3, 4, 6]);
  });

  it('a bad range exits 2 with SWEEP_RANGE and no stack trace', () => {
    for (const args of [
      ['--sweep-years', '6:3'],
      ['--sweep-years', '3-6'],
      ['--sweep-price', 'lots'],
      ['--sweep-utilisation', '0:1'],
      ['--sweep-points', '1'],
    ]) {
      const r = stitch('tco', ...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /\[SWEEP_RANGE\]/);
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
    }
  });
});

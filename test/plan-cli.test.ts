import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const bin = new URL('../packages/cli/dist/bin.js', import.meta.url).pathname;
const sample = new URL('../packages/ir/samples/voice-agent.llama3-8b.mlir', import.meta.url).pathname;
const stitch = (...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });

let dir: string;
let profile: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'stitch-plan-'));
  profile = join(dir, 'split.json');
  // Only prefill on "flops" and decode on "bw" meets 50 ms: 20 + 4 (KV) + 15 = 39 ms.
  writeFileSync(
    profile,
    JSON.stringify({
      classes: [
        { id: 'flops', usd_per_hour: 3.6 },
        { id: 'bw', usd_per_hour: 1.8 },
      ],
      tasks: [
        { id: 'prefill', op: 'llm.prefill', time_ms: { flops: 20, bw: 70 } },
        { id: 'decode', op: 'llm.decode', deps: ['prefill'], time_ms: { flops: 60, bw: 15 } },
      ],
      edges: [{ from: 'prefill', to: 'decode', transfer_ms: 4 }],
    }),
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('stitch plan', () => {
  it('prints the placement, critical path and cost; exit 0', () => {
    const r = stitch('plan', profile, '--sla-ms', '50');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /prefill\s+llm\.prefill\s+flops/);
    assert.match(r.stdout, /decode\s+llm\.decode\s+bw/);
    assert.match(r.stdout, /critical path: prefill → decode/);
    assert.match(r.stdout, /latency 39\.00 ms/);
    // The KV hop holds a device at each end for 4 ms: 4 · (3.6 + 1.8) / 3.6e6 = $6e-6.
    assert.match(r.stdout, /transfers: 1 edge crosses classes, 4\.000 ms, \$6\.000e-6 per request/);
  });

  it('--json with the heuristic gives the same placement', () => {
    const r = stitch('plan', profile, '--sla-ms', '50', '--solver', 'heuristic', '--json');
    assert.equal(r.status, 0, r.stderr);
    const plan = JSON.parse(r.stdout);
    assert.deepEqual(
      plan.placements.map((p: { classId: string }) => p.classId),
      ['flops', 'bw'],
    );
  });

  it('an infeasible SLA exits 3 and names the binding constraint and best latency', () => {
    const r = stitch('plan', profile, '--sla-ms', '30', '--json');
    assert.equal(r.status, 3);
    const res = JSON.parse(r.stdout);
    assert.equal(res.binding, 'sla');
    assert.ok(Math.abs(res.bestLatencyMs - 39) < 1e-6);
  });

  it('bad input exits 2 with a message and code, no stack trace', () => {
    for (const args of [
      ['plan', profile, '--sla-ms', 'soon'],
      ['plan', join(dir, 'missing.json'), '--sla-ms', '10'],
      ['plan', profile, '--sla-ms', '10', '--solver', 'magic'],
    ]) {
      const r = stitch(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /\[PLAN_INPUT\]/);
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
    }
  });

  it('plans an MLIR agent graph from its demand table, CPU for host ops, accelerators marked modelled', () => {
    const r = stitch(
      'plan',
      sample,
      '--sla-ms',
      '4000',
      '--classes',
      'h100,gaudi3,cpu',
      '--solver',
      'heuristic',
      '--json',
    );
    assert.equal(r.status, 0, r.stderr);
    const plan = JSON.parse(r.stdout);
    const byOp = (op: string) => plan.placements.filter((p: { op: string }) => p.op === op);
    for (const p of byOp('tool.invoke')) assert.equal(p.classId, 'cpu');
    for (const p of byOp('llm.prefill')) assert.equal(p.modelled, true);
    assert.ok(plan.latencyMs <= 4000);
  });
});

describe('stitch tco', () => {
  it('prints assumptions and 16 scenario tables, writes an SVG heat map', () => {
    const svg = join(dir, 'tco.svg');
    const r = stitch('tco', '--chart', svg);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Assumptions/);
    assert.equal(r.stdout.match(/TCO relative to h100::h100/g)?.length, 16);
    const text = readFileSync(svg, 'utf8');
    assert.match(text, /^<svg /);
    assert.equal(text.match(/<rect /g)?.length, 16 * 36);
  });

  it('--json has the full study; --dense changes the result', () => {
    const paper = JSON.parse(stitch('tco', '--json').stdout);
    const dense = JSON.parse(stitch('tco', '--json', '--dense').stdout);
    assert.equal(paper.basis, 'paper');
    assert.equal(dense.basis, 'dense');
    assert.notDeepEqual(paper.scenarios, dense.scenarios);
  });

  it('a bad --power exits 2', () => {
    const r = stitch('tco', '--power', 'wind');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /\[COST_INPUT\]/);
  });
});

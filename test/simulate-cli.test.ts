import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const bin = new URL('../packages/cli/dist/bin.js', import.meta.url).pathname;
const sample = new URL('../packages/ir/samples/tool-agent.llama3-8b.mlir', import.meta.url).pathname;
const stitch = (...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });

let dir: string;
let profile: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'stitch-simulate-'));
  profile = join(dir, 'split.json');
  // prefill on fast, decode on cheap: 10 + 2 + 45 = 57 ms, the only cheap placement within 60 ms.
  writeFileSync(
    profile,
    JSON.stringify({
      classes: [
        { id: 'fast', usd_per_hour: 4, count: 2 },
        { id: 'cheap', usd_per_hour: 1, count: 2 },
      ],
      tasks: [
        { id: 'prefill', time_ms: { fast: 10, cheap: 40 } },
        { id: 'decode', deps: ['prefill'], time_ms: { fast: 40, cheap: 45 } },
      ],
      edges: [{ from: 'prefill', to: 'decode', transfer_ms: 2 }],
    }),
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('stitch simulate', () => {
  it('replays a CSV trace through a profile: every request takes the planned 57 ms; JSON output', () => {
    const trace = join(dir, 'trace.csv');
    writeFileSync(trace, `t,shape\n${Array.from({ length: 50 }, (_, k) => `${k + 0.5}`).join('\n')}\n`);
    const r = stitch(
      'simulate',
      profile,
      '--sla-ms',
      '60',
      '--trace',
      trace,
      '--count',
      'fast=2',
      'cheap=2',
      '--json',
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.completed, 50);
    assert.equal(out.slaAttainment, 1);
    assert.ok(Math.abs(out.latencyMs.max - 57) < 1e-9);
    assert.deepEqual(
      out.placement.map((p: { classId: string }) => p.classId),
      ['fast', 'cheap'],
    );
    // --count overrides the profile's counts: one fast device halves prefill's replicas.
    const one = stitch(
      'simulate',
      profile,
      '--sla-ms',
      '60',
      '--trace',
      trace,
      '--count',
      'fast=1',
      '--json',
    );
    assert.equal(one.status, 0, one.stderr);
    assert.equal(JSON.parse(one.stdout).placement[0].replicas, 1);
  });

  it('runs a graph on a generated diurnal day and prints the human table with modelled classes', () => {
    const r = stitch(
      'simulate',
      sample,
      '--sla-ms',
      '3000',
      '--classes',
      'cpu,h100,b200',
      '--count',
      'cpu=40',
      'h100=8',
      'b200=8',
      '--rate',
      '2',
      '--peak-ratio',
      '2',
      '--period',
      '600',
      '--burst-every',
      '200',
      '--requests',
      '2000',
      '--window',
      '100',
      '--policy',
      'replan',
      '--noise',
      '0.2',
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /simulated 2000 requests/);
    assert.match(r.stdout, /b200 \(modelled\)\s+8/);
    assert.match(r.stdout, /per 1k requests/);
    assert.match(r.stdout, /window start s/);
  });

  it("--policy rebalance runs the coordinator's replica policy from one replica per op", () => {
    const r = stitch(
      'simulate',
      sample,
      '--sla-ms',
      '3000',
      '--classes',
      'cpu,h100,b200',
      '--count',
      'cpu=40',
      'h100=8',
      'b200=8',
      '--rate',
      '1',
      '--burst-every',
      '200',
      '--burst-factor',
      '4',
      '--requests',
      '1500',
      '--control-period',
      '5',
      '--policy',
      'rebalance',
      '--json',
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      replicaChanges: { scaleOut: number; scaleIn: number };
      placement: { replicas: number }[];
    };
    // Bursts of 4× the base rate on one replica per op: the policy must add replicas, and shed them between bursts.
    assert.ok(out.replicaChanges.scaleOut > 0, JSON.stringify(out.replicaChanges));
    assert.ok(out.replicaChanges.scaleIn > 0, JSON.stringify(out.replicaChanges));
  });

  it('bad input exits 2 with a typed error naming what to fix', () => {
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, '0.5\nsoon\n');
    const r = stitch('simulate', profile, '--sla-ms', '60', '--trace', bad, '--count', 'fast=2', 'cheap=2');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /bad\.csv:2: expected 't\[,shape\]'.*\[SIM_INPUT\]/);
    const none = stitch('simulate', profile, '--sla-ms', '60', '--count', 'fast=2', 'cheap=2');
    assert.equal(none.status, 2);
    assert.match(none.stderr, /give --rate .* or --trace FILE \[SIM_INPUT\]/);
    const policy = stitch(
      'simulate',
      profile,
      '--sla-ms',
      '60',
      '--rate',
      '1',
      '--count',
      'fast=2',
      '--policy',
      'x',
    );
    assert.equal(policy.status, 2);
    assert.match(policy.stderr, /--policy must be static, replan, rebalance/);
  });
});

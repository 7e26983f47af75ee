import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Deployment, MigrationEvent, PlacedOp } from '@stitch/agents';
import {
  type DemoReportInput,
  type DemoRequest,
  demoReportHtml,
  percentile,
  slaAttainment,
} from '../src/demo-report.js';

function placed(id: string, op: string, classId: string, node: string): PlacedOp {
  return {
    id,
    op,
    kind: op,
    deps: [],
    attrs: {},
    actorType: 'stitch-op',
    actorId: `tool_agent.${id}`,
    classId,
    modelled: classId !== 'cpu',
    node,
    estimatedMs: 1,
    usdPerRequest: 0,
  };
}

function deployment(ops: PlacedOp[]): Deployment {
  return {
    name: 'tool_agent',
    mlir: '',
    slaMs: 500,
    version: 1,
    natsUrl: 'nats://127.0.0.1:4222',
    cluster: 'demo',
    ops,
    solver: 'milp',
    solveMs: { milp: 1, heuristic: 1 },
    latencyMs: 100,
    usdPerRequest: 0,
    usdPerHour: { cpu: 0.5, gaudi3: 2, h100: 4 },
    rawMs: {},
    notes: [],
  };
}

const before = deployment([
  placed('query', 'agent.input', 'cpu', 'node-cpu'),
  placed('plan_prefill', 'llm.prefill', 'gaudi3', 'node-gaudi3'),
]);
const after = deployment([
  placed('query', 'agent.input', 'cpu', 'node-cpu'),
  placed('plan_prefill', 'llm.prefill', 'h100', 'node-h100'),
]);

/** Request i, sent at 1000·(i+1) ms, on `d`; every op takes 3600 ms so its $ is its class's $/h ÷ 1000. */
function request(i: number, latencyMs: number, d: Deployment): DemoRequest {
  const ops: DemoRequest['ops'] = {};
  for (const o of d.ops) {
    const device = o.modelled ? `virtual:${o.classId}` : o.classId;
    ops[o.id] = {
      ms: 3600,
      computeMs: 1,
      askMs: 3601,
      device,
      modelled: o.modelled,
      node: o.node,
      replay: false,
    };
  }
  return { rid: `r00${i}`, startedAt: 1000 * (i + 1), latencyMs, usd: 0, ops, deployment: d };
}

const migration: MigrationEvent = {
  deployment: 'tool_agent',
  reason: 'node node-gaudi3 is draining',
  moved: [
    { opId: 'plan_prefill', from: 'node-gaudi3', to: 'node-h100', fromClass: 'gaudi3', toClass: 'h100' },
  ],
  ms: 42,
  at: 3500,
};

function input(over: Partial<DemoReportInput> = {}): DemoReportInput {
  return {
    before,
    after,
    requests: [
      request(0, 100, before),
      request(1, 120, before),
      request(2, 900, before),
      request(3, 110, after),
      request(4, 105, after),
    ],
    sent: 6,
    migrations: [migration],
    signal: { node: 'node-gaudi3', signal: 'SIGTERM', at: 2500 },
    generatedAt: new Date('2025-01-02T03:04:05Z'),
    ...over,
  };
}

/** The `<svg>` inside the figure with this id. */
function figureSvg(html: string, id: string): string {
  const m = new RegExp(`<figure id="${id}">\\n(<svg[\\s\\S]*?</svg>)`).exec(html);
  assert.ok(m, `figure ${id}`);
  return m[1]!;
}

describe('demoReportHtml', () => {
  it('holds the four plots, each an inline svg named by its title', () => {
    const html = demoReportHtml(input());
    for (const [id, title] of [
      ['latency-over-time', 'Latency over time'],
      ['placement', 'Placement before and after'],
      ['cost-by-operator', 'Cost per request by operator'],
      ['sla-attainment', 'SLA attainment'],
    ])
      assert.match(figureSvg(html, id!), new RegExp(`<title>${title}</title>`));
  });

  it('draws the migration between the last request sent before it and the first sent after', () => {
    const svg = figureSvg(demoReportHtml(input()), 'latency-over-time');
    assert.match(svg, />migration 1 \(before r003\)</);
    assert.match(svg, />SIGTERM node-gaudi3 \(before r002\)</);
    const points = [...svg.matchAll(/<rect x="([\d.]+)" y="[\d.]+" width="5" height="5"/g)].map(
      (m) => Number(m[1]) + 2.5,
    );
    assert.equal(points.length, 5);
    const marker = /<line x1="([\d.]+)"[^>]*stroke="#c0392b" stroke-dasharray="4,2"/.exec(svg);
    assert.ok(marker, svg);
    const x = Number(marker[1]);
    assert.ok(points[2]! < x && x < points[3]!, `marker at ${x}, requests at ${points.join(', ')}`);
  });

  it('lists every event with what moved, and says so when nothing did', () => {
    assert.match(
      demoReportHtml(input()),
      /<li>migration 1, before r003: node node-gaudi3 is draining; plan_prefill node-gaudi3→node-h100; operators restored in 42 ms<\/li>/,
    );
    const quiet = demoReportHtml(input({ migrations: [], signal: undefined }));
    assert.match(quiet, /No node was stopped and nothing migrated/);
    assert.doesNotMatch(figureSvg(quiet, 'latency-over-time'), /stroke-dasharray="4,2"/);
  });

  it('shows placement before and after with moved operators and modelled devices labelled', () => {
    const svg = figureSvg(demoReportHtml(input()), 'placement');
    assert.match(svg, />plan_prefill \(moved\)</);
    assert.match(svg, />virtual:gaudi3 \(modelled\) on node-gaudi3</);
    assert.match(svg, />virtual:h100 \(modelled\) on node-h100</);
    assert.match(svg, />cpu \(measured\) on node-cpu</);
    assert.doesNotMatch(svg, />query \(moved\)</);
  });

  it('prices each operator per device it ran on: its time at the class $/h, averaged over its requests', () => {
    const svg = figureSvg(demoReportHtml(input()), 'cost-by-operator');
    // 3600 ms at $4/h (h100) is $0.004 a request, at $2/h (gaudi3) $0.002, at $0.5/h (cpu) $0.0005.
    assert.match(svg, />plan_prefill on virtual:gaudi3 \(modelled\)<[\s\S]*>\$2\.00e-3 \(3 req\)</);
    assert.match(svg, />plan_prefill on virtual:h100 \(modelled\)<[\s\S]*>\$4\.00e-3 \(2 req\)</);
    assert.match(svg, />query on cpu<[\s\S]*>\$5\.00e-4 \(5 req\)</);
  });

  it('counts a failed request against the SLA and marks the percentiles that miss it', () => {
    const html = demoReportHtml(input());
    const svg = figureSvg(html, 'sla-attainment');
    assert.match(svg, />SLA attainment: 66\.7% of 6 requests within 500 ms</);
    assert.match(svg, />4\/6 within the SLA</);
    assert.match(html, /6 requests sent, 5 completed, 1 failed/);
    assert.match(svg, /fill="#c0392b"\/>\n<text[^>]*>900\.0 ms</);
  });

  it('escapes names from the data', () => {
    const evil = placed('<img src=x onerror=alert(1)>', 'tool.invoke', 'cpu', 'node-"cpu"');
    const d = { ...deployment([evil]), name: '<script>alert(1)</script>' };
    const html = demoReportHtml(
      input({
        before: d,
        after: d,
        requests: [request(0, 10, d)],
        migrations: [],
        signal: undefined,
        sent: 1,
      }),
    );
    assert.doesNotMatch(html, /<script|<img/);
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.match(html, /&lt;img src=x onerror=alert\(1\)&gt;/);
    assert.match(html, /node-&quot;cpu&quot;/);
  });

  it('is one self-contained document: no script, nothing loaded from elsewhere', () => {
    const html = demoReportHtml(input());
    assert.match(html, /^<!doctype html>\n<html lang="en">/);
    assert.match(html, /<meta charset="utf-8">/);
    assert.doesNotMatch(html, /<script|src="http|href="http|<link|@import|url\(/i);
  });
});

describe('percentile and slaAttainment', () => {
  it('take the nearest rank and count failures as misses', () => {
    const sorted = [10, 20, 30, 40];
    assert.equal(percentile(sorted, 50), 20);
    assert.equal(percentile(sorted, 99), 40);
    assert.ok(Number.isNaN(percentile([], 50)));
    assert.deepEqual(slaAttainment(sorted, 25, 5), { within: 2, sent: 5, fraction: 0.4 });
    assert.deepEqual(slaAttainment([], 25, 0), { within: 0, sent: 0, fraction: 0 });
  });
});

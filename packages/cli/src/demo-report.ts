// The report `stitch demo` writes when it ends: one HTML file that opens offline (inline SVG and CSS,
// no script, nothing fetched) with latency over time and the migration marked, placement before and
// after, cost per request by operator and SLA attainment. Pure: data in, a string out.
import type { Deployment, MigrationEvent, PlacedOp, RequestResult } from '@stitch/agents';
import { escapeXml, Svg } from './svg.js';

/** A completed request, with when it was sent (epoch ms) and the deployment it ran on. */
export type DemoRequest = Pick<RequestResult, 'rid' | 'latencyMs' | 'usd' | 'ops'> & {
  startedAt: number;
  deployment: Pick<Deployment, 'ops' | 'usdPerHour'>;
};

/** The node the demo stopped mid-run: which, how, and when (epoch ms). */
export interface DemoSignal {
  node: string;
  signal: string;
  at: number;
}

export interface DemoReportInput {
  /** The deployment as first placed. */
  before: Deployment;
  /** The deployment when the last request had run. */
  after: Deployment;
  /** Completed requests in the order sent. */
  requests: DemoRequest[];
  /** Requests sent, failed ones included. */
  sent: number;
  migrations: MigrationEvent[];
  signal?: DemoSignal;
  generatedAt: Date;
}

/** The p-th percentile of ascending `sorted` (nearest rank); NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** Requests within the SLA out of those sent: a failed request counts as missed. */
export function slaAttainment(latenciesMs: number[], slaMs: number, sent: number) {
  const within = latenciesMs.filter((ms) => ms <= slaMs).length;
  return { within, sent, fraction: within / Math.max(1, sent) };
}

const WIDTH = 760;
const LEFT = 64;
const RIGHT = 24;
const PLOT_W = WIDTH - LEFT - RIGHT;
const OK = '#3a7d44';
const MISSED = '#c0392b';
const MEASURED = '#5b8c5a';
const MODELLED = '#6c8ebf';
const NODE_FILLS = ['#dbe8f6', '#f6e3cf', '#e2f0d9', '#eadcf2', '#f8f1c9', '#f3d9dc'];

const usd = (v: number) => `$${v.toExponential(2)}`;
const deviceLabel = (o: Pick<PlacedOp, 'classId' | 'modelled'>) =>
  o.modelled ? `virtual:${o.classId} (modelled)` : `${o.classId} (measured)`;

/** A vertical line on the latency chart: before which request an event happened. */
interface Marker {
  /** Requests sent before the event. */
  index: number;
  label: string;
  colour: string;
  detail: string;
}

function markerAt(requests: DemoRequest[], at: number): { index: number; where: string } {
  const index = requests.filter((r) => r.startedAt < at).length;
  const where =
    index === 0
      ? 'before the first request'
      : index === requests.length
        ? `after ${requests[index - 1]!.rid}`
        : `before ${requests[index]!.rid}`;
  return { index, where };
}

function markers(input: DemoReportInput): Marker[] {
  const out: Marker[] = [];
  if (input.signal) {
    const { index, where } = markerAt(input.requests, input.signal.at);
    const label = `${input.signal.signal} ${input.signal.node}`;
    out.push({ index, label: `${label} (${where})`, colour: '#777', detail: `${label}, ${where}` });
  }
  input.migrations.forEach((m, i) => {
    const { index, where } = markerAt(input.requests, m.at);
    const moves = m.moved.map((x) => `${x.opId} ${x.from}→${x.to}`).join(', ');
    out.push({
      index,
      label: `migration ${i + 1} (${where})`,
      colour: MISSED,
      detail: `migration ${i + 1}, ${where}: ${m.reason}; ${moves}; operators restored in ${m.ms.toFixed(0)} ms`,
    });
  });
  return out;
}

function latencyChart(input: DemoReportInput, marks: Marker[]): string {
  const { requests } = input;
  const sla = input.after.slaMs;
  const top = 40;
  const plotH = 220;
  const svg = new Svg(WIDTH, top + plotH + 56).title('Latency over time');
  svg.text(LEFT, 18, 'End-to-end latency of each request (ms), in the order sent', { size: 13 });
  const yMax = Math.max(1, ...requests.map((r) => r.latencyMs)) * 1.1;
  const y = (ms: number) => top + plotH - (ms / yMax) * plotH;
  const step = PLOT_W / Math.max(1, requests.length);
  const x = (i: number) => LEFT + (i + 0.5) * step;
  for (let k = 0; k <= 4; k++) {
    const ms = (yMax * k) / 4;
    svg.line(LEFT, y(ms), LEFT + PLOT_W, y(ms), '#e4e4e4');
    svg.text(LEFT - 6, y(ms) + 3, ms.toFixed(0), { anchor: 'end' });
  }
  if (sla <= yMax) {
    svg.line(LEFT, y(sla), LEFT + PLOT_W, y(sla), MISSED, '6,3');
    svg.text(LEFT + PLOT_W, y(sla) - 4, `SLA ${sla} ms`, { anchor: 'end', fill: MISSED });
  } else {
    svg.text(LEFT + PLOT_W, top - 6, `SLA ${sla} ms: above this chart`, { anchor: 'end', fill: OK });
  }
  const every = Math.ceil(requests.length / 30);
  requests.forEach((r, i) => {
    const next = requests[i + 1];
    if (next) svg.line(x(i), y(r.latencyMs), x(i + 1), y(next.latencyMs), '#9aa');
    svg.rect(x(i) - 2.5, y(r.latencyMs) - 2.5, 5, 5, r.latencyMs <= sla ? OK : MISSED);
    if (i % every === 0)
      svg.text(x(i), top + plotH + 14, r.rid, { size: 9, anchor: 'end', rotate: -45, fill: '#555' });
  });
  marks.forEach((m, j) => {
    const mx = LEFT + m.index * step;
    svg.line(mx, top - 4, mx, top + plotH, m.colour, '4,2');
    const rightHalf = mx > LEFT + PLOT_W / 2;
    svg.text(mx + (rightHalf ? -4 : 4), top + 8 + j * 12, m.label, {
      anchor: rightHalf ? 'end' : 'start',
      fill: m.colour,
    });
  });
  svg.line(LEFT, top + plotH, LEFT + PLOT_W, top + plotH);
  svg.line(LEFT, top, LEFT, top + plotH);
  return svg.toString();
}

/** Op ids in placement order: the first deployment's, then any the last one added. */
function opIds(before: Deployment, after: Deployment): string[] {
  return [...new Set([...before.ops, ...after.ops].map((o) => o.id))];
}

function placementChart(before: Deployment, after: Deployment): string {
  const ids = opIds(before, after);
  const nodes = [...new Set([...before.ops, ...after.ops].map((o) => o.node))].sort();
  const fill = (node: string) => NODE_FILLS[nodes.indexOf(node) % NODE_FILLS.length]!;
  const rowH = 20;
  const top = 52;
  const cols = [8, 128, 256, 500];
  const cellW = 236;
  const svg = new Svg(WIDTH, top + ids.length * rowH + 12).title('Placement before and after');
  svg.text(8, 18, 'Placement: operator → device and node, as first placed and at the end', { size: 13 });
  for (const [i, h] of ['operator', 'kind', 'before', 'after'].entries())
    svg.text(cols[i]!, top - 10, h, { size: 11, fill: '#333' });
  const cell = (o: PlacedOp | undefined, cx: number, cy: number) => {
    if (!o) {
      svg.text(cx + 4, cy + 14, '—');
      return;
    }
    svg.rect(cx, cy + 2, cellW, rowH - 4, fill(o.node));
    const replicas = o.replicas?.length ? ` +${o.replicas.length} replicas` : '';
    svg.text(cx + 4, cy + 14, `${deviceLabel(o)} on ${o.node}${replicas}`);
  };
  ids.forEach((id, i) => {
    const b = before.ops.find((o) => o.id === id);
    const a = after.ops.find((o) => o.id === id);
    const cy = top + i * rowH;
    const moved = b !== undefined && a !== undefined && (b.node !== a.node || b.classId !== a.classId);
    svg.text(cols[0]!, cy + 14, moved ? `${id} (moved)` : id, moved ? { fill: MISSED } : {});
    svg.text(cols[1]!, cy + 14, (a ?? b)!.op);
    cell(b, cols[2]!, cy);
    cell(a, cols[3]!, cy);
  });
  return svg.toString();
}

/** Mean $ per request of each (operator, device) it ran on, as GraphRunner prices an op's time. */
function costRows(input: DemoReportInput) {
  const rows = new Map<string, { id: string; device: string; modelled: boolean; usd: number; n: number }>();
  for (const r of input.requests) {
    for (const op of r.deployment.ops) {
      const ran = r.ops[op.id];
      if (!ran) continue;
      const key = `${op.id}\u0000${ran.device}`;
      const row = rows.get(key) ?? { id: op.id, device: ran.device, modelled: ran.modelled, usd: 0, n: 0 };
      row.usd += (ran.ms / 3.6e6) * (r.deployment.usdPerHour[op.classId] ?? 0);
      row.n++;
      rows.set(key, row);
    }
  }
  const order = opIds(input.before, input.after);
  return [...rows.values()]
    .map((row) => ({ ...row, usd: row.usd / row.n }))
    .sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id) || a.device.localeCompare(b.device));
}

function costChart(input: DemoReportInput): string {
  const rows = costRows(input);
  const rowH = 18;
  const top = 44;
  const labelW = 300;
  const barW = WIDTH - labelW - 150;
  const svg = new Svg(WIDTH, top + rows.length * rowH + 16).title('Cost per request by operator');
  svg.text(
    8,
    18,
    'Cost per request by operator and the device it ran on (mean over the requests it served)',
    {
      size: 13,
    },
  );
  svg.rect(8, 26, 10, 8, MEASURED).text(22, 34, 'measured time × device $/h', { size: 9 });
  svg
    .rect(180, 26, 10, 8, MODELLED)
    .text(194, 34, 'modelled time (cost model) × catalog TCO $/h', { size: 9 });
  const max = Math.max(Number.MIN_VALUE, ...rows.map((r) => r.usd));
  rows.forEach((r, i) => {
    const cy = top + i * rowH;
    const device = `${r.device}${r.modelled ? ' (modelled)' : ''}`;
    svg.text(labelW - 6, cy + 12, `${r.id} on ${device}`, { anchor: 'end' });
    const w = (r.usd / max) * barW;
    svg.rect(labelW, cy + 3, w, rowH - 6, r.modelled ? MODELLED : MEASURED);
    svg.text(labelW + w + 4, cy + 12, `${usd(r.usd)} (${r.n} req)`, { size: 9 });
  });
  return svg.toString();
}

function slaChart(input: DemoReportInput): string {
  const sla = input.after.slaMs;
  const sorted = input.requests.map((r) => r.latencyMs).sort((a, b) => a - b);
  const att = slaAttainment(sorted, sla, input.sent);
  const bars = [
    ['p50', percentile(sorted, 50)],
    ['p90', percentile(sorted, 90)],
    ['p99', percentile(sorted, 99)],
    ['max', sorted[sorted.length - 1] ?? Number.NaN],
  ].filter((b): b is [string, number] => Number.isFinite(b[1]));
  const top = 80;
  const rowH = 20;
  const svg = new Svg(WIDTH, top + bars.length * rowH + 34).title('SLA attainment');
  svg.text(
    8,
    18,
    `SLA attainment: ${(100 * att.fraction).toFixed(1)}% of ${att.sent} requests within ${sla} ms`,
    {
      size: 13,
    },
  );
  svg.rect(LEFT, 30, PLOT_W, 16, '#eee').rect(LEFT, 30, att.fraction * PLOT_W, 16, OK);
  svg.text(LEFT - 6, 42, 'attained', { anchor: 'end' });
  svg.text(LEFT + PLOT_W, 60, `${att.within}/${att.sent} within the SLA`, { anchor: 'end' });
  const xMax = Math.max(sla, ...sorted) * 1.05;
  const x = (ms: number) => LEFT + (ms / xMax) * PLOT_W;
  bars.forEach(([name, ms], i) => {
    const cy = top + i * rowH;
    svg.text(LEFT - 6, cy + 13, name, { anchor: 'end' });
    svg.rect(LEFT, cy + 3, x(ms) - LEFT, rowH - 6, ms <= sla ? OK : MISSED);
    svg.text(x(ms) + 4, cy + 13, `${ms.toFixed(1)} ms`, { size: 9 });
  });
  const bottom = top + bars.length * rowH;
  svg.line(x(sla), top - 4, x(sla), bottom, MISSED, '6,3');
  svg.text(x(sla), bottom + 14, `SLA ${sla} ms`, { anchor: 'middle', fill: MISSED });
  return svg.toString();
}

const STYLE = `body{font-family:sans-serif;margin:24px auto;max-width:${WIDTH + 40}px;color:#222}
figure{margin:24px 0}figcaption{font-size:13px;color:#444}p.note{font-size:13px;color:#555}`;

function figure(id: string, svg: string, caption = ''): string {
  return `<figure id="${id}">\n${svg}${caption ? `<figcaption>${caption}</figcaption>\n` : ''}</figure>`;
}

/** The whole report: one self-contained HTML document. */
export function demoReportHtml(input: DemoReportInput): string {
  const { before, after, requests, sent } = input;
  const marks = markers(input);
  const events = marks.length
    ? `<ul>${marks.map((m) => `<li>${escapeXml(m.detail)}</li>`).join('')}</ul>`
    : 'No node was stopped and nothing migrated.';
  const meta =
    `${sent} requests sent, ${requests.length} completed, ${sent - requests.length} failed; ` +
    `placed by ${before.solver} for an SLA of ${after.slaMs} ms; written ${input.generatedAt.toISOString()}`;
  return [
    '<!doctype html>',
    '<html lang="en">',
    `<head><meta charset="utf-8"><title>stitch demo: ${escapeXml(after.name)}</title><style>${STYLE}</style></head>`,
    '<body>',
    `<h1>stitch demo: ${escapeXml(after.name)}</h1>`,
    `<p>${escapeXml(meta)}</p>`,
    '<p class="note">Times on modelled devices (virtual:…) are the cost model\'s predictions, not measurements; ' +
      'the LLM operators run a decoder with synthetic, untrained weights.</p>',
    figure('latency-over-time', latencyChart(input, marks), events),
    figure('placement', placementChart(before, after)),
    figure('cost-by-operator', costChart(input)),
    figure('sla-attainment', slaChart(input)),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

// The dashboard page's script (runs in the browser): renders each `state` event of /api/events.
// Every value from the cluster goes into the page as text or an attribute, never as markup.
import type { DashboardState, DeploymentView, NodeView, OpView } from './state.js';

// Dark enough for white labels.
const PALETTE = ['#4e79a7', '#d37216', '#c8393b', '#3f8a85', '#4b8a3f', '#9a7b12', '#8f5a8a', '#7b5b48'];
const SVG_NS = 'http://www.w3.org/2000/svg';

/** A node keeps its colour while others come and go: it depends on its id only. */
function colourOf(nodeId: string): string {
  let h = 0;
  for (const ch of nodeId) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length]!;
}

type Child = Node | string;
function el(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}
function svg(tag: string, attrs: Record<string, string | number> = {}, ...children: Child[]): SVGElement {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  e.append(...children);
  return e;
}
const byId = (id: string) => document.getElementById(id)!;
const time = (ms: number) => new Date(ms).toLocaleTimeString();
const usd = (x: number) => `$${x.toFixed(2)}`;

function bar(label: string, value: number, max: number, text: string): HTMLElement {
  const pct = Math.max(0, Math.min(100, (100 * value) / Math.max(max, 1e-9)));
  return el(
    'div',
    { class: 'bar' },
    el('span', {}, label),
    el(
      'span',
      { class: 'track' },
      el('span', { class: 'fill', style: `width:${pct.toFixed(1)}%;display:block` }),
    ),
    el('span', {}, text),
  );
}

function renderNodes(nodes: NodeView[], ops: OpView[]): void {
  const maxActors = Math.max(1, ...nodes.map((n) => n.load.actors));
  const maxQueued = Math.max(1, ...nodes.map((n) => n.load.queued));
  const cards = nodes.map((n) => {
    const placed = ops.filter((o) => o.node === n.id).length;
    const device = n.modelled ? `virtual:${n.classId} (modelled)` : n.classId;
    return el(
      'div',
      {
        class: `node${n.healthy ? '' : ' unhealthy'}${n.draining ? ' draining' : ''}${n.shedding ? ' shedding' : ''}`,
        'data-node': n.id,
        style: `--c:${colourOf(n.id)}`,
      },
      el(
        'div',
        { class: 'name' },
        `${n.id} · ${device}${n.draining ? ' · draining' : ''}${n.shedding ? ' · shedding load' : ''}`,
      ),
      el('div', { class: 'devices' }, n.devices.join('; ')),
      el('div', { class: 'devices' }, `${n.host} pid ${n.pid}; ${placed} operators placed here`),
      bar('actors', n.load.actors, maxActors, String(n.load.actors)),
      bar('queued', n.load.queued, maxQueued, String(n.load.queued)),
      bar('running', n.load.running, Math.max(1, n.load.actors), String(n.load.running)),
      bar('loop lag p99', n.lagP99Ms, 100, `${n.lagP99Ms.toFixed(0)} ms`),
      n.calibrated
        ? el(
            'div',
            { class: 'devices' },
            `calibrated ${n.calibrated.matmulGflops.toFixed(1)} GFLOP/s, ${n.calibrated.matvecGbps.toFixed(1)} GB/s`,
          )
        : '',
    );
  });
  byId('nodes').replaceChildren(...cards);
}

/** Columns by longest path from an input, rows in graph order. */
function layout(ops: OpView[]): Map<string, { x: number; y: number }> {
  const depth = new Map<string, number>();
  const byOp = new Map(ops.map((o) => [o.id, o]));
  const depthOf = (id: string, seen: Set<string>): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (seen.has(id)) return 0;
    seen.add(id);
    const deps = byOp.get(id)?.deps.filter((d) => byOp.has(d)) ?? [];
    const d = deps.length ? 1 + Math.max(...deps.map((x) => depthOf(x, seen))) : 0;
    depth.set(id, d);
    return d;
  };
  const rows = new Map<number, number>();
  const at = new Map<string, { x: number; y: number }>();
  for (const o of ops) {
    const d = depthOf(o.id, new Set());
    const r = rows.get(d) ?? 0;
    rows.set(d, r + 1);
    at.set(o.id, { x: 10 + d * 150, y: 10 + r * 66 });
  }
  return at;
}

function renderGraph(d: DeploymentView): HTMLElement {
  const at = layout(d.ops);
  const width = Math.max(...[...at.values()].map((p) => p.x)) + 150;
  const height = Math.max(...[...at.values()].map((p) => p.y)) + 66;
  const g = svg('svg', { class: 'graph', width, height, 'data-deployment': d.name });
  g.append(
    svg(
      'defs',
      {},
      svg(
        'marker',
        {
          id: 'arrow',
          viewBox: '0 0 8 8',
          refX: 8,
          refY: 4,
          markerWidth: 6,
          markerHeight: 6,
          orient: 'auto',
        },
        svg('path', { d: 'M0,0 L8,4 L0,8 z', fill: '#889' }),
      ),
    ),
  );
  for (const o of d.ops) {
    const to = at.get(o.id)!;
    for (const dep of o.deps) {
      const from = at.get(dep);
      if (!from) continue;
      g.append(
        svg('line', {
          x1: from.x + 128,
          y1: from.y + 26,
          x2: to.x,
          y2: to.y + 26,
          stroke: '#889',
          'marker-end': 'url(#arrow)',
        }),
      );
    }
  }
  for (const o of d.ops) {
    const p = at.get(o.id)!;
    const device = o.modelled ? `virtual:${o.classId}` : o.classId;
    const m = o.mailbox;
    const queue = m
      ? `q ${m.depth} · ${m.processed} done · ${m.turnP50Ms.toFixed(1)} ms`
      : 'mailbox: no answer';
    const replicas = o.replicas.length > 0 ? `; replicas also on ${o.replicas.join(', ')}` : '';
    g.append(
      svg(
        'g',
        {
          class: 'op',
          'data-op': o.id,
          'data-node': o.node,
          'data-depth': m?.depth ?? '',
          'data-processed': m?.processed ?? '',
          'data-replicas': 1 + o.replicas.length,
          transform: `translate(${p.x},${p.y})`,
        },
        svg(
          'title',
          {},
          `${o.op} on ${o.node} (${device}), est. ${o.estimatedMs.toFixed(2)} ms; ${queue}${replicas}`,
        ),
        svg('rect', {
          width: 128,
          height: 52,
          rx: 5,
          fill: colourOf(o.node),
          // A queue forming is outlined, so a backlog stands out at a glance.
          stroke: m && m.depth > 0 ? '#c8393b' : '#0004',
          'stroke-width': m && m.depth > 0 ? 3 : 1,
        }),
        svg(
          'text',
          { x: 6, y: 15, fill: '#fff', 'font-weight': 600 },
          o.replicas.length > 0 ? `${o.id.slice(0, 15)} ×${1 + o.replicas.length}` : o.id.slice(0, 20),
        ),
        svg('text', { x: 6, y: 30, fill: '#fff' }, `${o.op.slice(0, 14)} · ${device}`.slice(0, 24)),
        svg('text', { x: 6, y: 45, fill: '#fff', 'font-size': 10 }, queue.slice(0, 28)),
      ),
    );
  }
  const nodes = [...new Set(d.ops.map((o) => o.node))].sort();
  const legend = el(
    'div',
    { class: 'legend' },
    ...nodes.map((n) =>
      el(
        'span',
        { 'data-legend': n },
        el('span', { class: 'swatch', style: `background:${colourOf(n)}` }),
        n,
      ),
    ),
  );
  const meta =
    `${d.name}: SLA ${d.slaMs} ms, placed by ${d.solver}, est. ${d.latencyMs.toFixed(1)} ms and ` +
    `$${d.usdPerRequest.toExponential(2)} per request`;
  return el('div', {}, el('h3', {}, meta), g, legend);
}

function renderMigrations(s: DashboardState): void {
  const list = s.coordinator.ok ? s.coordinator.migrations : [];
  byId('migration-count').textContent = String(list.length);
  const items = [...list]
    .reverse()
    .map((m) =>
      el(
        'li',
        { 'data-at': String(m.at) },
        `${time(m.at)} — ${m.reason}: ` +
          m.moved.map((x) => `${x.opId} ${x.from}→${x.to}`).join(', ') +
          ` (${m.ms.toFixed(0)} ms)`,
      ),
    );
  byId('migrations').replaceChildren(...items);
  const t0 = Math.min(s.history[0]?.at ?? s.at, ...list.map((m) => m.at));
  const span = Math.max(1, s.at - t0);
  const x = (at: number) => 10 + (880 * (at - t0)) / span;
  const line = svg('line', { x1: 10, y1: 30, x2: 890, y2: 30, stroke: '#889' });
  const marks = list.map((m) =>
    svg(
      'circle',
      { cx: x(m.at), cy: 30, r: 7, fill: '#e15759', class: 'migration' },
      svg('title', {}, `${time(m.at)} ${m.reason}`),
    ),
  );
  const labels = [
    svg('text', { x: 10, y: 54, 'font-size': 11 }, time(t0)),
    svg('text', { x: 890, y: 54, 'font-size': 11, 'text-anchor': 'end' }, time(s.at)),
  ];
  byId('timeline').replaceChildren(line, ...marks, ...labels);
}

function renderChart(s: DashboardState): void {
  const h = s.history;
  const t0 = h[0]?.at ?? s.at;
  const span = Math.max(1, s.at - t0);
  // A sample without a value (no request finished in it) leaves a gap-free line through its neighbours.
  const series = (values: (number | null)[], colour: string, top?: number) => {
    const max = top ?? Math.max(1e-9, ...values.map((v) => v ?? 0)) * 1.1;
    const pts = h.flatMap((p, i) =>
      values[i] === null ? [] : [`${10 + (880 * (p.at - t0)) / span},${120 - (100 * values[i]!) / max}`],
    );
    return svg('polyline', { points: pts.join(' '), fill: 'none', stroke: colour, 'stroke-width': 2 });
  };
  const maxUsd = Math.max(0, ...h.map((p) => p.usdPerHour));
  byId('cost-chart').replaceChildren(
    series(
      h.map((p) => p.usdPerHour),
      '#4e79a7',
    ),
    series(
      h.map((p) => p.queued),
      '#f28e2b',
    ),
    series(
      h.map((p) => p.attainment),
      '#59a14f',
      1,
    ),
    svg('text', { x: 10, y: 136, 'font-size': 11 }, `${time(t0)} → ${time(s.at)}`),
    svg(
      'text',
      { x: 890, y: 12, 'font-size': 11, 'text-anchor': 'end', fill: '#4e79a7' },
      `$/h, max ${usd(maxUsd)}`,
    ),
    svg('text', { x: 890, y: 26, 'font-size': 11, 'text-anchor': 'end', fill: '#f28e2b' }, 'queued messages'),
    svg(
      'text',
      { x: 890, y: 40, 'font-size': 11, 'text-anchor': 'end', fill: '#59a14f' },
      'SLA attainment per refresh, 0–100 %',
    ),
  );
}

function render(s: DashboardState): void {
  byId('cluster').textContent = s.cluster;
  byId('usd-hour').textContent = usd(s.usdPerHour);
  const reported = s.sla.answered + s.sla.failed;
  byId('sla').textContent =
    reported === 0 ? 'no requests' : `${((100 * s.sla.withinSla) / reported).toFixed(1)} % of ${reported}`;
  byId('node-count').textContent = String(s.nodes.length);
  byId('updated').textContent = time(s.at);
  renderNodes(
    s.nodes,
    s.deployments.flatMap((d) => d.ops),
  );
  byId('graphs').replaceChildren(...s.deployments.map(renderGraph));
  renderMigrations(s);
  renderChart(s);
  byId('status').textContent = s.coordinator.ok ? '' : s.coordinator.error;
  document.body.dataset.updated = String(s.at);
}

const key = new URLSearchParams(location.search).get('key');
const events = new EventSource(`/api/events${key ? `?key=${encodeURIComponent(key)}` : ''}`);
events.addEventListener('state', (e) =>
  render(JSON.parse((e as MessageEvent<string>).data) as DashboardState),
);
events.addEventListener('error', () => {
  byId('status').textContent = 'connection to the dashboard server lost; reconnecting…';
});

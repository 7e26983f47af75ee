// The paper's fleet comparison, dynamic: the Llama 3 8B and 70B tool agents (packages/ir/samples)
// over a compressed diurnal day with bursts, on homogeneous H100, B200 and MI300X fleets and on the
// best heterogeneous accelerator pairs (plus the CPU hosts every fleet needs), each fleet sized to
// hold the SLA in every window of the day, with the static and with the re-plan policy. A fleet is
// the planner's device use at the peak rate × a scale; the smallest scale on a ladder whose
// simulated day meets the SLA in every window wins. All devices are modelled. Imports the built
// packages (the chart through the CLI's SVG writer). Usage: pnpm bench fleets [--quick] [--chart=FILE.svg]
import { readFileSync, writeFileSync } from 'node:fs';
import { Svg } from '../packages/cli/dist/svg.js';
import { PAPER_CATALOG } from '../packages/cost/dist/index.js';
import { defaultRegistry, demandTable, PassManager, parseGraph } from '../packages/ir/dist/index.js';
import { planHeuristic, problemFromDemand } from '../packages/planner/dist/index.js';
import { replanOnUtilisation, type SimResult, simulate, staticPolicy } from '../packages/sim/dist/index.js';

const MODELS = [
  { model: 'llama3-8b', slaMs: 3000 },
  { model: 'llama3-70b', slaMs: 12000 },
] as const;
const HOMOGENEOUS = ['h100', 'b200', 'mi300x'];
const ACCELERATORS = ['b200', 'gaudi3', 'h100', 'mi300x', 'a100-80g'];
/** Heterogeneous pairs simulated: the cheapest by planned $/h at the peak, and the paper's winner. */
const PAIRS_KEPT = 3;
const PAPER_PAIR = 'b200+gaudi3';
const SCALES = [1, 1.1, 1.25, 1.5, 2, 3];
const PEAK_RPS = 100;
const PEAK_RATIO = 3;
/** A window holds the SLA when this share of its requests meets it. */
const TARGET = 0.99;

const quick = process.argv.includes('--quick');
const requests = quick ? 20_000 : 200_000;
const chart = process.argv.find((a) => a.startsWith('--chart='))?.slice('--chart='.length);

function rows(model: string) {
  const file = new URL(`../packages/ir/samples/tool-agent.${model}.mlir`, import.meta.url);
  const graph = parseGraph(readFileSync(file, 'utf8'), file.pathname);
  return demandTable(
    new PassManager({ registry: defaultRegistry() })
      .add('decompose')
      .add('unroll-loops')
      .add('annotate-demand')
      .run(graph),
  );
}

type Rows = ReturnType<typeof rows>;

/** Devices per class the planner uses at the peak rate, and the plan's $/h; null when infeasible. */
function peakUse(r: Rows, accelerators: string[], slaMs: number) {
  const p = problemFromDemand(r, { catalog: PAPER_CATALOG, classes: ['cpu', ...accelerators] });
  const plan = planHeuristic(p, { slaMs, rate: PEAK_RPS });
  return plan.status === 'infeasible' ? null : plan;
}

function day(
  r: Rows,
  accelerators: string[],
  slaMs: number,
  scale: number,
  dynamic: boolean,
): SimResult | null {
  const plan = peakUse(r, accelerators, slaMs);
  if (!plan) return null;
  const counts = Object.fromEntries(plan.classUse.map((u) => [u.classId, Math.ceil(u.devices * scale)]));
  const problem = problemFromDemand(r, { catalog: PAPER_CATALOG, classes: ['cpu', ...accelerators], counts });
  const base = PEAK_RPS / PEAK_RATIO;
  const periodS = requests / (base * (1 + (PEAK_RATIO - 1) / 2));
  return simulate({
    problem,
    slaMs,
    arrivals: {
      kind: 'generator',
      rate: base,
      diurnal: { peakRatio: PEAK_RATIO, periodS },
      bursts: { everyS: periodS / 8, durationS: periodS / 100, factor: 1.5, offsetS: periodS / 16 },
    },
    requests,
    noise: { kind: 'lognormal', cv: 0.2 },
    planRate: PEAK_RPS,
    policy: dynamic ? replanOnUtilisation() : staticPolicy,
    controlPeriodS: periodS / 96,
    windowS: periodS / 24,
  });
}

const holds = (r: SimResult) => r.windows.every((w) => w.slaAttainment === null || w.slaAttainment >= TARGET);

interface Line {
  model: string;
  fleet: string;
  heterogeneous: boolean;
  policy: 'static' | 'dynamic';
  scale: number | null;
  devices: number | null;
  /** Devices per class: a "pair" whose plan leaves one class unused holds none of it. */
  classes: Record<string, number> | null;
  usd_per_1k: number | null;
  sla_attainment: number | null;
  worst_window_attainment: number | null;
  p99_ms: number | null;
  migrations: number | null;
}

function main(): void {
  const lines: Line[] = [];
  for (const { model, slaMs } of MODELS) {
    const r = rows(model);
    const pairs: { fleet: string; usdPerHour: number }[] = [];
    for (let a = 0; a < ACCELERATORS.length; a++) {
      for (let b = a + 1; b < ACCELERATORS.length; b++) {
        const plan = peakUse(r, [ACCELERATORS[a]!, ACCELERATORS[b]!], slaMs);
        if (plan?.usdPerHour !== undefined)
          pairs.push({ fleet: `${ACCELERATORS[a]}+${ACCELERATORS[b]}`, usdPerHour: plan.usdPerHour });
      }
    }
    pairs.sort((x, y) => x.usdPerHour - y.usdPerHour);
    const kept = pairs.slice(0, PAIRS_KEPT).map((p) => p.fleet);
    if (!kept.includes(PAPER_PAIR) && pairs.some((p) => p.fleet === PAPER_PAIR)) kept.push(PAPER_PAIR);
    for (const fleet of [...HOMOGENEOUS, ...kept]) {
      for (const dynamic of [false, true]) {
        let found: { scale: number; r: SimResult } | null = null;
        for (const scale of SCALES) {
          const res = day(r, fleet.split('+'), slaMs, scale, dynamic);
          if (!res) break;
          if (holds(res)) {
            found = { scale, r: res };
            break;
          }
        }
        const res = found?.r;
        const line: Line = {
          model,
          fleet,
          heterogeneous: fleet.includes('+'),
          policy: dynamic ? 'dynamic' : 'static',
          scale: found?.scale ?? null,
          devices: res?.devices ?? null,
          classes: res ? Object.fromEntries(res.classes.map((c) => [c.classId, c.devices])) : null,
          usd_per_1k: res ? Number(res.usdPer1k.toFixed(4)) : null,
          sla_attainment: res ? Number(res.slaAttainment.toFixed(5)) : null,
          worst_window_attainment: res
            ? Number(Math.min(...res.windows.map((w) => w.slaAttainment ?? 1)).toFixed(4))
            : null,
          p99_ms: res ? Number(res.latencyMs.p99.toFixed(0)) : null,
          migrations: res?.migrations ?? null,
        };
        lines.push(line);
        process.stdout.write(`${JSON.stringify({ bench: 'fleets', sla_ms: slaMs, requests, ...line })}\n`);
      }
    }
  }
  if (chart) writeFileSync(chart, svg(lines));
}

/** Grouped bars: $ per 1k requests per fleet, static and dynamic side by side, one panel per model. */
function svg(lines: Line[]): string {
  const panelW = 520;
  const barW = 14;
  const h = 220;
  const out = new Svg(MODELS.length * panelW + 40, h + 115);
  MODELS.forEach(({ model }, m) => {
    const mine = lines.filter((l) => l.model === model);
    const fleets = [...new Set(mine.map((l) => l.fleet))];
    const max = Math.max(...mine.map((l) => l.usd_per_1k ?? 0), 1e-9);
    const x0 = m * panelW + 50;
    out.text(x0, 20, `${model}: $ per 1k requests (modelled fleets, SLA held in every window)`, { size: 13 });
    out.line(x0, h + 30, x0 + panelW - 70, h + 30);
    fleets.forEach((f, i) => {
      const gx = x0 + 10 + i * ((panelW - 80) / fleets.length);
      for (const [k, policy] of (['static', 'dynamic'] as const).entries()) {
        const v = mine.find((l) => l.fleet === f && l.policy === policy)?.usd_per_1k;
        const bh = v ? (h - 20) * (v / max) : 0;
        out.rect(gx + k * barW, h + 30 - bh, barW - 2, bh, policy === 'static' ? '#4c78a8' : '#f58518');
        if (v) out.text(gx + k * barW + 6, h + 26 - bh, v.toFixed(2), { size: 8, anchor: 'middle' });
      }
      out.text(gx + barW, h + 42, f, { size: 9, anchor: 'end', rotate: -30 });
    });
  });
  out.text(50, h + 100, '■ static', { fill: '#4c78a8' });
  out.text(110, h + 100, '■ dynamic (re-plan on utilisation)', { fill: '#f58518' });
  return out.toString();
}

main();

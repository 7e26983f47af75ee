import { writeFileSync } from 'node:fs';
import {
  CostError,
  CostErrorCode,
  PAPER_CATALOG,
  PAPER_DEVICE_IDS,
  parseCatalog,
  runTcoStudy,
  type ScenarioResult,
  type StudyResult,
  scenarioLabel,
  sweepTco,
} from '@stitch/cost';
import type { Command } from 'commander';
import { MAX_JSON_FILE_BYTES, readInputText } from '../input-file.js';
import { Svg } from '../svg.js';
import { type SweepCliOpts, sweepOptions, sweepText, tornadoSvg, wantsSweep } from './tco-sweep.js';

interface TcoCliOpts extends SweepCliOpts {
  dense?: boolean;
  power: string;
  catalog?: string;
  json?: boolean;
  chart?: string;
  sweep?: boolean;
}

const PAPER_PAIRS = [
  ['b200', 'gaudi3'],
  ['h100', 'gaudi3'],
  ['b200', 'b200'],
] as const;

const rel = (s: ScenarioResult, p: string, d: string) =>
  s.pairs.find((x) => x.prefill === p && x.decode === d)?.relativeTco;

function scenarioTable(s: ScenarioResult, ids: readonly string[]): string {
  const w = Math.max(...ids.map((x) => x.length)) + 2;
  const head = `${'prefill \\ decode'.padEnd(18)}${ids.map((d) => d.padStart(w)).join('')}`;
  const rows = ids.map((p) => {
    const cells = ids.map((d) => {
      const v = rel(s, p, d);
      return (v === undefined ? '—' : v.toFixed(2)).padStart(w);
    });
    return `${p.padEnd(18)}${cells.join('')}`;
  });
  const ok = s.pairs.filter((x) => x.usdPerRequest !== undefined);
  ok.sort((a, b) => a.usdPerRequest! - b.usdPerRequest!);
  const best = ok[0];
  const paper = PAPER_PAIRS.map(([p, d]) => `${p}::${d} ${rel(s, p, d)?.toFixed(2) ?? '—'}`).join(', ');
  const bestLine = best
    ? `best ${best.prefill}::${best.decode} ${best.relativeTco?.toFixed(2)} ($${best.usdPerMTokens!.toFixed(3)}/1M out tokens); paper's pairs: ${paper}`
    : 'no feasible pair';
  return `${scenarioLabel(s.scenario)} — TCO relative to h100::h100 (lower is cheaper)\n${head}\n${rows.join('\n')}\n${bestLine}\n`;
}

/** Colour of a relative TCO on a log scale: green cheaper than H100::H100, red dearer. */
function colour(v: number | undefined): string {
  if (v === undefined) return '#dddddd';
  const t = Math.max(-1, Math.min(1, Math.log2(v) / 1.5));
  const g = t < 0 ? 200 : Math.round(200 * (1 - t));
  const r = t > 0 ? 220 : Math.round(220 * (1 + t));
  return `rgb(${r},${g},90)`;
}

/** A 4 × 4 grid of heat maps (one per scenario), prefill down, decode across. */
export function tcoSvg(study: StudyResult, ids: readonly string[]): string {
  const cell = 34;
  const label = 62;
  const panelW = label + cell * ids.length + 16;
  const panelH = 40 + cell * ids.length + 40;
  const cols = 4;
  const rows = Math.ceil(study.scenarios.length / cols);
  const svg = new Svg(cols * panelW, rows * panelH + 40);
  svg.text(
    8,
    20,
    `TCO relative to H100::H100 (prefill rows × decode columns; ${study.basis} peaks; lower is cheaper)`,
    { size: 14 },
  );
  study.scenarios.forEach((s, n) => {
    const x0 = (n % cols) * panelW;
    const y0 = 40 + Math.floor(n / cols) * panelH;
    svg.text(x0 + 8, y0 + 14, scenarioLabel(s.scenario), { size: 11 });
    ids.forEach((d, j) => {
      svg.text(x0 + label + j * cell + cell / 2, y0 + 34, d, { size: 8, anchor: 'middle' });
    });
    ids.forEach((p, i) => {
      const y = y0 + 40 + i * cell;
      svg.text(x0 + label - 4, y + cell / 2 + 3, p, { size: 8, anchor: 'end' });
      ids.forEach((d, j) => {
        const v = rel(s, p, d);
        const x = x0 + label + j * cell;
        svg.rect(x, y, cell - 1, cell - 1, colour(v));
        svg.text(x + cell / 2, y + cell / 2 + 3, v === undefined ? '—' : v.toFixed(2), { anchor: 'middle' });
      });
    });
  });
  return svg.toString();
}

function runTco(o: TcoCliOpts): void {
  if (o.power !== 'paper' && o.power !== 'tdp') {
    throw new CostError(CostErrorCode.Input, `--power must be paper or tdp, got '${o.power}'`);
  }
  let catalog = PAPER_CATALOG;
  if (o.catalog) {
    let json: unknown;
    try {
      json = JSON.parse(readInputText(o.catalog, MAX_JSON_FILE_BYTES, 'catalog'));
    } catch (e) {
      throw new CostError(
        CostErrorCode.CatalogInvalid,
        `cannot read the catalog ${o.catalog}: ${(e as Error).message}`,
      );
    }
    catalog = parseCatalog(json);
  }
  const basis = o.dense ? 'dense' : 'paper';
  if (o.sweep || wantsSweep(o)) {
    const result = sweepTco({ basis, tco: { power: o.power }, catalog, ...sweepOptions(o) });
    if (o.chart) writeFileSync(o.chart, tornadoSvg(result));
    const text = o.json ? `${JSON.stringify(result, null, 2)}\n` : sweepText(result);
    process.stdout.write(o.chart && !o.json ? `${text}tornado chart written to ${o.chart}\n` : text);
    return;
  }
  const study = runTcoStudy({ basis, tco: { power: o.power }, catalog });
  if (o.chart) writeFileSync(o.chart, tcoSvg(study, PAPER_DEVICE_IDS));
  if (o.json) {
    process.stdout.write(`${JSON.stringify(study, null, 2)}\n`);
    return;
  }
  const parts = [
    'Assumptions (every number below follows from these):',
    ...study.assumptions.map((a) => `  ${a}`),
    '',
    ...study.scenarios.map((s) => scenarioTable(s, PAPER_DEVICE_IDS)),
  ];
  if (o.chart) parts.push(`chart written to ${o.chart}`);
  process.stdout.write(`${parts.join('\n')}\n`);
}

export function registerTco(program: Command): void {
  program
    .command('tco')
    .description(
      "The paper's TCO study: every prefill::decode pair, Llama 3 8B/70B, FP16/FP8, two shapes, two SLAs",
    )
    .option('--dense', 'use vendor dense peaks instead of the Table 5 values')
    .option('--power <basis>', "operating cost: 'paper' ($/h of Table 5) or 'tdp' (TDP × $0.40/kWh)", 'paper')
    .option('--catalog <file>', 'device catalog JSON that overrides or extends the paper catalog')
    .option('--json', 'print the full study as JSON')
    .option('--chart <file.svg>', 'write a heat-map chart (a tornado chart with --sweep) as SVG')
    .option('--sweep', 'sensitivity: move one assumption at a time and report which pair wins where')
    .option('--sweep-price <f>', 'each device price × 1−f … 1+f (implies --sweep; default 0.3)')
    .option('--sweep-years <lo:hi>', 'financing years (implies --sweep; default 3:6)')
    .option('--sweep-interest <lo:hi>', 'annual interest (implies --sweep; default 0:0.16)')
    .option('--sweep-kwh <lo:hi>', 'electricity $/kWh (implies --sweep; default 0.1:0.7)')
    .option('--sweep-utilisation <lo:hi>', 'busy share of hours (implies --sweep; default 0.3:1)')
    .option('--sweep-efficiency <lo:hi>', 'achieved ÷ peak per device (implies --sweep; default 0.5:1)')
    .option('--sweep-points <n>', 'values per assumption, 2–21 (implies --sweep; default 5)')
    .action(runTco);
}

// `stitch tco --sweep`: the text report and the tornado chart of @stitch/cost's sweepTco.
import {
  CostError,
  CostErrorCode,
  type SweepParameter,
  type SweepRanges,
  type SweepResult,
} from '@stitch/cost';
import { Svg } from '../svg.js';

export interface SweepCliOpts {
  sweepPrice?: string;
  sweepYears?: string;
  sweepInterest?: string;
  sweepKwh?: string;
  sweepUtilisation?: string;
  sweepEfficiency?: string;
  sweepPoints?: string;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function num(flag: string, text: string): number {
  if (!NUMBER.test(text.trim())) {
    throw new CostError(CostErrorCode.SweepRange, `${flag} takes a number, got '${text}'`);
  }
  return Number(text);
}

function range(flag: string, text: string | undefined): [number, number] | undefined {
  if (text === undefined) return undefined;
  const parts = text.split(':');
  if (parts.length !== 2) {
    throw new CostError(CostErrorCode.SweepRange, `${flag} takes LOW:HIGH (e.g. 3:6), got '${text}'`);
  }
  return [num(flag, parts[0]!), num(flag, parts[1]!)];
}

const FLAGS = [
  'sweepPrice',
  'sweepYears',
  'sweepInterest',
  'sweepKwh',
  'sweepUtilisation',
  'sweepEfficiency',
  'sweepPoints',
] as const satisfies readonly (keyof SweepCliOpts)[];

/** True when any --sweep-* flag was given (each implies --sweep). */
export const wantsSweep = (o: SweepCliOpts): boolean => FLAGS.some((k) => o[k] !== undefined);

/** The flags as sweepTco options; @stitch/cost checks the bounds. */
export function sweepOptions(o: SweepCliOpts): { ranges: Partial<SweepRanges>; points?: number } {
  const ranges: Partial<SweepRanges> = {};
  if (o.sweepPrice !== undefined) ranges.price = num('--sweep-price', o.sweepPrice);
  const pairs = [
    ['years', '--sweep-years', o.sweepYears],
    ['annualInterest', '--sweep-interest', o.sweepInterest],
    ['usdPerKwh', '--sweep-kwh', o.sweepKwh],
    ['utilisation', '--sweep-utilisation', o.sweepUtilisation],
    ['efficiency', '--sweep-efficiency', o.sweepEfficiency],
  ] as const;
  for (const [key, flag, text] of pairs) {
    const r = range(flag, text);
    if (r) ranges[key] = r;
  }
  return o.sweepPoints === undefined ? { ranges } : { ranges, points: num('--sweep-points', o.sweepPoints) };
}

const fmt = (v: number) => String(Number(v.toPrecision(3)));
const span = (from: number, to: number) => (from === to ? fmt(from) : `${fmt(from)}–${fmt(to)}`);

/** Assumptions, base winners, then each assumption with the scenarios whose winner it changes. */
export function sweepText(r: SweepResult): string {
  const w = Math.max(...r.scenarios.map((s) => s.length));
  const lines = [
    'TCO sensitivity: one assumption moved at a time; the winner is the cheapest prefill::decode pair.',
    'margin = base winner $/request ÷ the cheapest other pair (> 1: the base conclusion is overturned).',
    '',
    'Base winners:',
    ...r.scenarios.map((s, n) => {
      const b = r.base[n]!;
      return `  ${s.padEnd(w)}  ${b.pair ?? 'none feasible'}${b.margin === null ? '' : `  margin ${b.margin.toFixed(3)}`}`;
    }),
    '',
  ];
  const order = [...r.parameters].sort((a, b) => b.flips - a.flips);
  for (const p of order) {
    lines.push(
      `${p.id} ${span(p.values[0]!, p.values.at(-1)!)} (base ${fmt(p.base)}): winner changes in ${p.flips}/${r.scenarios.length} scenarios`,
    );
    for (const s of p.series) {
      if (!s.flips) continue;
      const where = s.regions.map((g) => `${span(g.from, g.to)} ${g.pair ?? 'none'}`).join(' | ');
      lines.push(`  ${s.scenario.padEnd(w)}  ${where}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

interface Bar {
  id: string;
  lo: number;
  hi: number;
  /** Winners other than the base one, with the values they win at. */
  others: string;
}

function bars(params: SweepParameter[], n: number, basePair: string | null): Bar[] {
  const out: Bar[] = [];
  for (const p of params) {
    const s = p.series[n]!;
    const m = s.points.map((x) => x.margin).filter((x): x is number => x !== null && x > 0);
    if (m.length === 0) continue;
    const others = s.regions
      .filter((g) => g.pair !== basePair)
      .map((g) => `${span(g.from, g.to)}: ${g.pair ?? 'none'}`)
      .join(', ');
    out.push({ id: p.id, lo: Math.min(...m), hi: Math.max(...m), others });
  }
  return out.sort((a, b) => Math.log(b.hi / b.lo) - Math.log(a.hi / a.lo));
}

/** Half-width of a panel's log scale: its widest bar end, at least ±1 %, at most 4×. */
function logSpan(list: Bar[]): number {
  const ends = list.flatMap((b) => [Math.abs(Math.log(b.lo)), Math.abs(Math.log(b.hi))]);
  return Math.min(Math.log(4), Math.max(Math.log(1.01), ...ends));
}

/**
 * One tornado per scenario: for each assumption a bar over the range of the base winner's margin
 * (log scale, each panel spanning its own widest bar); left of the line at 1 the base winner holds
 * (blue), right of it another pair wins (red, named beside the bar with the values where it wins).
 */
export function tornadoSvg(r: SweepResult): string {
  const rowH = 13;
  const labelW = 100;
  const plotW = 200;
  const panelW = labelW + plotW + 190;
  const rows = r.parameters.length;
  const panelH = 48 + rows * rowH + 22;
  const cols = 4;
  const svg = new Svg(cols * panelW, 40 + Math.ceil(r.scenarios.length / cols) * panelH);
  svg.text(
    8,
    20,
    `TCO sensitivity (${r.basis} peaks): base winner's $/request ÷ best other pair, one assumption at a time; > 1 = another pair wins`,
    { size: 14 },
  );
  r.scenarios.forEach((label, n) => {
    const x0 = (n % cols) * panelW;
    const y0 = 40 + Math.floor(n / cols) * panelH;
    const list = bars(r.parameters, n, r.base[n]!.pair);
    const half = logSpan(list);
    const mid = x0 + labelW + plotW / 2;
    const at = (v: number) => mid + (Math.log(v) / half) * (plotW / 2);
    svg.text(x0 + 8, y0 + 14, label, { size: 11 });
    svg.text(x0 + 8, y0 + 28, `base: ${r.base[n]!.pair ?? 'none feasible'}`, { size: 9, fill: '#555' });
    list.forEach((b, k) => {
      const y = y0 + 40 + k * rowH;
      svg.text(x0 + labelW - 4, y + 9, b.id, { size: 8, anchor: 'end' });
      const left = at(b.lo);
      const right = at(b.hi);
      const one = at(1);
      if (left < one) svg.rect(left, y + 1, Math.min(right, one) - left + 0.5, rowH - 3, '#4c78a8');
      if (right > one)
        svg.rect(Math.max(left, one), y + 1, right - Math.max(left, one) + 0.5, rowH - 3, '#e45756');
      if (b.others) svg.text(x0 + labelW + plotW + 6, y + 9, b.others, { size: 7, fill: '#b03030' });
    });
    const yAxis = y0 + 40 + Math.max(list.length, 1) * rowH;
    const edge = Math.exp(half);
    for (const v of [1 / edge, edge]) svg.line(at(v), y0 + 36, at(v), yAxis, '#ccc', '2,2');
    svg.line(at(1), y0 + 36, at(1), yAxis, '#222');
    for (const v of [1 / edge, 1, edge])
      svg.text(at(v), yAxis + 10, `${fmt(v)}×`, { size: 8, anchor: 'middle' });
  });
  return svg.toString();
}

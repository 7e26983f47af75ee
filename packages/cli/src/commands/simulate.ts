import { PAPER_CATALOG, parseCatalog } from '@stitch/cost';
import {
  type ArrivalSpec,
  MAX_REQUESTS,
  type Policy,
  type ReplicaMode,
  rebalancePolicy,
  replanOnUtilisation,
  type ShapeSpec,
  SimError,
  SimErrorCode,
  type SimOptions,
  type SimResult,
  simulate,
  staticPolicy,
} from '@stitch/sim';
import type { Command } from 'commander';
import { alignColumns } from '../columns.js';
import { loadProblem, num, readJson, readText } from './plan.js';

interface SimCliOpts {
  slaMs: string;
  count?: string[];
  classes?: string;
  catalog?: string;
  dense?: boolean;
  rate?: string;
  peakRatio?: string;
  period: string;
  burstEvery?: string;
  burstDuration: string;
  burstFactor: string;
  trace?: string;
  shapes?: string;
  requests?: string;
  duration?: string;
  seed: string;
  noise: string;
  policy: string;
  replicas?: string;
  controlPeriod: string;
  window: string;
  migrationMs: string;
  json?: boolean;
}

/** Trace files beyond this are refused before they are read. */
const MAX_TRACE_BYTES = 512 * 1024 * 1024;

const bad = (message: string): never => {
  throw new SimError(SimErrorCode.Input, message);
};

/** A JSON array of `{ t, shape? }` or CSV lines `t[,shape]` (an optional `t,shape` header). */
function readTrace(file: string): { t: number; shape?: string }[] {
  if (file.endsWith('.json')) {
    const json = readJson(file, 'trace', MAX_TRACE_BYTES);
    if (!Array.isArray(json))
      bad(`the trace ${file} must be a JSON array of { "t": seconds, "shape"?: name }`);
    return json as { t: number; shape?: string }[];
  }
  const out: { t: number; shape?: string }[] = [];
  const lines = readText(file, 'trace', MAX_TRACE_BYTES).split(/\r?\n/);
  for (const [k, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || (k === 0 && /^t\b/.test(line))) continue;
    if (out.length >= MAX_REQUESTS) bad(`the trace ${file} has more than ${MAX_REQUESTS} requests`);
    const [t, shape, ...rest] = line.split(',').map((x) => x.trim());
    const v = Number(t);
    if (t === '' || !Number.isFinite(v) || rest.length > 0)
      bad(`${file}:${k + 1}: expected 't[,shape]' with t in seconds, got '${line.slice(0, 80)}'`);
    out.push(shape ? { t: v, shape } : { t: v });
  }
  return out;
}

function readShapes(file: string): ShapeSpec[] {
  const json = readJson(file, 'shapes file');
  if (!Array.isArray(json) || json.length > 1000)
    bad(`the shapes file ${file} must be an array of at most 1000 { name, weight?, scale }`);
  for (const [k, s] of (json as Record<string, unknown>[]).entries()) {
    if (typeof s?.name !== 'string' || typeof s.scale !== 'object' || s.scale === null)
      bad(`${file}[${k}] must have a string name and a scale object { "<task id or op>": factor }`);
  }
  return json as ShapeSpec[];
}

function arrivals(o: SimCliOpts): ArrivalSpec {
  if (o.trace) {
    if (o.rate !== undefined) bad('give either --trace or --rate, not both');
    return { kind: 'trace', entries: readTrace(o.trace) };
  }
  if (o.rate === undefined) bad('give --rate (requests/s at the trough of the day) or --trace FILE');
  const spec: ArrivalSpec = { kind: 'generator', rate: num('rate', o.rate!, 0, true) };
  if (o.peakRatio !== undefined)
    spec.diurnal = {
      peakRatio: num('peak-ratio', o.peakRatio, 1, false),
      periodS: num('period', o.period, 0, true),
    };
  if (o.burstEvery !== undefined) {
    spec.bursts = {
      everyS: num('burst-every', o.burstEvery, 0, true),
      durationS: num('burst-duration', o.burstDuration, 0, true),
      factor: num('burst-factor', o.burstFactor, 1, false),
    };
  }
  return spec;
}

/** The control loop each `--policy` names: the same functions the live coordinator's decisions use. */
const POLICIES: Record<string, () => Policy> = {
  static: () => staticPolicy,
  replan: () => replanOnUtilisation(),
  rebalance: () => rebalancePolicy(),
};

function options(file: string, o: SimCliOpts): SimOptions {
  const policy = POLICIES[o.policy];
  if (!policy) bad(`--policy must be ${Object.keys(POLICIES).join(', ')}, got '${o.policy}'`);
  if (o.replicas !== undefined && o.replicas !== 'fill' && o.replicas !== 'one')
    bad(`--replicas must be fill or one, got '${o.replicas}'`);
  const profile = file.endsWith('.json');
  if (!o.count && !profile)
    bad('give the fleet with --count CLASS=N for every class (e.g. --count h100=64 cpu=16)');
  const catalog = o.catalog ? parseCatalog(readJson(o.catalog, 'catalog')) : PAPER_CATALOG;
  const problem = loadProblem(file, o, catalog);
  // A profile carries its counts; --count overrides them class by class.
  if (profile) {
    for (const pair of o.count ?? []) {
      const [id, n] = pair.split('=');
      const cls = problem.classes.find((c) => c.id === id);
      if (!cls || !/^\d+$/.test(n ?? ''))
        bad(`--count takes CLASS=N for a class of the profile, got '${pair}'`);
      cls!.count = Number(n);
    }
  }
  const sim: SimOptions = {
    problem,
    slaMs: num('sla-ms', o.slaMs, 0, true),
    arrivals: arrivals(o),
    seed: num('seed', o.seed, 0, false),
    policy: policy!(),
    // The coordinator deploys one replica per op and scales from there; the other policies share out the fleet.
    replicas: (o.replicas ?? (o.policy === 'rebalance' ? 'one' : 'fill')) as ReplicaMode,
    controlPeriodS: num('control-period', o.controlPeriod, 0, true),
    windowS: num('window', o.window, 0, true),
    migrationMs: num('migration-ms', o.migrationMs, 0, false),
  };
  if (o.requests !== undefined) sim.requests = num('requests', o.requests, 0, true);
  if (o.duration !== undefined) sim.durationS = num('duration', o.duration, 0, true);
  if (o.shapes) sim.shapes = readShapes(o.shapes);
  if (o.noise === 'exponential') sim.noise = { kind: 'exponential' };
  else if (o.noise !== 'none') sim.noise = { kind: 'lognormal', cv: num('noise', o.noise, 0, true) };
  return sim;
}

const pct = (x: number | null) => (x === null ? '—' : `${(100 * x).toFixed(2)} %`);
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toPrecision(3));

/** The first column (a name) to the left, the figures to the right. */
const pad = (rows: string[][]): string => alignColumns(rows, (c) => c > 0).join('\n');

function human(r: SimResult, policy: string): string {
  const lines = [
    `simulated ${r.requests} requests over ${(r.spanS / 3600).toFixed(2)} h on ${r.devices} modelled devices (${r.classes.length} classes), policy ${policy}`,
    `SLA ${r.slaMs} ms: attainment ${pct(r.slaAttainment)}; latency p50 ${ms(r.latencyMs.p50)} / p95 ${ms(r.latencyMs.p95)} / p99 ${ms(r.latencyMs.p99)} ms; mean queue wait ${ms(r.meanQueueWaitMs)} ms`,
    `$${r.usdPer1k.toFixed(4)} per 1k requests (fleet $${r.fleetUsdPerHour.toFixed(2)}/h, every device paid busy or idle); migrations ${r.migrations}; replicas +${r.replicaChanges.scaleOut} / -${r.replicaChanges.scaleIn}; rejected ${r.rejected}`,
    '',
    pad([
      ['class', 'devices', '$/h each', 'utilisation'],
      ...r.classes.map((c) => [
        `${c.classId} (modelled)`,
        String(c.devices),
        c.usdPerHour.toFixed(3),
        pct(c.utilisation),
      ]),
    ]),
  ];
  if (r.windows.length <= 48) {
    lines.push(
      '',
      pad([
        ['window start s', 'arrivals', 'attainment', 'mean ms', 'migrations'],
        ...r.windows.map((w) => [
          w.startS.toFixed(0),
          String(w.arrivals),
          pct(w.slaAttainment),
          w.meanLatencyMs === null ? '—' : ms(w.meanLatencyMs),
          String(w.migrations),
        ]),
      ]),
    );
  }
  lines.push(
    '',
    `${r.events} events in ${(r.wallMs / 1e3).toFixed(2)} s (${(r.eventsPerS / 1e6).toFixed(2)} M events/s); times are cost-model predictions`,
  );
  return `${lines.join('\n')}\n`;
}

function runSimulate(file: string, o: SimCliOpts): void {
  const result = simulate(options(file, o));
  process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : human(result, o.policy));
}

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description(
      'Simulate a fleet of modelled devices serving a graph (.mlir) or profile (.json) request by request',
    )
    .argument('<file>', 'agent graph in MLIR generic syntax, or profiled t_ij tables as JSON')
    .requiredOption('--sla-ms <n>', 'end-to-end latency bound per request, ms')
    .option('--count <class=n...>', 'the fleet: devices per class, e.g. --count h100=64 cpu=16')
    .option('--classes <ids>', 'comma-separated class ids of a graph (default: whole catalog)')
    .option('--catalog <file>', 'device catalog JSON that extends the paper catalog')
    .option('--dense', 'time graph ops with vendor dense peaks instead of Table 5')
    .option('--rate <r>', 'generator: requests/s (at the trough of the day with --peak-ratio)')
    .option('--peak-ratio <x>', 'generator: diurnal peak ÷ trough (cosine day)')
    .option('--period <s>', 'generator: length of the day, s', '86400')
    .option('--burst-every <s>', 'generator: a burst every this many seconds')
    .option('--burst-duration <s>', 'generator: burst length, s', '60')
    .option('--burst-factor <x>', 'generator: rate multiplier during a burst', '2')
    .option('--trace <file>', 'recorded arrivals: JSON [{ t, shape? }] or CSV t[,shape] (seconds)')
    .option('--shapes <file>', 'request shapes JSON [{ name, weight?, scale: { <task or op>: factor } }]')
    .option('--requests <n>', 'stop arrivals after this many requests (generator default 1000000)')
    .option('--duration <s>', 'stop arrivals at this simulated time, s')
    .option('--seed <n>', 'PRNG seed (runs are deterministic under a seed)', '1')
    .option('--noise <cv|exponential|none>', 'service-time noise: lognormal CV, exponential, or none', 'none')
    .option(
      '--policy <name>',
      "static; replan (the planner re-places ops when a class runs hot); or rebalance (the coordinator's replica policy)",
      'static',
    )
    .option(
      '--replicas <mode>',
      'fill (every device of a class shares its ops) or one (one replica per op, as the coordinator deploys); default: one under rebalance, else fill',
    )
    .option('--control-period <s>', 'seconds between policy decisions', '60')
    .option('--window <s>', 'time-series window, s', '3600')
    .option('--migration-ms <n>', 'a moved op serves again after this long, ms', '0')
    .option('--json', 'print the full result as JSON')
    .action(runSimulate);
}

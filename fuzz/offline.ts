// The fuzz targets that need no bus: IR text through the parser and the passes a deployment runs, and
// profile JSON through the planner's input check and heuristic. A case passes when it either works or
// throws the package's typed error (with a source location for parse errors); any other throw counts
// as a crash, since it would reach a CLI or the coordinator as an unexplained failure.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultRegistry, IrError, IrErrorCode, PassManager, parseGraph } from '@stitch/ir';
import { generateProblem, PlanError, planHeuristic, problemFromProfile } from '@stitch/planner';
import { mutateText, mutateValue, type Rng } from './prng.js';

export interface OfflineResult {
  reached: number;
  crashes: number;
  /** The first few crashes: case number and message, so a seed replays them. */
  examples: string[];
}

const samplesDir = fileURLToPath(new URL('../packages/ir/samples/', import.meta.url));

/** The sample agent graphs shipped with @stitch/ir: the seed corpus of the IR targets. */
export function irCorpus(): string[] {
  return readdirSync(samplesDir)
    .filter((f) => f.endsWith('.mlir'))
    .sort()
    .map((f) => readFileSync(`${samplesDir}${f}`, 'utf8'));
}

const IR_SNIPPETS = [
  '{',
  '}',
  '(',
  ')',
  '%a:4000000',
  '%0',
  '!agent.tensor<1x384xf32>',
  'tensor<99999999999x99999999999xf32>',
  'max_iterations = 9007199254740993',
  'max_iterations = -1',
  '"agent.loop"() ({',
  '}) : () -> ()',
  '0x7FF0000000000000',
  '"\\u0000"',
  'sla_ms = 1e400',
  '#loc',
  '// comment',
  '^bb0(%x: f32):',
];

const EXTREMES = ['0', '-1', '1', '7', '65536', '4294967296', '100000000', '999999999999'];
const ODD_NUMBERS = ['9007199254740993', '1e308', '-0', '0x7fffffff'];

/**
 * A sample graph with edits: most change attribute values (numbers to extremes, strings to odd text),
 * so the case still parses and reaches the passes; the rest edit lines and text.
 */
export function irCase(rng: Rng, corpus: readonly string[]): string {
  if (rng.chance(0.05)) return rng.text(200);
  if (rng.chance(0.03)) return grownCase(rng);
  const lines = rng.pick(corpus).split('\n');
  const edits = rng.chance(0.6) ? 1 : 2 + rng.int(2);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(lines.length);
    const line = lines[at] ?? '';
    const k = rng.next();
    if (k < 0.45) {
      const numbers = [...line.matchAll(/= (-?\d+(\.\d+)?(e\d+)?)/g)];
      const hit = numbers.length ? rng.pick(numbers) : undefined;
      if (hit?.index !== undefined)
        lines[at] =
          `${line.slice(0, hit.index)}= ${rng.chance(0.85) ? rng.pick(EXTREMES) : rng.pick(ODD_NUMBERS)}${line.slice(hit.index + hit[0].length)}`;
    } else if (k < 0.65) {
      lines[at] = line.replace(
        /(?<=[{ ])([a-z_]+) = "[^"]*"/,
        (_m, key: string) => `${key} = ${mlirString(rng.text(rng.chance(0.1) ? 5000 : 30))}`,
      );
    } else if (k < 0.75) {
      const col = rng.int(line.length + 1);
      lines[at] = line.slice(0, col) + rng.pick(IR_SNIPPETS) + line.slice(col);
    } else if (k < 0.85) {
      lines[at] = mutateText(rng, line);
    } else if (k < 0.93) {
      lines.splice(at, 0, lines[rng.int(lines.length)] ?? '');
    } else {
      lines.splice(at, 1);
    }
  }
  return lines.join('\n');
}

/**
 * A graph grown rather than edited: a long chain of pass-through ops (routes, privacy filters), as
 * itself or as a loop body unrolled many times, or many regions reusing one value name. The sample
 * graphs are a few dozen ops; passes that recurse or rename per op break only on shapes like these.
 */
function grownCase(rng: Rng): string {
  const op = rng.chance(0.5) ? '"agent.route"' : '"text.privacy_filter"';
  const link = (to: string, from: string) =>
    `  %${to} = ${op}(%${from}) {condition = "c", model_params = 1000 : i64} : (!agent.text) -> !agent.text\n`;
  const input = '%q = "agent.input"() {bytes = 4096 : i64, name = "q"} : () -> !agent.text\n';
  const kind = rng.int(3);
  if (kind === 0) {
    const n = 1 + rng.int(3000);
    let text = input;
    for (let i = 0; i < n; i++) text += link(`r${i}`, i === 0 ? 'q' : `r${i - 1}`);
    return `${text}"agent.output"(%r${n - 1}) {name = "a"} : (!agent.text) -> ()\n`;
  }
  if (kind === 1) {
    const body = 1 + rng.int(20);
    let text = `${input}%l = "agent.loop"(%q) ({\n^bb0(%f0: !agent.text):\n`;
    for (let i = 1; i <= body; i++) text += link(`f${i}`, `f${i - 1}`);
    text += `  "agent.yield"(%f${body}) : (!agent.text) -> ()\n}) {max_iterations = ${1 + rng.int(256)} : i64}`;
    return `${text} : (!agent.text) -> !agent.text\n"agent.output"(%l) {name = "a"} : (!agent.text) -> ()\n`;
  }
  const regions = Array.from({ length: 1 + rng.int(4000) }, () => '{^a(%x: i1):}').join(', ');
  return `"a.b"() (${regions}) : () -> ()\n`;
}

/** A string literal as MLIR writes it: printable ASCII as is, every other byte as `\\XX`. */
function mlirString(s: string): string {
  let out = '"';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    out += b >= 0x20 && b < 0x7f && c !== '"' && c !== '\\' ? c : `\\${b.toString(16).padStart(2, '0')}`;
  }
  return `${out}"`;
}

/** One IR case through what `stitch ir` and a deployment do: parse, decompose, unroll, annotate. */
function runIr(text: string): 'parsed' | 'rejected' {
  let graph: ReturnType<typeof parseGraph>;
  try {
    graph = parseGraph(text, 'fuzz.mlir');
  } catch (err) {
    if (err instanceof IrError && (err.code !== IrErrorCode.Parse || err.diagnostics.every((d) => d.loc)))
      return 'rejected';
    throw err;
  }
  try {
    new PassManager({ registry: defaultRegistry() })
      .add('decompose')
      .add('unroll-loops')
      .add('annotate-demand')
      .run(graph);
  } catch (err) {
    if (!(err instanceof IrError)) throw err;
  }
  return 'parsed';
}

/** A valid profile (the planner's JSON input) made from a generated problem. */
export function profileSeed(seed: number): Record<string, unknown> {
  const { problem } = generateProblem({ ops: 6, classes: 4, seed });
  return {
    classes: problem.classes.map((c) => ({ id: c.id, usd_per_hour: c.usdPerHour, link_gbps: c.linkGBps })),
    tasks: problem.tasks.map((t, i) => ({
      id: t.id,
      deps: t.deps,
      time_ms: Object.fromEntries(
        problem.classes.flatMap((c, j) => {
          const ms = problem.timeMs[i]?.[j] ?? Infinity;
          return Number.isFinite(ms) ? [[c.id, ms]] : [];
        }),
      ),
    })),
    edges: problem.edges.map((e) => ({ from: e.from, to: e.to, bytes: e.bytes })),
  };
}

const PROFILE_KEYS = [
  'id',
  'usd_per_hour',
  'count',
  'link_gbps',
  'deps',
  'time_ms',
  'devices',
  'from',
  'to',
  'bytes',
];

/** One profile case: its JSON text (mutated values, or mutated text) through the check and the heuristic. */
function runProfile(rng: Rng, seeds: readonly Record<string, unknown>[]): 'parsed' | 'rejected' {
  const seed = rng.pick(seeds);
  const r = rng.next();
  const text =
    r < 0.7
      ? JSON.stringify(mutateValue(rng, seed, PROFILE_KEYS))
      : r < 0.9
        ? mutateText(rng, JSON.stringify(seed))
        : rng.text(100);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return 'rejected';
  }
  try {
    const problem = problemFromProfile(json);
    planHeuristic(problem, { slaMs: rng.pick([1, 50, 1000, 1e9]) });
  } catch (err) {
    if (!(err instanceof PlanError)) throw err;
  }
  return 'parsed';
}

function tally(cases: number, one: (i: number) => 'parsed' | 'rejected'): OfflineResult {
  const out: OfflineResult = { reached: 0, crashes: 0, examples: [] };
  for (let i = 0; i < cases; i++) {
    try {
      if (one(i) === 'parsed') out.reached++;
    } catch (err) {
      out.crashes++;
      if (out.examples.length < 5) out.examples.push(`case ${i}: ${String(err).slice(0, 300)}`);
    }
  }
  return out;
}

export function fuzzIr(rng: Rng, cases: number): OfflineResult {
  const corpus = irCorpus();
  return tally(cases, () => runIr(irCase(rng, corpus)));
}

export function fuzzProfile(rng: Rng, cases: number): OfflineResult {
  const seeds = [1, 2, 3].map(profileSeed);
  return tally(cases, () => runProfile(rng, seeds));
}

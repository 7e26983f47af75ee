// `pnpm chaos [--quick] [--scenario a,b] [--requests N] [--rate R] [--keep DIR] [--unguarded]`: each
// scenario of scenarios.ts on a fresh three-host harness, one JSON line per scenario, then a table. The
// nats-servers run under `stitch cluster guard` as deploy/ runs them; `--unguarded` runs them bare, for
// comparison. Exits 1 when a scenario lost or duplicated a request or could not be counted, 2 when
// network namespaces are unavailable here.
import { hostsUnavailable } from '../fixtures/hosts/netns.js';
import type { ScenarioResult } from './measure.js';
import { type LoadShape, runScenario } from './scenario.js';
import { SCENARIOS } from './scenarios.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const unguarded = args.includes('--unguarded');
const arg = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const requests = Number(arg('requests') ?? (quick ? 300 : 2000));
const rate = Number(arg('rate') ?? (quick ? 50 : 100));
const runMs = (requests / rate) * 1000;
const shape: LoadShape = {
  requests,
  rate,
  actors: 8,
  // The fault comes after a quarter of the run and is held for half of it (2 to 12 s): longer than
  // nats-server's Raft election timeout (4-9 s), so that the majority's failover happens during the fault.
  faultAfterMs: Math.round(runMs / 4),
  holdMs: Math.round(Math.min(12_000, Math.max(2000, runMs / 2))),
  timeoutMs: 2000,
  giveUpMs: 60_000,
};
const only = arg('scenario')?.split(',');
const chosen = SCENARIOS.filter((s) => !only || only.includes(s.name));
if (chosen.length === 0) {
  process.stderr.write(`no scenario named ${only}; scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}\n`);
  process.exit(2);
}
const why = hostsUnavailable();
if (why) {
  process.stderr.write(`chaos: network namespaces are unavailable here: ${why}\n`);
  process.exit(2);
}
process.on('SIGINT', () => process.exit(130));

const results: ScenarioResult[] = [];
let broken = 0;
for (const s of chosen) {
  const started = Date.now();
  try {
    const { left: _, ...r } = await runScenario(s, shape, arg('keep'), !unguarded);
    results.push(r);
    process.stdout.write(
      `${JSON.stringify({ ...r, ...(unguarded ? { unguarded } : {}), what: s.what, wall_s: (Date.now() - started) / 1000 })}\n`,
    );
  } catch (err) {
    // The scenario could not be counted (a process died, the counters never answered): say so, go on.
    broken++;
    process.stdout.write(
      `${JSON.stringify({ scenario: s.name, error: (err as Error).message.slice(0, 2000) })}\n`,
    );
  }
}
const cols = [
  'scenario',
  'sent',
  'succeeded',
  'failed',
  'lost',
  'duplicated',
  'recovery_s',
  'p99_ms_during',
] as const;
const rows = [cols.map(String), ...results.map((r) => cols.map((c) => String(r[c])))];
const widths = cols.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
for (const row of rows) process.stdout.write(`${row.map((v, i) => v.padEnd(widths[i]!)).join('  ')}\n`);
process.exit(broken > 0 || results.some((r) => r.lost > 0 || r.duplicated > 0) ? 1 : 0);

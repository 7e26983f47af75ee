import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  type AgentRequest,
  answersBucket,
  type Coordinator,
  type Deployment,
  GraphRunner,
  type RequestResult,
  reportRequests,
} from '@stitch/agents';
import type { Cluster } from '@stitch/runtime';
import { type Command, Option } from 'commander';
import { printPlan } from '../demo-plan.js';
import {
  type DemoRequest,
  type DemoSignal,
  demoReportHtml,
  percentile,
  slaAttainment,
} from '../demo-report.js';
import { type LocalCluster, sampleName, samplePath, startLocalCluster } from '../local-cluster.js';
import { integer } from '../number-options.js';
import { interruptedBySignal, unlessAborted } from '../signals.js';
import { runVoiceDemo } from '../voice-demo.js';

const CLUSTER = 'demo';

interface DemoOptions {
  agent: 'tool' | 'voice';
  audio?: string;
  reply: string;
  requests: number;
  leaveAfter: number;
  kill: boolean;
  /** The report's path, or false for `--no-report`. */
  report: string | false;
}

interface DemoRun {
  requests: number;
  leaveAfter: number;
  crash: boolean;
  /** Where to write the HTML report; undefined: no report. */
  report: string | undefined;
  /** Aborted by SIGINT/SIGTERM: the demo stops what it started and fails with the reason. */
  signal: AbortSignal;
}

/** The main job: the whole system on an embedded local nats-server, start to finish. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'Whole system on an embedded nats-server: 3 nodes (cpu, virtual h100, virtual gaudi3), coordinator, ' +
        'placement, requests, a node leaving and its operators migrating; --agent voice: speech in, speech out',
    )
    .addOption(
      new Option('--agent <agent>', 'the sample agent to run').choices(['tool', 'voice']).default('tool'),
    )
    .option('--audio <wav>', 'voice: the speech to send (default: espeak-ng says a question)')
    .option(
      '--reply <wav>',
      'voice: where the spoken answer goes (its text beside it, .txt)',
      'stitch-voice-reply.wav',
    )
    .addOption(new Option('--requests <n>', 'requests to run end to end').argParser(integer(2)).default(20))
    .addOption(
      new Option('--leave-after <n>', 'SIGTERM the busiest modelled node after this many requests')
        .argParser(integer(1))
        .default(8),
    )
    .option('--kill', 'SIGKILL that node instead (a crash), with requests sent as durable asks')
    .option(
      '--report <file>',
      'write the HTML report (plots, one self-contained file) here',
      'stitch-demo-report.html',
    )
    .option('--no-report', 'write no report')
    .action(async (opts: DemoOptions) => {
      // SIGINT/SIGTERM stop the demo's nats-server and nodes before it exits (non-zero).
      const signal = interruptedBySignal('demo');
      if (opts.agent === 'voice')
        return runVoiceDemo({
          audio: opts.audio === undefined ? undefined : resolve(opts.audio),
          reply: resolve(opts.reply),
          signal,
        });
      await runDemo({
        requests: opts.requests,
        leaveAfter: opts.leaveAfter,
        crash: opts.kill === true,
        report: opts.report === false ? undefined : resolve(opts.report),
        signal,
      });
    });
}

const say = (line = '') => process.stdout.write(`${line}\n`);

type Timed = RequestResult & DemoRequest;

async function runDemo(run: DemoRun): Promise<void> {
  const t0 = performance.now();
  let local: LocalCluster | undefined;
  try {
    local = await startLocalCluster(CLUSTER, say, { signal: run.signal });
    await unlessAborted(demo(local, run), run.signal);
  } finally {
    await local?.close();
    say(`demo took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
}

/** The demo on its started cluster; once `interrupted` aborts it does no more (its cluster is closing). */
async function demo(
  local: LocalCluster,
  { requests, leaveAfter, crash, report, signal: interrupted }: DemoRun,
): Promise<void> {
  const { cluster, coordinator, coordinatorRef: coord, children } = local;
  const mlir = readFileSync(samplePath(), 'utf8');
  say(`deploying packages/ir/samples/${sampleName()} through actor stitch-coordinator/main`);
  const d = (await coord.ask({ type: 'deploy', mlir }, { timeoutMs: 60_000 })) as Deployment;
  printPlan(d);
  const runner = new GraphRunner(cluster, { mode: crash ? 'durable' : 'fast' });
  runner.onRequest(reportRequests(coord));
  const results: Timed[] = [];
  const failures: string[] = [];
  let stopped: DemoSignal | undefined;
  for (let i = 0; i < requests; i++) {
    interrupted.throwIfAborted();
    if (i === leaveAfter) {
      const victim = busiestModelledNode(coordinator.deployment(d.name) ?? d);
      if (victim) {
        const signal = crash ? 'SIGKILL' : 'SIGTERM';
        stopped = { node: victim, signal, at: Date.now() };
        say(`>>> ${signal} ${victim} (pid ${children.get(victim)?.pid}) while requests keep flowing`);
        children.get(victim)?.kill(signal);
      }
    }
    const rid = `r${String(i).padStart(3, '0')}`;
    const current = coordinator.deployment(d.name) ?? d;
    try {
      const startedAt = Date.now();
      const r = await runner.run(current, rid, REQUESTS[i % REQUESTS.length]!);
      results.push({ ...r, startedAt, deployment: current });
      say(describe(r));
    } catch (err) {
      interrupted.throwIfAborted(); // failed because the cluster is closing: not the demo's failure
      failures.push(rid);
      say(`${rid} FAILED: ${(err as Error).message}`);
    }
  }
  await summarise(cluster, coordinator, d, results, failures, requests, stopped?.at ?? 0);
  await streamOne(runner, coordinator.deployment(d.name) ?? d);
  interrupted.throwIfAborted();
  if (report) writeReport(report, coordinator, d, results, requests, stopped);
}

/** One more request, streamed (after the counts): when its tokens and text arrived. */
async function streamOne(runner: GraphRunner, d: Deployment): Promise<void> {
  const decode = d.ops.find((o) => o.op === 'llm.decode');
  if (!decode) return;
  const t0 = performance.now();
  const stream = runner.stream(d, 'r-streamed', REQUESTS[0]!);
  let first: number | undefined;
  let last = 0;
  let tokens = 0;
  let text = '';
  try {
    for await (const e of stream) {
      const item = e.item as { token?: number; text?: string };
      if (e.opId === decode.id) {
        first ??= performance.now() - t0;
        last = performance.now() - t0;
        tokens++;
      } else if (typeof item.text === 'string') text += item.text;
    }
    const r = await stream.result;
    const op = r.ops[decode.id]!;
    say();
    say(
      `streamed request: first token after ${first?.toFixed(0)} ms, ${tokens} tokens by ${last.toFixed(0)} ms, answer at ${r.latencyMs.toFixed(0)} ms ` +
        `(decode on ${op.device}${op.modelled ? ', modelled: tokens paced over its predicted time' : ''}); text ${JSON.stringify(text)}`,
    );
  } catch (err) {
    say(`streamed request FAILED: ${(err as Error).message}`);
  }
}

const REQUESTS: AgentRequest[] = [
  {
    query: 'How efficient are solar panels, and what is 17*23+4?',
    expr: '17*23+4',
    search: 'solar panel efficiency',
  },
  { query: 'What does the KV cache hold? Also (2+3)^2', expr: '(2+3)^2', search: 'kv cache attention keys' },
  { query: 'Memory bandwidth of an H100, and 3350/8?', expr: '3350/8', search: 'H100 memory bandwidth' },
  {
    query: 'What is JetStream? and -2^2 + 10 % 4',
    expr: '-2^2 + 10 % 4',
    search: 'JetStream streams key value',
  },
];

function describe(r: RequestResult): string {
  const a = (r.answer ?? {}) as { calc?: { expr: string; value: number }; found?: string; llmText?: string };
  const calc = a.calc ? `${a.calc.expr} = ${a.calc.value}` : '-';
  const retried = r.retries ? `  (${r.retries} retried asks)` : '';
  return (
    `${r.rid} ${r.latencyMs.toFixed(1).padStart(7)} ms  $${r.usd.toExponential(2)}  calculator: ${calc}; ` +
    `web_search: "${a.found ?? '-'}"; llm (synthetic): ${JSON.stringify((a.llmText ?? '').slice(0, 12))}${retried}`
  );
}

function busiestModelledNode(d: Deployment): string | undefined {
  const count = new Map<string, number>();
  for (const o of d.ops) if (o.modelled) count.set(o.node, (count.get(o.node) ?? 0) + 1);
  return [...count].sort((a, b) => b[1] - a[1])[0]?.[0];
}

async function summarise(
  cluster: Cluster,
  coordinator: Coordinator,
  d: Deployment,
  results: Timed[],
  failures: string[],
  sent: number,
  leftAt: number,
): Promise<void> {
  const lat = results.map((r) => r.latencyMs).sort((a, b) => a - b);
  const final = coordinator.deployment(d.name) ?? d;
  say();
  say(`requests: ${sent} sent, ${results.length} completed, ${failures.length} failed`);
  say(
    `latency p50 ${percentile(lat, 50).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms (wall clock, end to end)`,
  );
  const usd = results.reduce((s, r) => s + r.usd, 0) / Math.max(1, results.length);
  say(`cost per request: $${usd.toExponential(3)} (cpu measured + modelled devices at catalog TCO $/h)`);
  const sla = slaAttainment(lat, d.slaMs, sent);
  say(`SLA ${d.slaMs} ms attainment: ${(100 * sla.fraction).toFixed(1)}% (${sla.within}/${sent})`);
  // Kinds first (`llm@cpu`), then each measured op (`deployment/op@cpu`).
  const learned = Object.entries(coordinator.correction.snapshot())
    .map(([key, c]) => `${key} ×${c.factor.toPrecision(2)} (${c.samples} samples)`)
    .join(', ');
  say(`correction table (measured ÷ estimated, fed to re-plans): ${learned || 'no samples'}`);
  for (const m of coordinator.migrations) {
    say(
      `migration (${m.reason}): ${m.moved.map((x) => `${x.opId} ${x.from}→${x.to}`).join(', ')}; operators restored in ${m.ms.toFixed(0)} ms`,
    );
  }
  if (leftAt > 0) {
    const restored = coordinator.migrations.find((m) => m.at >= leftAt && / (left|died)/.test(m.reason));
    if (restored) {
      say(
        `interruption: ${restored.at - leftAt} ms from the signal until every moved operator answered again`,
      );
      const hit = results.filter((r) => r.startedAt <= restored.at && r.startedAt + r.latencyMs >= leftAt);
      const retried = hit.reduce((s, r) => s + r.retries, 0);
      const longest = hit.reduce((s, r) => Math.max(s, r.latencyMs), 0);
      say(
        `requests in that window: ${hit.length}, longest ${longest.toFixed(0)} ms, ${retried} retried asks`,
      );
    }
  }
  // Real counts: every operator's applied-effects counter (restored across migrations) and the memory bucket.
  let duplicated = 0;
  let mismatched = 0;
  for (const o of final.ops) {
    const c = (await cluster
      .ref({ type: o.actorType, id: o.actorId })
      .ask({ type: 'counts' }, { retries: 5 })) as {
      applied: number;
    };
    duplicated += Math.max(0, c.applied - results.length);
    if (c.applied !== results.length) mismatched++;
  }
  const kv = await cluster.kv(answersBucket(CLUSTER).name);
  let stored = 0;
  for await (const _k of await kv.keys(`${d.name}.>`)) stored++;
  const lost = sent - results.length + Math.max(0, results.length - stored);
  say(
    `counts: ${final.ops.length} operators each applied ${mismatched === 0 ? results.length : 'a differing number of'} requests; answers bucket holds ${stored} stored answers`,
  );
  say(`${lost} lost, ${duplicated} duplicated`);
  if (lost > 0 || duplicated > 0 || mismatched > 0) process.exitCode = 1;
}

function writeReport(
  path: string,
  coordinator: Coordinator,
  d: Deployment,
  results: Timed[],
  sent: number,
  signal: DemoSignal | undefined,
): void {
  const html = demoReportHtml({
    before: d,
    after: coordinator.deployment(d.name) ?? d,
    requests: results,
    sent,
    migrations: coordinator.migrations.filter((m) => m.deployment === d.name),
    signal,
    generatedAt: new Date(),
  });
  writeFileSync(path, html);
  say(`report: ${path}`);
}

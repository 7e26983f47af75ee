// bench/spike: the tool agent (llama3-8b, 16 output tokens) on four node processes: a real cpu node and
// three modelled accelerators with finite slots (two gaudi3 and one h100, 2 slots each, labelled as
// modelled). Load arrives open-loop (Poisson, seeded) at a steady rate, then 5× that rate, then the
// steady rate again; once with `policy: static` (the first plan, never changed) and once with
// `policy: rebalance` (the coordinator's control loop), each on a fresh cluster. The steady rate is set
// from the plan: its slowest op (the modelled decode) busy 30 % of the time on one replica, so the
// spike needs more replicas than one. One JSON line per policy.
// refused: requests an operator's full mailbox turned away with ACTOR_OVERLOADED (shed, the caller told);
// lost: requests that failed otherwise; duplicated: memory.store executions beyond one per request, counted
// from the memory bucket's stream (every execution is a put). usd_per_1k prices each device that hosts
// an activation of the deployment by the hour (whole devices; modelled ones at their catalog price)
// per request of the run; _steady and _after_spike give the same device cost per 1 000 requests at the
// steady rate (the first phase; the last 10 s). recovery_s: spike start → the first 5 s window of
// arrivals from which on every window holds 99 % (0 when none fell below; null when the last does).
// coordinator_max_loop_lag_ms: this process's event loop, which runs the coordinator (the load comes
// from a child process, bench/spike-load.ts, that follows the deployment record through a KV watch).
// Usage: pnpm bench spike [--quick] [--steady-s 20] [--spike-s 30] [--after-s 20] [--seed 1]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import {
  type AgentRequest,
  answersBucket,
  closeMemoryConnections,
  type Deployment,
  GraphRunner,
  type RequestResult,
} from '../packages/agents/dist/index.js';
import { type LocalNode, startLocalCluster } from '../packages/cli/dist/local-cluster.js';
import { Random } from '../packages/sim/dist/random.js';

const quick = process.argv.includes('--quick');
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const phases = {
  steadyS: arg('steady-s', quick ? 1 : 20),
  spikeS: arg('spike-s', quick ? 3 : 30),
  afterS: arg('after-s', quick ? 1 : 20),
};
const seed = arg('seed', 1);
const SPIKE = 5;
const STEADY_UTILISATION = 0.3;
const NODES: LocalNode[] = [
  { id: 'node-cpu', args: ['--no-calibrate'] },
  { id: 'node-gaudi3-a', args: ['--virtual', 'gaudi3:2', '--no-calibrate'] },
  { id: 'node-gaudi3-b', args: ['--virtual', 'gaudi3:2', '--no-calibrate'] },
  { id: 'node-h100', args: ['--virtual', 'h100:2', '--no-calibrate'] },
];
const SAMPLE = fileURLToPath(new URL('../packages/ir/samples/tool-agent.llama3-8b.mlir', import.meta.url));
// Sixteen output tokens keep one decode at tens of ms on the modelled devices, so a spike of a few
// dozen requests per second is enough to need replicas (256 tokens would need a minute per phase).
const GRAPH = readFileSync(SAMPLE, 'utf8').replace(/max_tokens = \d+ : i64/, 'max_tokens = 16 : i64');
const request: AgentRequest = { query: 'what is 6*7?', expr: '6*7', search: 'kv cache' };
const LOAD = fileURLToPath(new URL('./spike-load.ts', import.meta.url));

interface Outcome {
  startS: number;
  ms: number;
  ok: boolean;
  /** Refused by an operator's full mailbox (ACTOR_OVERLOADED): shed with an error, not lost. */
  refused: boolean;
}

/** Arrival times (s from the start) of a Poisson process whose rate changes per phase. */
function arrivals(steady: number): number[] {
  // The simulator's seeded generator: both policies see the same arrival times.
  const random = new Random(seed);
  const out: number[] = [];
  const end = phases.steadyS + phases.spikeS + phases.afterS;
  for (let t = 0; ; ) {
    const inSpike = t >= phases.steadyS && t < phases.steadyS + phases.spikeS;
    t += random.exponential(1 / (steady * (inSpike ? SPIKE : 1)));
    if (t >= end) return out;
    out.push(t);
  }
}

const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : 0;
};
const r2 = (x: number) => Math.round(x * 100) / 100;
const attainment = (xs: Outcome[], slaMs: number) =>
  xs.length ? xs.filter((o) => o.ok && o.ms <= slaMs).length / xs.length : 1;

/** Executions of memory.store: each records one answer (the answers bucket's stream counts every put). */
async function storedAnswers(url: string, cluster: string): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(`KV_${answersBucket(cluster).name}`).catch(() => undefined);
    return info?.state.last_seq ?? 0;
  } finally {
    await nc.close();
  }
}

async function runPolicy(policy: 'static' | 'rebalance'): Promise<Record<string, unknown>> {
  const name = `spike-${policy}`;
  const local = await startLocalCluster(name, () => undefined, {
    nodes: NODES,
    coordinator: { autoscale: { policy, intervalMs: 1000 } },
  });
  const lag = monitorEventLoopDelay({ resolution: 10 });
  try {
    const d0 = await local.coordinator.deploy(GRAPH);
    const current = () => local.coordinator.deployment(d0.name) as Deployment;
    const runner = new GraphRunner(local.cluster, { timeoutMs: 120_000 });
    // Warm-up: every op answers a few times (first-request costs are not the policy's doing), and the
    // median of those answers (measured on cpu, predicted on modelled devices) finds the slowest op.
    const warm: RequestResult[] = [];
    for (let i = 0; i < 3; i++) warm.push(await runner.run(current, `warm-up-${i}`, request));
    const opMs = d0.ops.map((op) => ({
      op,
      ms: pct(
        warm.map((w) => w.ops[op.id]!.ms),
        0.5,
      ),
    }));
    const bottleneck = opMs.reduce((a, b) => (b.ms > a.ms ? b : a));
    const steady = (STEADY_UTILISATION * 1000) / bottleneck.ms;
    const answersBefore = await storedAnswers(local.nats.url, name);
    const times = arrivals(steady);
    const outcomes: Outcome[] = [];
    const cost: { t: number; usdPerS: number }[] = [];
    let replicasMax = 1;
    const load = spawn(process.execPath, ['--import', '@stitch/typescript-loader', LOAD], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => load.once('exit', resolve));
    load.stdin.end(
      JSON.stringify({ nats: local.nats.url, cluster: name, deployment: d0.name, request, times }),
    );
    let t0 = 0;
    let wall0 = 0;
    const sampleCost = () => {
      const d = current();
      const nodes = new Map<string, string>();
      for (const op of d.ops)
        for (const r of [{ node: op.node }, ...(op.replicas ?? [])]) nodes.set(r.node, op.classId);
      const usdPerH = [...nodes.values()].reduce((s, c) => s + (d.usdPerHour[c] ?? 0), 0);
      cost.push({ t: (performance.now() - t0) / 1000, usdPerS: usdPerH / 3600 });
      for (const op of d.ops) replicasMax = Math.max(replicasMax, 1 + (op.replicas?.length ?? 0));
    };
    let costTimer: NodeJS.Timeout | undefined;
    for await (const line of createInterface({ input: load.stdout })) {
      const m = JSON.parse(line) as { started?: true; done?: true } & Partial<Outcome> & {
          ms?: number | null;
        };
      if (m.started) {
        t0 = performance.now();
        wall0 = Date.now();
        costTimer = setInterval(sampleCost, 250);
        lag.enable();
      } else if (!m.done) {
        outcomes.push({
          startS: m.startS!,
          ms: m.ms ?? Number.POSITIVE_INFINITY,
          ok: m.ok === true,
          refused: m.refused === true,
        });
      }
    }
    if ((await exited) !== 0) throw new Error('the load generator (bench/spike-load.ts) failed');
    lag.disable();
    clearInterval(costTimer);
    sampleCost();
    const executions = (await storedAnswers(local.nats.url, name)) - answersBefore;
    const slaMs = d0.slaMs;
    const spikeFrom = phases.steadyS;
    const spikeTo = phases.steadyS + phases.spikeS;
    const spike = outcomes.filter((o) => o.startS >= spikeFrom && o.startS < spikeTo);
    const end = spikeTo + phases.afterS;
    // Recovery: from the spike's start to the first 5 s window of arrivals after which no window
    // falls below 99 % again (0 when none ever did; null when the last one still does).
    let lastBelow: number | undefined;
    for (let t = spikeFrom; t + 5 <= end; t += 0.25) {
      const w = outcomes.filter((o) => o.startS >= t && o.startS < t + 5);
      if (w.length > 0 && attainment(w, slaMs) < 0.99) lastBelow = t;
    }
    const recovery =
      lastBelow === undefined ? 0 : lastBelow + 0.25 + 5 > end ? null : r2(lastBelow + 0.25 - spikeFrom);
    // The devices' cost over a phase per 1 000 requests at that phase's offered rate, so that the
    // figure follows what is provisioned, not how many Poisson arrivals fell into the window.
    const usdPer1kAtRate = (from: number, to: number, rps: number) => {
      const samples = cost.filter((c) => c.t >= from && c.t < to);
      const usdPerS = samples.reduce((s, c) => s + c.usdPerS, 0) / Math.max(1, samples.length);
      return (usdPerS / rps) * 1000;
    };
    const usdTotal = cost.reduce((s, c) => s + c.usdPerS * 0.25, 0);
    const ok = outcomes.filter((o) => o.ok).map((o) => o.ms);
    const changes = local.coordinator.scalings.filter((s) => s.deployment === d0.name);
    const metrics = local.coordinator.metrics();
    return {
      bench: 'spike',
      policy,
      quick,
      modelled: 'gaudi3 and h100 are modelled devices (virtual:gaudi3:2, virtual:h100:2); cpu is real',
      requests: outcomes.length,
      steady_rps: r2(steady),
      spike_rps: r2(steady * SPIKE),
      sla_ms: slaMs,
      bottleneck: `${bottleneck.op.id} on ${bottleneck.op.classId}${bottleneck.op.modelled ? ' (modelled)' : ''}: ${r2(bottleneck.ms)} ms`,
      sla_attainment: r2(attainment(outcomes, slaMs) * 100) / 100,
      spike_sla_attainment: r2(attainment(spike, slaMs) * 100) / 100,
      p50_ms: r2(pct(ok, 0.5)),
      p99_ms: r2(pct(ok, 0.99)),
      migrations: metrics.operatorsMoved,
      scale_outs: changes.filter((c) => c.kind === 'scale-out').length,
      scale_ins: changes.filter((c) => c.kind === 'scale-in').length,
      replicas_max: replicasMax,
      replicas_end: Math.max(...current().ops.map((o) => 1 + (o.replicas?.length ?? 0))),
      recovery_s: recovery,
      usd_per_1k: outcomes.length ? (usdTotal / outcomes.length) * 1000 : null,
      usd_per_1k_steady: usdPer1kAtRate(0, spikeFrom, steady),
      usd_per_1k_after_spike: usdPer1kAtRate(end - Math.min(10, phases.afterS / 2), end, steady),
      refused: outcomes.filter((o) => o.refused).length,
      lost: outcomes.filter((o) => !o.ok && !o.refused).length,
      duplicated: Math.max(0, executions - outcomes.filter((o) => o.ok).length),
      coordinator_max_loop_lag_ms: r2(lag.max / 1e6),
      reasons: changes.map(
        (c) => `${c.kind} ${c.opId} ${c.from}→${c.to} at ${r2((c.at - wall0) / 1000)} s: ${c.reason}`,
      ),
    };
  } finally {
    await closeMemoryConnections();
    await local.close();
  }
}

// The quick variant (run by the test command) exercises the control loop alone.
for (const policy of quick ? (['rebalance'] as const) : (['static', 'rebalance'] as const)) {
  process.stdout.write(`${JSON.stringify(await runPolicy(policy))}\n`);
}

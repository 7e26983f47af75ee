// Request latency and migration interruption of the tool agent on three in-process nodes (cpu,
// virtual h100, virtual gaudi3) of an embedded nats-server, in fast and durable delivery mode. Per
// mode and round: requests run two at a time; after `leaveAt` completions the node hosting the
// modelled LLM ops leaves gracefully, the coordinator moves its operators. One JSON line per round,
// then one summary line per mode. Imports the built packages (run `pnpm build` first).
// Usage: pnpm bench migration [--rounds 3] [--requests 30] [--quick]
import { readFileSync } from 'node:fs';
import {
  type AgentRequest,
  allowOperatorNatsUrls,
  Coordinator,
  closeMemoryConnections,
  GraphRunner,
  OPERATOR_ACTORS,
} from '../packages/agents/dist/index.js';
import { type Cluster, connectCluster, startEmbeddedNats } from '../packages/runtime/dist/index.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const quick = process.argv.includes('--quick');
// Each round starts its own nats-server in this one process: operators here may use each of them.
allowOperatorNatsUrls('any');
const rounds = arg('rounds', quick ? 1 : 3);
const requests = arg('requests', quick ? 9 : 30);
const leaveAt = Math.floor(requests / 3);
const sample = readFileSync(
  new URL('../packages/ir/samples/tool-agent.tiny-llama.mlir', import.meta.url),
  'utf8',
);
const request: AgentRequest = { query: 'what is 6*7?', expr: '6*7', search: 'kv cache' };
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
};
const r1 = (x: number) => Math.round(x * 10) / 10;

async function round(mode: 'fast' | 'durable', n: number) {
  const nats = await startEmbeddedNats();
  const name = `bench${n}${mode}`;
  const nodes = new Map<string, Cluster>();
  const log = () => undefined;
  try {
    for (const [id, virtual] of [
      ['node-cpu', []],
      ['node-h100', ['h100']],
      ['node-gaudi3', ['gaudi3']],
    ] as const) {
      const c = await connectCluster({ nats: nats.url, name, log });
      await c.startNode({ id, actors: OPERATOR_ACTORS, virtual: [...virtual] });
      nodes.set(id, c);
    }
    const client = await connectCluster({ nats: nats.url, name, log });
    nodes.set('client', client);
    const coordinator = new Coordinator(client, { driftEvery: 1_000_000 });
    await coordinator.start();
    const d = await coordinator.deploy(sample);
    const victim = d.ops.find((o) => o.modelled)!.node;
    const runner = new GraphRunner(client, { mode });
    const latency: number[] = [];
    let next = 0;
    let leftAt = 0;
    let leaving: Promise<void> | undefined;
    const worker = async () => {
      while (next < requests) {
        const rid = `q${next++}`;
        const r = await runner.run(coordinator.deployment(d.name)!, rid, request);
        latency.push(r.latencyMs);
        if (latency.length === leaveAt) {
          leftAt = Date.now();
          leaving = nodes.get(victim)!.close();
        }
      }
    };
    await Promise.all([worker(), worker()]);
    await leaving;
    const moved = coordinator.migrations.find((m) => m.reason.includes(victim));
    await coordinator.stop();
    return {
      bench: 'migration',
      mode,
      round: n,
      requests: latency.length,
      p50Ms: r1(pct(latency, 50)),
      p99Ms: r1(pct(latency, 99)),
      interruptionMs: moved ? moved.at - leftAt : null,
      movedOperators: moved?.moved.length ?? 0,
    };
  } finally {
    await closeMemoryConnections();
    for (const c of nodes.values()) await c.close().catch(() => undefined);
    await nats.stop();
  }
}

for (const mode of ['fast', 'durable'] as const) {
  const all: Awaited<ReturnType<typeof round>>[] = [];
  for (let n = 0; n < rounds; n++) {
    const r = await round(mode, n);
    all.push(r);
    process.stdout.write(`${JSON.stringify(r)}\n`);
  }
  const med = (k: 'p50Ms' | 'p99Ms' | 'interruptionMs') =>
    r1(
      pct(
        all.map((r) => r[k] ?? Number.NaN),
        50,
      ),
    );
  process.stdout.write(
    `${JSON.stringify({ bench: 'migration', summary: mode, rounds, medianP50Ms: med('p50Ms'), medianP99Ms: med('p99Ms'), medianInterruptionMs: med('interruptionMs') })}\n`,
  );
}

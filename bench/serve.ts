// bench/serve: the LLM chain of the tool agent (tokenize → prefill → kv.transfer → decode →
// detokenize) on one real cpu node process, the synthetic TINY_LLAMA weights, 64 output tokens per
// request, under open-loop Poisson load at several rates — once with continuous batching (decode steps
// up to STITCH_LLM_MAX_BATCH sequences together) and once without (one sequence at a time, the same
// code with a batch of 1). Every request streams (GraphRunner.stream): ttft is the request's start to
// its first decoded token, tpot the time between its tokens after the first, tokens_per_s all tokens
// decoded ÷ the run's wall time. kv_transfer_ms_p50: prefill storing its KV cache plus decode
// fetching it (the hand-off through the cluster's memory bucket). rejected: requests refused as over capacity (a typed, retryable error).
// Usage: pnpm bench serve [--quick] [--rates 2,8,32] [--seconds 10] [--seed 1]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type AgentRequest, GraphRunner } from '../packages/agents/dist/index.js';
import { startLocalCluster } from '../packages/cli/dist/local-cluster.js';
import { Random } from '../packages/sim/dist/random.js';

const quick = process.argv.includes('--quick');
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const rates = arg('rates', quick ? '4' : '2,8,32')
  .split(',')
  .map(Number);
const seconds = Number(arg('seconds', quick ? '2' : '10'));
const seed = Number(arg('seed', '1'));
const TOKENS = quick ? 16 : 64;
const MAX_BATCH = 16;
const GRAPH = readFileSync(fileURLToPath(new URL('./lib/llm-chain.mlir', import.meta.url)), 'utf8').replace(
  /max_tokens = \d+ : i64/,
  `max_tokens = ${TOKENS} : i64`,
);
const request: AgentRequest = { query: 'tell me about the kv cache', expr: '0', search: '' };

const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : null;
};
const r1 = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);

interface Measured {
  ok: boolean;
  rejected: boolean;
  ttftMs: number | null;
  tpotMs: number | null;
  tokens: number;
  kvMs: number | null;
  totalMs: number;
  /** Per op kind: the ask's round trip and the op's own time, ms. */
  ops: Record<string, { askMs: number; ms: number }>;
}

async function runBatching(batching: boolean): Promise<void> {
  process.env.STITCH_LLM_MAX_TOKENS = String(TOKENS);
  process.env.STITCH_LLM_MAX_BATCH = batching ? String(MAX_BATCH) : '1';
  const name = `serve-${batching ? 'batched' : 'single'}`;
  const local = await startLocalCluster(name, () => undefined, {
    nodes: [{ id: 'node-cpu', args: ['--no-calibrate'] }],
  });
  try {
    const d = await local.coordinator.deploy(GRAPH);
    const decodeOp = d.ops.find((o) => o.op === 'llm.decode')!.id;
    const runner = new GraphRunner(local.cluster, { timeoutMs: 120_000 });
    const one = async (rid: string): Promise<Measured> => {
      const t0 = performance.now();
      const times: number[] = [];
      const stream = runner.stream(d, rid, request, { text: false });
      try {
        for await (const e of stream) if (e.opId === decodeOp) times.push(performance.now());
        const r = await stream.result;
        const totalMs = performance.now() - t0;
        const gaps = times.slice(1).map((t, i) => t - times[i]!);
        return {
          ok: true,
          rejected: false,
          ttftMs: times.length ? times[0]! - t0 : null,
          tpotMs: gaps.length ? gaps.reduce((a, b) => a + b, 0) / gaps.length : null,
          tokens: times.length,
          kvMs: Object.values(r.ops).some((o) => o.timings?.kvStoreMs !== undefined)
            ? Object.values(r.ops).reduce(
                (sum, o) => sum + (o.timings?.kvStoreMs ?? 0) + (o.timings?.kvFetchMs ?? 0),
                0,
              )
            : null,
          totalMs,
          ops: Object.fromEntries(
            d.ops.map((o) => [o.op, { askMs: r.ops[o.id]!.askMs, ms: r.ops[o.id]!.ms }]),
          ),
        };
      } catch (err) {
        const code = `${(err as { code?: string }).code} ${((err as Error).cause as { code?: string })?.code}`;
        return {
          ok: false,
          rejected: /BATCH_QUEUE_FULL|OVERLOADED/.test(code),
          ttftMs: null,
          tpotMs: null,
          tokens: times.length,
          kvMs: null,
          totalMs: performance.now() - t0,
          ops: {},
        };
      }
    };
    for (let i = 0; i < 3; i++) await one(`warm-${i}`);
    for (const rate of rates) {
      const random = new Random(seed);
      const starts: number[] = [];
      for (let t = random.exponential(1 / rate); t < seconds; t += random.exponential(1 / rate))
        starts.push(t);
      const t0 = performance.now();
      const runs = starts.map(async (s, i) => {
        const wait = s * 1000 - (performance.now() - t0);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        return one(`r${rate}-${i}`);
      });
      const results = await Promise.all(runs);
      const wallS = (performance.now() - t0) / 1000;
      const ok = results.filter((r) => r.ok);
      const tokens = results.reduce((n, r) => n + r.tokens, 0);
      const whole = pct(
        ok.map((r) => r.totalMs),
        0.5,
      );
      const ttft50 = pct(
        ok.flatMap((r) => (r.ttftMs === null ? [] : [r.ttftMs])),
        0.5,
      );
      console.log(
        JSON.stringify({
          bench: 'serve',
          batching,
          rate_rps: rate,
          requests: results.length,
          succeeded: ok.length,
          output_tokens: TOKENS,
          ttft_p50_ms: r1(ttft50),
          ttft_p99_ms: r1(
            pct(
              ok.flatMap((r) => (r.ttftMs === null ? [] : [r.ttftMs])),
              0.99,
            ),
          ),
          tpot_p50_ms: r1(
            pct(
              ok.flatMap((r) => (r.tpotMs === null ? [] : [r.tpotMs])),
              0.5,
            ),
          ),
          answer_p50_ms: r1(whole),
          ttft_share_p50: ttft50 !== null && whole ? Math.round((ttft50 / whole) * 1000) / 1000 : null,
          tokens_per_s: Math.round(tokens / wallS),
          kv_transfer_ms_p50: r1(
            pct(
              ok.flatMap((r) => (r.kvMs === null ? [] : [r.kvMs])),
              0.5,
            ),
          ),
          // Where a request's time went, per op: its ask's round trip (queueing and moving data
          // included) and the op's own work, p50 ms.
          ops_p50_ms: Object.fromEntries(
            d.ops.map((o) => [
              o.op,
              {
                ask: r1(
                  pct(
                    ok.map((r) => r.ops[o.op]!.askMs),
                    0.5,
                  ),
                ),
                own: r1(
                  pct(
                    ok.map((r) => r.ops[o.op]!.ms),
                    0.5,
                  ),
                ),
              },
            ]),
          ),
          rejected: results.filter((r) => r.rejected).length,
          failed: results.filter((r) => !r.ok && !r.rejected).length,
          device: 'cpu (real, synthetic TINY_LLAMA weights)',
        }),
      );
    }
  } finally {
    await local.close();
  }
}

await runBatching(true);
await runBatching(false);

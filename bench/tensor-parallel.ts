// bench/tensor-parallel: the LLM chain (tokenize → prefill → kv.transfer → decode → detokenize) on
// two real cpu node processes, the synthetic TINY_LLAMA weights, deployed unsplit, with `tp = 2` on
// its llm.call (each layer group's two ranks on the two nodes, its all-reduce op summing their
// partials twice per layer; decode walks the groups for each token), and with `ep = 2` (the model
// with its mixture of experts, half the experts on each node, the merge op running attention).
// Requests run one at a time and stream: ttft is a request's start to its first token, tpot the time
// between tokens after it, tokens_per_s the tokens ÷ the requests' wall time. same_tokens: every
// split answer equals the unsplit model's answer to the same request (tp: the deployed unsplit graph;
// ep: the unsplit mixture of experts computed in this process on the same kernels).
// Usage: pnpm bench tensor-parallel [--quick] [--requests N] [--tokens N]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type AgentRequest,
  type Deployment,
  GraphRunner,
  TINY_EXPERTS,
  TINY_LLAMA,
} from '../packages/agents/dist/index.js';
import { startLocalCluster } from '../packages/cli/dist/local-cluster.js';
import {
  KernelRuntime,
  kernelOps,
  Llama,
  probeHost,
  syntheticExperts,
  syntheticWeights,
  withExperts,
} from '../packages/kernels/dist/index.js';

const quick = process.argv.includes('--quick');
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const REQUESTS = Number(arg('requests', quick ? '2' : '20'));
const TOKENS = Number(arg('tokens', quick ? '8' : '64'));
const GRAPH = readFileSync(fileURLToPath(new URL('./lib/llm-chain.mlir', import.meta.url)), 'utf8')
  .replace(/max_tokens = \d+ : i64/, `max_tokens = ${TOKENS} : i64`)
  // tiny-llama: the IR's model whose heads split two ways, as the synthetic weights' do.
  .replace('model = "llama3-8b"', 'model = "tiny-llama"');
const SPLIT = GRAPH.replace('model = "tiny-llama",', 'model = "tiny-llama", tp = 2 : i64,');
const EXPERTS = GRAPH.replace('model = "tiny-llama",', 'model = "tiny-llama", ep = 2 : i64,');
const query = (i: number) => `request ${i}: tell me about the kv cache`;
const request = (i: number): AgentRequest => ({ query: query(i) });

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? null;
const r1 = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);

async function measure(runner: GraphRunner, d: Deployment, tag: string) {
  const decode = d.ops.find((o) => o.op === 'llm.decode')!.id;
  const ttft: number[] = [];
  const tpot: number[] = [];
  const total: number[] = [];
  const texts: string[] = [];
  const streams: number[][] = [];
  let tokens = 0;
  const t0 = performance.now();
  for (let i = 0; i < REQUESTS; i++) {
    const start = performance.now();
    const at: number[] = [];
    const got: number[] = [];
    const stream = runner.stream(d, `${tag}-${i}`, request(i), { text: false });
    for await (const e of stream)
      if (e.opId === decode) {
        at.push(performance.now());
        got.push((e.item as { token: number }).token);
      }
    streams.push(got);
    const r = await stream.result;
    total.push(performance.now() - start);
    ttft.push(at[0]! - start);
    if (at.length > 1) tpot.push((at.at(-1)! - at[0]!) / (at.length - 1));
    tokens += at.length;
    texts.push((r.answer as { llmText: string }).llmText);
  }
  return { ttft, tpot, total, texts, streams, tokens, wallMs: performance.now() - t0 };
}

async function main(): Promise<void> {
  process.env.STITCH_LLM_MAX_TOKENS = String(TOKENS);
  const local = await startLocalCluster('tensorpar', () => undefined, {
    nodes: [
      { id: 'node-a', args: ['--no-calibrate'] },
      { id: 'node-b', args: ['--no-calibrate'] },
    ],
  });
  try {
    const runner = new GraphRunner(local.cluster, { timeoutMs: 120_000 });
    const whole = await local.coordinator.deploy(GRAPH, 'whole');
    const split = await local.coordinator.deploy(SPLIT, 'split');
    const experts = await local.coordinator.deploy(EXPERTS, 'experts');
    // One request each first: kernels compile and load on both nodes.
    await runner.run(whole, 'warm-whole', request(0));
    await runner.run(split, 'warm-split', request(0));
    await runner.run(experts, 'warm-experts', request(0));
    const one = await measure(runner, whole, 'whole');
    const two = await measure(runner, split, 'split');
    const ep = await measure(runner, experts, 'experts');
    // The unsplit mixture of experts, here, on the same compiled kernels as the nodes'.
    const moe = new Llama(
      withExperts(
        syntheticWeights(TINY_LLAMA, 7),
        syntheticExperts(TINY_LLAMA, TINY_EXPERTS.experts, TINY_EXPERTS.perToken, 7),
      ),
      await kernelOps(TINY_LLAMA, new KernelRuntime({ threads: 1 }), {
        target: (probeHost().x86Level ?? 'x86-64') as 'x86-64',
        experts: TINY_EXPERTS.experts,
      }),
    );
    const expected: number[][] = [];
    for (let i = 0; i < REQUESTS; i++)
      expected.push(await moe.generate([...new TextEncoder().encode(`${query(i)} `)], TOKENS));
    const nodes = (d: Deployment) =>
      new Set(d.ops.filter((o) => o.op === 'llm.prefill').map((o) => o.node)).size;
    for (const [splitBy, degree, d, m, same] of [
      ['none', 1, whole, one, true],
      ['tp', 2, split, two, two.texts.every((t, i) => t === one.texts[i])],
      ['ep', 2, experts, ep, ep.streams.every((t, i) => t.join() === expected[i]!.join())],
    ] as const) {
      process.stdout.write(
        `${JSON.stringify({
          bench: 'tensor-parallel',
          split: splitBy,
          degree,
          nodes: nodes(d),
          requests: REQUESTS,
          tokens: TOKENS,
          ttft_p50_ms: r1(p50(m.ttft)),
          tpot_p50_ms: r1(p50(m.tpot)),
          request_p50_ms: r1(p50(m.total)),
          tokens_per_s: r1((m.tokens * 1000) / m.wallMs),
          same_tokens: same,
          weights:
            splitBy === 'ep'
              ? 'synthetic TINY_LLAMA with 4 experts (untrained)'
              : 'synthetic TINY_LLAMA (untrained)',
        })}\n`,
      );
    }
  } finally {
    await local.close();
  }
}

await main();

// A graph whose LLM call says tp = 2 runs split for real across two nodes: each layer group's two
// ranks (the prefill ops with `shard`) hold half the heads and half the FFN and the KV caches of
// their heads, the group's all-reduce op sums their partials twice per layer, and decode walks the
// groups for every token. It writes the same tokens as the same graph unsplit. With ep = 2 the ranks
// hold half the experts of a mixture of experts each, the merge op runs attention and sums their
// FFN outputs, and the tokens are the unsplit mixture's.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { type Deployment, GraphRunner, TINY_EXPERTS, TINY_LLAMA } from '@stitch/agents';
import {
  KernelRuntime,
  kernelOps,
  Llama,
  probeHost,
  syntheticExperts,
  syntheticWeights,
  withExperts,
} from '@stitch/kernels';
import type { Cluster } from '@stitch/runtime';
import { type AgentCluster, startAgentCluster, TOOL_AGENT_REQUEST } from './fixtures/operator-nodes.js';

const CLUSTER = 'tensorpar';
// The tiny-llama tool agent on cpu nodes only (no placement hint), once unsplit and once with tp = 2.
const sample = readFileSync(
  new URL('../packages/ir/samples/tool-agent.tiny-llama.mlir', import.meta.url),
  'utf8',
).replace(', placement = "gpu"', '');
const split = sample.replace('model = "tiny-llama",', 'model = "tiny-llama", tp = 2 : i64,');
// The LLM chain alone (no memory in the prompt, so the test can compute the expected tokens itself), split by experts.
const experts = readFileSync(new URL('../bench/lib/llm-chain.mlir', import.meta.url), 'utf8')
  .replace('model = "llama3-8b"', 'model = "tiny-llama", ep = 2 : i64')
  .replace(/max_tokens = \d+ : i64/, 'max_tokens = 16 : i64');

let agents: AgentCluster;
let client: Cluster;
let whole: Deployment;
let tp: Deployment;
let ep: Deployment;

before(async () => {
  agents = await startAgentCluster(CLUSTER, [
    ['node-a', []],
    ['node-b', []],
  ]);
  client = agents.client;
  whole = await agents.coordinator.deploy(sample, 'whole');
  tp = await agents.coordinator.deploy(split, 'split');
  ep = await agents.coordinator.deploy(experts, 'experts');
});

after(() => agents?.close());

const answerOf = (r: { answer: unknown }) => r.answer as { llmText: string; calc: unknown; llmModel: string };

test('the split deployment has ranks on both nodes and an all-reduce per layer group', () => {
  const ranks = tp.ops.filter((o) => o.op === 'llm.prefill');
  const groups = tp.ops.filter((o) => o.op === 'llm.allreduce');
  assert.equal(groups.length, 4);
  assert.equal(ranks.length, 8);
  for (const g of groups) {
    const mine = ranks.filter((r) => g.deps.includes(r.id));
    assert.equal(mine.length, 2, `${g.id} joins two ranks`);
    assert.notEqual(mine[0]!.node, mine[1]!.node, `${g.id}'s ranks are on different nodes`);
  }
  assert.equal(tp.ops.find((o) => o.op === 'llm.decode')!.attrs.tp, 2);
});

test('TP=2 across two nodes writes the same tokens as TP=1, streamed or not', async () => {
  const runner = new GraphRunner(client, { timeoutMs: 60_000 });
  // memory.store writes what memory.load recalls into the prompt: after one request it stays the same.
  await runner.run(whole, 'warm-whole', TOOL_AGENT_REQUEST);
  await runner.run(tp, 'warm-split', TOOL_AGENT_REQUEST);
  const a = await runner.run(whole, 'r-whole', TOOL_AGENT_REQUEST);
  const b = await runner.run(tp, 'r-split', TOOL_AGENT_REQUEST);
  assert.equal(answerOf(a).llmText.length, 16);
  assert.equal(answerOf(b).llmText, answerOf(a).llmText);
  assert.match(answerOf(b).llmModel, /tensor-parallel ×2 in 4 layer groups$/);
  assert.doesNotMatch(answerOf(a).llmModel, /tensor-parallel/);
  assert.deepEqual(answerOf(b).calc, answerOf(a).calc);

  const events: number[] = [];
  const stream = runner.stream(tp, 'r-split-streamed', TOOL_AGENT_REQUEST);
  const decode = tp.ops.find((o) => o.op === 'llm.decode')!.id;
  for await (const e of stream) if (e.opId === decode) events.push((e.item as { token: number }).token);
  const streamed = await stream.result;
  assert.equal(events.length, 16);
  assert.equal(answerOf(streamed).llmText, answerOf(a).llmText);
  assert.match(answerOf(streamed).llmModel, /tensor-parallel/);
});

test('a request done, its ranks have let its KV caches go; hostile split messages get typed errors', async () => {
  const rank = tp.ops.find(
    (o) => o.op === 'llm.prefill' && o.attrs.shard === 1 && o.attrs.layer_start === 0,
  )!;
  const ref = client.ref({ type: rank.actorType, id: rank.actorId });
  const x = new Float32Array(TINY_LLAMA.dim).fill(0.5);
  const pos = Int32Array.from([3]);
  // The FFN needs no cache: the rank serves it for anyone who asks.
  const ffn = (await ref.ask({
    type: 'split',
    rid: 'r-split',
    block: 'ffn',
    layer: 0,
    x,
    pos,
  })) as Float32Array;
  assert.equal(ffn.length, TINY_LLAMA.dim);
  await assert.rejects(
    ref.ask({ type: 'split', rid: 'r-split', block: 'attention', layer: 0, x, pos }),
    (e: Error) => /holds no state for request r-split/.test(e.message),
  );
  for (const bad of [
    { rid: 7 },
    { rid: 'r', block: 'mlp', layer: 0, x, pos },
    { rid: 'r', block: 'ffn', layer: 0, x: new Float32Array(3), pos },
    { rid: 'r', block: 'ffn', layer: 0.5, x, pos },
    {
      rid: 'r',
      block: 'attention',
      layer: 0,
      x: new Float32Array(2 * TINY_LLAMA.dim),
      pos: Int32Array.from([4, 9]),
    },
    { rid: 'r', block: 'ffn', layer: 99, x, pos },
  ])
    await assert.rejects(
      ref.ask({ type: 'split', ...bad }),
      (e: Error) =>
        (e as { code?: string }).code === 'REQUEST_FAILED' ||
        (e as { code?: string }).code === 'KERNEL_SHAPE',
      JSON.stringify(Object.keys(bad)),
    );
  // Still serving.
  assert.equal(
    ((await ref.ask({ type: 'split', rid: 'r', block: 'ffn', layer: 0, x, pos })) as Float32Array).length,
    TINY_LLAMA.dim,
  );
  const other = tp.ops.find((o) => o.op === 'tool.invoke')!;
  await assert.rejects(
    client.ref({ type: other.actorType, id: other.actorId }).ask({ type: 'split', rid: 'r' }),
    (e: Error) => /not part of a tensor- or expert-parallel split/.test(e.message),
  );
});

test('EP=2 across two nodes writes the tokens of the unsplit mixture of experts', async () => {
  const merges = ep.ops.filter((o) => o.op === 'llm.merge');
  const ranks = ep.ops.filter((o) => o.op === 'llm.prefill');
  assert.equal(merges.length, 4);
  for (const g of merges) {
    const mine = ranks.filter((r) => g.deps.includes(r.id));
    assert.equal(mine.length, 2);
    assert.notEqual(mine[0]!.node, mine[1]!.node, `${g.id}'s ranks are on different nodes`);
  }
  const query = 'what does a mixture of experts route?';
  const decode = ep.ops.find((o) => o.op === 'llm.decode')!.id;
  const runner = new GraphRunner(client, { timeoutMs: 60_000 });
  const tokens: number[] = [];
  const stream = runner.stream(ep, 'r-experts', { query });
  for await (const e of stream) if (e.opId === decode) tokens.push((e.item as { token: number }).token);
  const r = await stream.result;
  assert.match(
    (r.answer as { llmModel: string }).llmModel,
    /with 4 experts .*expert-parallel ×2 in 4 layer groups$/,
  );
  // The unsplit mixture here, on the same compiled kernels: tokenize writes the query and the (empty) recall.
  const weights = withExperts(
    syntheticWeights(TINY_LLAMA, 7),
    syntheticExperts(TINY_LLAMA, TINY_EXPERTS.experts, TINY_EXPERTS.perToken, 7),
  );
  const target = (probeHost().x86Level ?? 'x86-64') as 'x86-64';
  const ops = await kernelOps(TINY_LLAMA, new KernelRuntime({ threads: 1 }), {
    target,
    experts: TINY_EXPERTS.experts,
  });
  const expected = await new Llama(weights, ops).generate([...new TextEncoder().encode(`${query} `)], 16);
  assert.deepEqual(tokens, expected);
});

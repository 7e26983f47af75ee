// A request's LLM output streamed through the graph on a real nats-server: decode's tokens and
// detokenize's text reach the caller as they are made, spell exactly the recorded answer, and
// cancelling stops the request.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  Coordinator,
  closeMemoryConnections,
  type Deployment,
  GraphRunner,
  type StreamEvent,
} from '@stitch/agents';
import { type Cluster, connectCluster, type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';
import { startOperatorNodes, TOOL_AGENT_REQUEST, toolAgentGraph } from './fixtures/operator-nodes.js';

const CLUSTER = 'stream';
// A real cpu node and a modelled h100 (the LLM ops' placement hint); an SLA either can hold.
const graph = toolAgentGraph((m) => m.replace(/sla_ms = \d+ : i64/, 'sla_ms = 600000 : i64'));
const request = TOOL_AGENT_REQUEST;

let nats: EmbeddedNats;
let client: Cluster;
let coordinator: Coordinator;
let deployment: Deployment;
const nodes: Cluster[] = [];

before(async () => {
  nats = await startEmbeddedNats();
  nodes.push(
    ...(
      await startOperatorNodes(nats.url, CLUSTER, [
        ['node-cpu', []],
        ['node-h100', ['h100']],
      ])
    ).values(),
  );
  client = await connectCluster({ nats: nats.url, name: CLUSTER, log: () => undefined });
  coordinator = new Coordinator(client, { driftEvery: 1_000_000 });
  await coordinator.start();
  deployment = await coordinator.deploy(graph, 'streamed');
});

after(async () => {
  await coordinator?.stop();
  await closeMemoryConnections();
  await Promise.all(nodes.map((c) => c.close().catch(() => undefined)));
  await client?.close();
  await nats?.stop();
});

const opOf = (op: string) => deployment.ops.find((o) => o.op === op)!.id;

test('tokens and text arrive while the request runs and spell the recorded answer', async () => {
  const runner = new GraphRunner(client);
  // memory.store writes what memory.load recalls into the prompt: after one request it stays the same.
  await runner.run(deployment, 'r-warm', request);
  const stream = runner.stream(deployment, 'r-stream-1', request);
  const events: StreamEvent[] = [];
  const at: number[] = [];
  const t0 = performance.now();
  for await (const e of stream) {
    events.push(e);
    at.push(performance.now() - t0);
  }
  const result = await stream.result;
  const answer = result.answer as { llmText: string };

  const tokens = events
    .filter((e) => e.opId === opOf('llm.decode'))
    .map((e) => (e.item as { token: number }).token);
  const text = events
    .filter((e) => e.opId === opOf('llm.detokenize'))
    .map((e) => (e.item as { text: string }).text);
  assert.equal(tokens.length, 16);
  assert.ok(text.length > 1, `text came in pieces (${text.length})`);
  assert.equal(text.join(''), answer.llmText);
  // The first text piece came before the last token: the caller saw output before decode ended.
  const firstText = events.findIndex((e) => e.opId === opOf('llm.detokenize'));
  const lastToken = events.findLastIndex((e) => e.opId === opOf('llm.decode'));
  assert.ok(firstText < lastToken, `first text at ${firstText}, last token at ${lastToken}`);

  // Decode ran on the modelled h100: its tokens came paced over its predicted time, the last no
  // sooner than that time after the request began (not all at once at the host's speed).
  const decode = deployment.ops.find((o) => o.op === 'llm.decode')!;
  assert.equal(result.ops[decode.id]!.modelled, true);
  const lastAt = at[events.findLastIndex((e) => e.opId === decode.id)]!;
  assert.ok(lastAt >= decode.estimatedMs, `last token at ${lastAt} ms, predicted ${decode.estimatedMs} ms`);

  // Prefill handed its KV cache to decode through the memory bucket (decode did not prefill again).
  assert.equal(typeof result.ops[opOf('llm.prefill')]!.timings?.kvStoreMs, 'number');
  assert.equal(typeof result.ops[opOf('llm.decode')]!.timings?.kvFetchMs, 'number');

  // The same request unstreamed decodes the same tokens (greedy) to the same text.
  const plain = await runner.run(deployment, 'r-plain-1', request);
  assert.equal((plain.answer as { llmText: string }).llmText, answer.llmText);
});

test('breaking out of the loop cancels the request; the next one runs', async () => {
  const runner = new GraphRunner(client);
  const stream = runner.stream(deployment, 'r-cancel-1', request);
  let seen = 0;
  for await (const _ of stream) if (++seen === 3) break;
  await assert.rejects(stream.result, (err: Error) =>
    /cancel/i.test(`${err.message} ${(err.cause as Error)?.message}`),
  );

  const controller = new AbortController();
  const aborted = runner.stream(deployment, 'r-cancel-2', request, { signal: controller.signal });
  controller.abort();
  await assert.rejects(async () => {
    for await (const _ of aborted);
  });
  await assert.rejects(aborted.result);

  const next = runner.stream(deployment, 'r-after-cancel', request);
  let n = 0;
  for await (const _ of next) n++;
  assert.ok(n >= 16);
  assert.equal(typeof ((await next.result).answer as { llmText: unknown }).llmText, 'string');
});

test('partial results only from ops that give them, and only for a context object', async () => {
  const detok = deployment.ops.find((o) => o.op === 'llm.detokenize')!;
  const decode = deployment.ops.find((o) => o.op === 'llm.decode')!;
  const ask = (op: typeof detok, ctx: unknown) =>
    client.ref({ type: op.actorType, id: op.actorId }).ask({ type: 'partial', ctx } as never);
  const text = (await ask(detok, { tokens: [72, 105] })) as { llmText: string };
  assert.equal(typeof text.llmText, 'string');
  await assert.rejects(
    ask(detok, 'not an object'),
    (err: { code?: string }) => err.code === 'REQUEST_FAILED',
  );
  await assert.rejects(ask(detok, [1, 2]), (err: { code?: string }) => err.code === 'REQUEST_FAILED');
  await assert.rejects(ask(decode, { tokens: [1] }), (err: { code?: string }) => err.code === 'OP_UNKNOWN');
  // The operator goes on serving.
  assert.equal(typeof ((await ask(detok, { tokens: [65] })) as { llmText: string }).llmText, 'string');
});

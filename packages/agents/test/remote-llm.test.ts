import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, test } from 'node:test';
import { type Cluster, connectCluster } from '@stitch/runtime';
import { OPERATOR_ACTORS, type OpReply, RemoteLlm, type RemoteLlmOptions, SseParser } from '../src/index.js';
import { bodyOf, type Loopback, listen } from './loopback.js';

// A small OpenAI-compatible server: the model name picks how it behaves.
let server: Loopback;
const seen: { model: string; stream: boolean; auth: string | undefined; messages: unknown }[] = [];
const attemptsOf = new Map<string, number>();
const WORDS = ['Hello', ' from', ' the', ' server'];

function completion(res: ServerResponse, usage: boolean) {
  res.setHeader('content-type', 'application/json');
  res.end(
    JSON.stringify({
      id: 'c1',
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: WORDS.join('') }, finish_reason: 'stop' }],
      ...(usage ? { usage: { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 } } : {}),
    }),
  );
}

function streamed(res: ServerResponse, usage: boolean, done = true) {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const chunk = (delta: object, finish: string | null = null) =>
    `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  res.write(': keep-alive comment\n\n');
  res.write(chunk({ role: 'assistant' }));
  for (const w of WORDS) res.write(chunk({ content: w }));
  res.write(chunk({}, 'stop'));
  if (usage)
    res.write(
      `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 9, completion_tokens: 4 } })}\r\n\r\n`,
    );
  res.end(done ? 'data: [DONE]\n\n' : '');
}

before(async () => {
  server = await listen(async (req, res) => {
    if (req.url !== '/v1/chat/completions' || req.method !== 'POST') return res.writeHead(404).end();
    const body = JSON.parse(await bodyOf(req));
    const model: string = body.model;
    const n = (attemptsOf.get(model) ?? 0) + 1;
    attemptsOf.set(model, n);
    seen.push({ model, stream: body.stream, auth: req.headers.authorization, messages: body.messages });
    const stream = body.stream === true;
    if (model === 'usage') return stream ? streamed(res, true) : completion(res, true);
    if (model === 'no-usage') return stream ? streamed(res, false) : completion(res, false);
    if (model === 'busy-once' && n === 1)
      return res.writeHead(429, { 'retry-after': '0' }).end('{"error":"rate limited"}');
    if (model === 'busy-once') return streamed(res, true);
    if (model === 'down') return res.writeHead(503).end('overloaded');
    if (model === 'reset-once' && n === 1) return req.socket.destroy();
    if (model === 'reset-once') return completion(res, true);
    if (model === 'bad-request') return res.writeHead(400).end('{"error":"unknown model"}');
    if (model === 'slow') return setTimeout(() => completion(res, true), 5000).unref();
    if (model === 'slow-stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      return res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: 'Hel' } }] })}\n\n`);
    }
    if (model === 'no-done') return streamed(res, true, false);
    if (model === 'garbage') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      return res.end('data: {not json\n\n');
    }
    if (model === 'endless-event') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      return res.end(`data: ${'x'.repeat(2 * 1024 * 1024)}`);
    }
    res.writeHead(404).end();
  });
});
after(() => server?.close());

const llm = (model: string, o: Partial<RemoteLlmOptions> = {}) =>
  new RemoteLlm({
    endpoint: server.url('/v1'),
    model,
    backoffMs: 5,
    maxBackoffMs: 50,
    timeoutMs: 2000,
    ...o,
  });
const ask = [{ role: 'user' as const, content: 'Say hello' }];
const code = (c: string) => (e: { code?: string }) => e.code === c;

test('streams the completion piece by piece and takes the usage the server reports', async () => {
  const pieces: string[] = [];
  const r = await llm('usage', { apiKey: 'sk-test' }).complete(ask, (p) => pieces.push(p));
  assert.equal(r.text, 'Hello from the server');
  assert.deepEqual(pieces, WORDS);
  assert.equal(r.finishReason, 'stop');
  assert.deepEqual(r.usage, { promptTokens: 9, completionTokens: 4, totalTokens: 13, source: 'reported' });
  const req = seen.at(-1)!;
  assert.deepEqual([req.stream, req.auth], [true, 'Bearer sk-test']);
  const whole = await llm('usage', { stream: false }).complete(ask);
  assert.deepEqual(
    [whole.text, whole.usage.totalTokens, whole.usage.source],
    ['Hello from the server', 15, 'reported'],
  );
});

test('counts tokens (o200k_base) when the server reports none', async () => {
  for (const stream of [true, false]) {
    const r = await llm('no-usage', { stream }).complete(ask);
    assert.equal(r.usage.source, 'counted');
    // "Hello from the server" is 4 tokens in o200k_base: Hello, ␣from, ␣the, ␣server.
    assert.equal(r.usage.completionTokens, 4);
    // 3 to prime + 3 framing + "user" (1) + "Say hello" (2).
    assert.equal(r.usage.promptTokens, 9);
  }
});

test('retries a 429 and a dropped connection with backoff, then succeeds; totals add up', async () => {
  const client = llm('busy-once');
  const r = await client.complete(ask);
  assert.deepEqual([r.text, r.attempts], ['Hello from the server', 2]);
  assert.equal(attemptsOf.get('busy-once'), 2);
  const reset = await llm('reset-once').complete(ask);
  assert.equal(reset.attempts, 2);
  assert.deepEqual(client.totals, { calls: 1, attempts: 2, promptTokens: 9, completionTokens: 4 });
});

test('gives up after the retries on a 5xx, and at once on a 4xx', async () => {
  await assert.rejects(
    llm('down', { retries: 2 }).complete(ask),
    (e: Error & { code?: string }) =>
      e.code === 'LLM_FAILED' && /503/.test(e.message) && /3 attempts/.test(e.message),
  );
  assert.equal(attemptsOf.get('down'), 3);
  await assert.rejects(llm('bad-request').complete(ask), code('LLM_FAILED'));
  assert.equal(attemptsOf.get('bad-request'), 1);
});

test('a slow reply, or a stream that stalls, times out', async () => {
  await assert.rejects(llm('slow', { timeoutMs: 200, retries: 0 }).complete(ask), code('HTTP_TIMEOUT'));
  await assert.rejects(llm('slow-stream', { timeoutMs: 200 }).complete(ask), code('HTTP_TIMEOUT'));
  assert.equal(attemptsOf.get('slow-stream'), 1, 'a timeout is not retried');
});

test('malformed streams are refused: bad JSON, no [DONE], an event without end', async () => {
  await assert.rejects(llm('garbage').complete(ask), code('LLM_RESPONSE_INVALID'));
  await assert.rejects(llm('no-done').complete(ask), code('LLM_RESPONSE_INVALID'));
  await assert.rejects(
    llm('endless-event', { maxResponseBytes: 8 * 1024 * 1024 }).complete(ask),
    code('LLM_RESPONSE_INVALID'),
  );
  await assert.rejects(
    llm('endless-event', { maxResponseBytes: 64 * 1024 }).complete(ask),
    code('HTTP_RESPONSE_TOO_LARGE'),
  );
});

test('options and messages are checked before anything is sent', async () => {
  assert.throws(() => llm('usage', { maxTokens: 0 }), code('HTTP_REQUEST_INVALID'));
  assert.throws(() => llm('usage', { retries: 11 }), code('HTTP_REQUEST_INVALID'));
  assert.throws(
    () => new RemoteLlm({ endpoint: 'file:///etc/passwd', model: 'm' }),
    code('HTTP_REQUEST_INVALID'),
  );
  await assert.rejects(llm('usage').complete([]), code('HTTP_REQUEST_INVALID'));
  await assert.rejects(
    llm('usage').complete([{ role: 'tool' as 'user', content: 'x' }]),
    code('HTTP_REQUEST_INVALID'),
  );
});

test('the SSE parser joins multi-line data and handles any chunking', () => {
  const text = 'data: a\ndata: b\n\n: comment\n\nevent: x\ndata:c\r\n\r\ndata: d';
  const bytes = new TextEncoder().encode(text);
  for (const size of [1, 3, 7, bytes.length]) {
    const got: string[] = [];
    const p = new SseParser((d) => got.push(d));
    for (let i = 0; i < bytes.length; i += size) p.push(bytes.subarray(i, i + size));
    p.end();
    assert.deepEqual(got, ['a\nb', 'c', 'd']);
  }
});

test('llm.call on an operator: the remote completion and its priced usage flow on', async () => {
  const cluster: Cluster = await connectCluster({ name: 'agentsllm', log: () => undefined });
  try {
    await cluster.startNode({ id: 'n1', actors: OPERATOR_ACTORS });
    const ref = await cluster.spawn('op-llm', { id: 'remote' });
    await ref.ask({
      type: 'configure',
      config: {
        deployment: 'dep',
        opId: 'think',
        op: 'llm.call',
        attrs: {
          endpoint: server.url('/v1'),
          model: 'usage',
          system: 'Be brief.',
          usd_per_mtok_prompt: 1,
          usd_per_mtok_completion: 4,
        },
        device: 'cpu',
        modelled: false,
        estimatedMs: 0,
        natsUrl: cluster.url,
        cluster: cluster.name,
      },
    });
    const r = (await ref.ask({ type: 'run', rid: 'r1', ctx: { query: 'Say hello' } })) as OpReply;
    assert.equal(r.out.llmText, 'Hello from the server');
    assert.deepEqual(r.out.usage, {
      think: {
        promptTokens: 9,
        completionTokens: 4,
        totalTokens: 13,
        source: 'reported',
        usd: (9 * 1 + 4 * 4) / 1e6,
      },
    });
    assert.deepEqual(seen.at(-1)!.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say hello' },
    ]);
  } finally {
    await cluster.close();
  }
});

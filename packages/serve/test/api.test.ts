// The OpenAI-compatible API against a real cluster (embedded nats-server, operator nodes, the
// coordinator), driven by the official openai client: models, completions whole and streamed (the
// LLM's text piece by piece, a graph without one), a disconnect's cancel, errors in OpenAI's format,
// the API key, and back-pressure (429 with Retry-After).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GraphRunner, type RequestResult } from '@stitch/agents';
import { type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';
import OpenAI from 'openai';
import { type ApiServer, ServeError, ServeErrorCode, startApiServer } from '../src/index.js';
import { SAMPLE, slowGraph, startCluster, type TestCluster } from './fixtures/cluster.js';

const post = (url: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });

async function openAiError(res: Response) {
  const body = (await res.json()) as { error: { message: string; type: string; code: string | null } };
  assert.equal(typeof body.error.message, 'string');
  assert.equal(typeof body.error.type, 'string');
  return body.error;
}

/** What the graph's stream gave the server for one request (keyed by its rid, the chunk id). */
interface Observed {
  pieces: string[];
  result: Promise<RequestResult>;
}

/**
 * Watches GraphRunner.stream (the server's runner is built inside startApiServer): the detokenize
 * op's text pieces as the server received them, and how the request ended.
 */
function observeStreams(): { byRid: Map<string, Observed>; restore(): void } {
  const original = GraphRunner.prototype.stream;
  const byRid = new Map<string, Observed>();
  GraphRunner.prototype.stream = function (this: GraphRunner, ...args: Parameters<typeof original>) {
    const inner = original.apply(this, args);
    const seen: Observed = { pieces: [], result: inner.result };
    byRid.set(args[1], seen);
    return {
      result: inner.result,
      cancel: () => inner.cancel(),
      async *[Symbol.asyncIterator]() {
        for await (const e of inner) {
          const text = (e.item as { text?: unknown } | null)?.text;
          if (typeof text === 'string') seen.pieces.push(text);
          yield e;
        }
      },
    };
  };
  return { byRid, restore: () => (GraphRunner.prototype.stream = original) };
}

describe('OpenAI-compatible API', () => {
  let nats: EmbeddedNats;
  let cluster: TestCluster;
  let server: ApiServer;
  let openai: OpenAI;

  before(async () => {
    nats = await startEmbeddedNats();
    cluster = await startCluster(nats, 'api', { 'node-cpu': null });
    await cluster.coordinator.deploy(SAMPLE);
    // A graph without an LLM: its content is its answer's JSON.
    await cluster.coordinator.deploy(slowGraph(0, 'calc_agent'));
    server = await startApiServer({ cluster: cluster.client, port: 0, bodyLimitBytes: 64 * 1024 });
    openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused-on-loopback', maxRetries: 0 });
  });

  after(async () => {
    await server?.close();
    await cluster?.close();
    await nats?.stop();
  });

  test('lists one model per deployment', async () => {
    const models: OpenAI.Model[] = [];
    for await (const m of openai.models.list()) models.push(m);
    assert.deepEqual(models.map((m) => [m.id, m.object, m.owned_by]).sort(), [
      ['calc_agent', 'model', 'stitch'],
      ['tool_agent', 'model', 'stitch'],
    ]);
    assert.equal((await openai.models.retrieve('tool_agent')).id, 'tool_agent');
  });

  test('a completion runs the graph: the last user message is the query, metadata the tool arguments', async () => {
    const query = 'How efficient are solar panels?';
    const r = await openai.chat.completions.create({
      model: 'tool_agent',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'an earlier turn' },
        { role: 'assistant', content: 'an earlier answer' },
        { role: 'user', content: query },
      ],
      metadata: { expr: '17*23+4', search: 'solar panel efficiency' },
    });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'tool_agent');
    assert.equal(r.choices[0]!.finish_reason, 'stop');
    // The content is the LLM's text; the graph's whole answer is in the extension field.
    const info = (r as unknown as { stitch: { answer: unknown; ops: Record<string, { node: string }> } })
      .stitch;
    const answer = info.answer as { calc: { value: number }; found: string; llmText: string };
    assert.equal(r.choices[0]!.message.content, answer.llmText);
    assert.equal(answer.calc.value, 395);
    assert.match(answer.found, /solar/i);
    assert.ok(answer.llmText.length > 0);
    assert.deepEqual(r.usage, {
      prompt_tokens: Buffer.byteLength(query),
      completion_tokens: answer.llmText.length,
      total_tokens: Buffer.byteLength(query) + answer.llmText.length,
    });
    assert.ok(Object.values(info.ops).every((o) => o.node === 'node-cpu'));
  });

  test('a stream is OpenAI chunks: the role, each text piece of the graph as it came, finish_reason with the answer, usage', async () => {
    const body = {
      model: 'tool_agent',
      messages: [{ role: 'user' as const, content: 'What does the KV cache hold?' }],
      metadata: { expr: '(2+3)^2' },
    };
    // The prompt is the query and the memory's recall, the calculator result the previous request
    // stored: one request first, so the ones after it see the same recall. The synthetic LLM decodes
    // greedily, so the same prompt gives the same text.
    await openai.chat.completions.create(body);
    const whole = await openai.chat.completions.create(body);
    assert.equal(
      (await openai.chat.completions.create(body)).choices[0]!.message.content,
      whole.choices[0]!.message.content,
    );

    const observed = observeStreams();
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    try {
      const stream = await openai.chat.completions.create({
        ...body,
        stream: true,
        stream_options: { include_usage: true },
      });
      for await (const c of stream) chunks.push(c);
    } finally {
      observed.restore();
    }
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0]!.id));
    assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
    const content = chunks.flatMap((c) => {
      const t = c.choices[0]?.delta.content;
      return t ? [t] : [];
    });
    // One chunk per text piece the graph's detokenize gave, as it gave it: not cut, not merged.
    const { pieces } = observed.byRid.get(chunks[0]!.id)!;
    assert.ok(content.length > 1, `text in pieces (${content.length})`);
    assert.deepEqual(content, pieces);
    assert.equal(content.join(''), whole.choices[0]!.message.content);

    const stop = chunks.at(-2)!;
    assert.equal(stop.choices[0]!.finish_reason, 'stop');
    const answer = (stop as unknown as { stitch: { answer: { calc: { value: number }; llmText: string } } })
      .stitch.answer;
    assert.equal(answer.calc.value, 25);
    assert.equal(content.join(''), answer.llmText);
    const usage = chunks.at(-1)!.usage!;
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
    assert.equal(usage.completion_tokens, answer.llmText.length);
  });

  test('a graph without LLM text answers with its answer as the content, whole and streamed', async () => {
    const body = {
      model: 'calc_agent',
      messages: [{ role: 'user' as const, content: 'hi' }],
      metadata: { expr: '6*7' },
    };
    const whole = await openai.chat.completions.create(body);
    const answer = (whole as unknown as { stitch: { answer: { calc: { value: number } } } }).stitch.answer;
    assert.equal(answer.calc.value, 42);
    assert.deepEqual(JSON.parse(whole.choices[0]!.message.content!), answer);
    assert.equal(whole.usage!.completion_tokens, 0);

    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of await openai.chat.completions.create({ ...body, stream: true })) chunks.push(c);
    const content = chunks.flatMap((c) => c.choices[0]?.delta.content || []);
    assert.deepEqual(content, [whole.choices[0]!.message.content]);
    const stop = chunks.at(-1)!;
    assert.equal(stop.choices[0]!.finish_reason, 'stop');
    assert.deepEqual((stop as unknown as { stitch: { answer: unknown } }).stitch.answer, answer);
  });

  test('a client that disconnects from a stream cancels its request', async () => {
    const observed = observeStreams();
    // 200 tokens (the nodes run in this process and read the cap per request): the request is still
    // decoding, hundreds of ms after the role chunk, when the disconnect arrives.
    const cap = process.env.STITCH_LLM_MAX_TOKENS;
    process.env.STITCH_LLM_MAX_TOKENS = '200';
    try {
      const controller = new AbortController();
      const res = await post(
        server.url,
        {
          model: 'tool_agent',
          messages: [{ role: 'user', content: 'What does the KV cache hold?' }],
          stream: true,
        },
        {},
        controller.signal,
      );
      // The role chunk goes out once the request is admitted, before the LLM's first token.
      const first = new TextDecoder().decode((await res.body!.getReader().read()).value);
      const id = (JSON.parse(/^data: (.*)$/m.exec(first)![1]!) as { id: string }).id;
      controller.abort();
      await assert.rejects(observed.byRid.get(id)!.result, (err: Error) =>
        /cancel/i.test(`${err.message} ${(err.cause as Error)?.message}`),
      );
    } finally {
      observed.restore();
      if (cap === undefined) delete process.env.STITCH_LLM_MAX_TOKENS;
      else process.env.STITCH_LLM_MAX_TOKENS = cap;
    }
  });

  test('request errors are OpenAI errors with their status codes', async () => {
    await assert.rejects(
      openai.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found',
    );
    await assert.rejects(
      openai.chat.completions.create({ model: 'tool_agent', messages: [{ role: 'system', content: 'hi' }] }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /role "user"/.test(e.message),
    );
    // The calculator refuses the expression: the caller's mistake, so 400 with the operator's code.
    await assert.rejects(
      openai.chat.completions.create({
        model: 'tool_agent',
        messages: [{ role: 'user', content: 'hi' }],
        metadata: { expr: '2+' },
      }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'CALC_SYNTAX',
    );
    const cases: [unknown, number, RegExp][] = [
      [{ model: 'tool_agent', messages: [] }, 400, /messages/],
      [{ model: 'tool_agent', messages: [{ role: 'user', content: 'hi' }], n: 2 }, 400, /n/],
      [{ model: 'tool_agent', messages: [{ role: 'user', content: 'hi' }], stream: 'yes' }, 400, /stream/],
      [{ model: 'tool_agent', messages: [{ role: 'robot', content: 'hi' }] }, 400, /role/],
      [{ model: 'tool_agent', messages: [{ role: 'user', content: 'x'.repeat(70_000) }] }, 413, /body/i],
      [
        {
          model: 'tool_agent',
          messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }],
        },
        400,
        /text parts only/,
      ],
      ['{"model": "tool_agent", "messages": [', 400, /JSON/i],
    ];
    for (const [body, status, message] of cases) {
      const res = await post(server.url, body);
      assert.equal(res.status, status, JSON.stringify(body).slice(0, 80));
      assert.match((await openAiError(res)).message, message);
    }
    const text = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: 'hi' });
    assert.equal(text.status, 415);
    await openAiError(text);
    const missing = await fetch(`${server.url}/v1/embeddings`);
    assert.equal(missing.status, 404);
    assert.equal((await openAiError(missing)).type, 'invalid_request_error');
  });

  test('an API key is required beyond loopback, and checked when set', async () => {
    await assert.rejects(
      startApiServer({ cluster: cluster.client, host: '0.0.0.0', port: 0 }),
      (e: unknown) => e instanceof ServeError && e.code === ServeErrorCode.Options,
    );
    await assert.rejects(
      startApiServer({ cluster: cluster.client, port: 0, apiKey: 'short' }),
      (e: unknown) => e instanceof ServeError && /at least/.test(e.message),
    );
    const key = 'k-0123456789abcdef0123';
    const keyed = await startApiServer({ cluster: cluster.client, port: 0, apiKey: key });
    try {
      const bad = new OpenAI({
        baseURL: `${keyed.url}/v1`,
        apiKey: 'k-wrong-wrong-wrong-wrong',
        maxRetries: 0,
      });
      await assert.rejects(
        bad.models.list(),
        (e: unknown) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key',
      );
      const none = await fetch(`${keyed.url}/v1/models`);
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer');
      const good = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: key, maxRetries: 0 });
      assert.ok((await good.models.list()).data.some((m) => m.id === 'tool_agent'));
    } finally {
      await keyed.close();
    }
  });
});

describe('back-pressure', () => {
  let nats: EmbeddedNats;
  let cluster: TestCluster;
  const servers: ApiServer[] = [];

  before(async () => {
    nats = await startEmbeddedNats();
    // The calculator takes 10 s a request on a modelled cpu, in a process the test can SIGKILL with
    // a backlog queued (a graceful stop would work through it first).
    cluster = await startCluster(nats, 'slow', {}, { 'node-slow': 'cpu' });
    await cluster.coordinator.deploy(slowGraph(10_000));
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await cluster?.close();
    await nats?.stop();
  });

  const start = async (maxInFlight: number) => {
    const s = await startApiServer({
      cluster: cluster.client,
      port: 0,
      maxInFlight,
      runner: { timeoutMs: 60_000, retries: 0 },
    });
    servers.push(s);
    return s;
  };
  const body = { model: 'slow_agent', messages: [{ role: 'user', content: 'hi' }] };

  test('a model with maxInFlight requests running answers 429 with Retry-After', async () => {
    const s = await start(1);
    const running = await post(s.url, { ...body, stream: true });
    // The role chunk comes once the request is admitted; it then waits seconds on the calculator.
    const reader = running.body!.getReader();
    assert.match(new TextDecoder().decode((await reader.read()).value), /"role":"assistant"/);
    const res = await post(s.url, body);
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
    const err = await openAiError(res);
    assert.equal(err.code, 'rate_limit_exceeded');
    assert.match(err.message, /1 requests in flight/);
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
    await assert.rejects(
      client.chat.completions.create({ model: 'slow_agent', messages: [{ role: 'user', content: 'hi' }] }),
      (e: unknown) => e instanceof OpenAI.RateLimitError,
    );
    await reader.cancel();
  });

  test("an operator's full mailbox (the runtime's Overloaded) is a 429 with Retry-After", async () => {
    // One sender may hold a quarter of an actor's mailbox (256 messages); this server admits more.
    const s = await start(1000);
    const responses = Array.from({ length: 400 }, () => post(s.url, body));
    const refused = await new Promise<Response>((resolve, reject) => {
      let settled = 0;
      for (const p of responses) {
        p.then(
          (r) => (r.status === 429 ? resolve(r) : undefined),
          (e) => reject(e),
        ).finally(() => {
          if (++settled === responses.length) reject(new Error('no request was refused'));
        });
      }
    });
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    const err = await openAiError(refused);
    assert.equal(err.code, 'rate_limit_exceeded');
    assert.match(err.message, /overloaded.*mailbox/);
  });
});

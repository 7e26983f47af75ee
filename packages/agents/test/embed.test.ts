import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, test } from 'node:test';
import { AgentsError, encodeText, MAX_EMBED_CHARS, TINY_LLAMA } from '../src/index.js';
import { type OpConfig, runOp } from '../src/ops.js';
import { bodyOf, type Loopback, listen } from './loopback.js';

const cfg = (attrs: OpConfig['attrs']): OpConfig => ({
  deployment: 'd',
  opId: 'embed',
  op: 'text.embed',
  attrs,
  device: 'cpu',
  modelled: false,
  estimatedMs: 1,
  natsUrl: 'nats://127.0.0.1:4222',
  cluster: 'c',
});

let server: Loopback;
const asked: { model: unknown; input: unknown }[] = [];

before(async () => {
  // An OpenAI-compatible embeddings endpoint: a 4-d vector from the input's length, or a broken answer.
  server = await listen(async (req: IncomingMessage, res) => {
    if (req.url !== '/v1/embeddings' || req.method !== 'POST') return res.writeHead(404).end();
    const body = JSON.parse(await bodyOf(req)) as { model: string; input: string };
    asked.push(body);
    if (body.model === 'down') return res.writeHead(500).end('{"error":"boom"}');
    if (body.model === 'no-data') return res.writeHead(200).end('{"data":[]}');
    const n = body.input.length;
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ data: [{ embedding: [n, 1, 2, 3] }] }));
  });
});
after(() => server?.close());

test("the local encoder: one vector of the model's width per text, the same for the same text", async () => {
  const a = await encodeText('the kv cache holds keys and values', null);
  const b = await encodeText('the kv cache holds keys and values', null);
  const c = await encodeText('solar panels turn light into power', null);
  assert.equal(a.length, TINY_LLAMA.dim);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.ok(a.every(Number.isFinite));
});

test("text.embed puts the query's vector in embedding; a width other than the graph's dim is a typed error", async () => {
  const out = await runOp(cfg({ dim: TINY_LLAMA.dim }), { query: 'what is a kv cache?' }, 'r1');
  assert.ok(out.embedding instanceof Float32Array && out.embedding.length === TINY_LLAMA.dim);
  assert.equal(out.embedEngine, 'local');
  await assert.rejects(
    runOp(cfg({ dim: 384 }), { query: 'x' }, 'r2'),
    (e) =>
      e instanceof AgentsError &&
      e.code === 'VECTOR_INVALID' &&
      /makes 128-dimensional vectors but the graph says dim = 384/.test(e.message),
  );
  await assert.rejects(
    runOp(cfg({ dim: 128 }), { query: 'x'.repeat(MAX_EMBED_CHARS + 1) }, 'r3'),
    (e) => e instanceof AgentsError && e.code === 'INPUT_TOO_LARGE',
  );
});

test('with an endpoint attr, an OpenAI-compatible /v1/embeddings server makes the vector', async () => {
  const out = await runOp(
    cfg({ dim: 4, endpoint: server.url('/v1'), remote_model: 'e5-small' }),
    { query: 'hello' },
    'r4',
  );
  assert.deepEqual([...(out.embedding as Float32Array)], [5, 1, 2, 3]);
  assert.deepEqual(asked.at(-1), { model: 'e5-small', input: 'hello' });
  await assert.rejects(
    runOp(cfg({ dim: 4, endpoint: server.url('/v1'), remote_model: 'down' }), { query: 'x' }, 'r5'),
    (e) => e instanceof AgentsError && e.code === 'LLM_FAILED' && /answered 500/.test(e.message),
  );
  await assert.rejects(
    runOp(cfg({ dim: 4, endpoint: server.url('/v1'), remote_model: 'no-data' }), { query: 'x' }, 'r6'),
    (e) => e instanceof AgentsError && e.code === 'LLM_RESPONSE_INVALID',
  );
});

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Cluster, connectCluster } from '@stitch/runtime';
import { HttpTool, MAX_REDIRECTS, OPERATOR_ACTORS, type OpReply } from '../src/index.js';
import { bodyOf, type Loopback, listen } from './loopback.js';

let server: Loopback;
let other: Loopback;
/** Bytes the /big handler managed to write before the client went away. */
let bigWritten = 0;
let bigClosed: Promise<void> = Promise.resolve();
const BIG_TOTAL = 64 * 1024 * 1024;

before(async () => {
  other = await listen((_req, res) => res.end('other host'));
  server = await listen(async (req, res) => {
    const path = req.url ?? '/';
    if (path === '/hello') return res.end('hello');
    if (path === '/echo') {
      const body = await bodyOf(req);
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify({ method: req.method, body, agent: req.headers['x-agent'] ?? null }));
    }
    if (path === '/big') {
      bigWritten = 0;
      bigClosed = new Promise((resolve) => res.on('close', resolve));
      const chunk = Buffer.alloc(64 * 1024, 120);
      const pump = () => {
        while (bigWritten < BIG_TOTAL && !res.destroyed) {
          bigWritten += chunk.length;
          if (!res.write(chunk)) return res.once('drain', pump);
        }
        if (!res.destroyed) res.end();
      };
      return pump();
    }
    if (path === '/declared') {
      res.writeHead(200, { 'content-length': String(BIG_TOTAL) });
      return res.write('x');
    }
    if (path === '/slow') return setTimeout(() => res.end('late'), 5000).unref();
    if (path === '/trickle') {
      res.write('a');
      return setTimeout(() => res.end('b'), 5000).unref();
    }
    if (path === '/to-hello') return res.writeHead(302, { location: '/hello' }).end();
    if (path === '/post-303') return res.writeHead(303, { location: '/echo' }).end();
    if (path === '/post-307') return res.writeHead(307, { location: '/echo' }).end();
    if (path === '/to-other') return res.writeHead(302, { location: other.url('/') }).end();
    if (path === '/to-localhost')
      return res.writeHead(301, { location: `http://localhost:${server.port}/hello` }).end();
    if (path === '/loop') return res.writeHead(302, { location: '/loop' }).end();
    res.writeHead(404).end('no such path');
  });
});

after(async () => {
  await server?.close();
  await other?.close();
});

const code = (c: string) => (e: { code?: string }) => e.code === c;

test('GET and POST to an allowed host; the status is data, not an error', async () => {
  const tool = new HttpTool({ allowHosts: [server.host] });
  const r = await tool.request({ method: 'GET', url: server.url('/hello') });
  assert.deepEqual([r.status, r.body, r.bytes], [200, 'hello', 5]);
  const p = await tool.request({
    method: 'POST',
    url: server.url('/echo'),
    headers: { 'x-agent': 'stitch', 'content-type': 'application/json' },
    body: '{"q":1}',
  });
  assert.deepEqual(JSON.parse(p.body), { method: 'POST', body: '{"q":1}', agent: 'stitch' });
  assert.equal(p.contentType, 'application/json');
  assert.equal((await tool.request({ method: 'GET', url: server.url('/missing') })).status, 404);
});

test('hosts match exactly after URL parsing: no other host, port or spelling', async () => {
  const tool = new HttpTool({ allowHosts: [server.host] });
  for (const url of [
    other.url('/'),
    `http://localhost:${server.port}/hello`,
    `http://127.0.0.2:${server.port}/hello`,
    `http://127.0.0.1.nip.io:${server.port}/hello`,
    `http://127.0.0.1:${server.port}@evil.example/hello`,
  ])
    await assert.rejects(tool.request({ method: 'GET', url }), (e: { code?: string }) =>
      ['HTTP_HOST_NOT_ALLOWED', 'HTTP_REQUEST_INVALID'].includes(e.code ?? ''),
    );
  // A bare host means the scheme's default port only.
  const bare = new HttpTool({ allowHosts: ['127.0.0.1'] });
  await assert.rejects(
    bare.request({ method: 'GET', url: server.url('/hello') }),
    code('HTTP_HOST_NOT_ALLOWED'),
  );
  // Different spellings of the same allowed host parse to it.
  const r = await tool.request({ method: 'GET', url: `HTTP://127.0.0.1:${server.port}/hello` });
  assert.equal(r.body, 'hello');
});

test('redirects are followed only to allowed hosts, and not forever', async () => {
  const tool = new HttpTool({ allowHosts: [server.host] });
  const r = await tool.request({ method: 'GET', url: server.url('/to-hello') });
  assert.deepEqual([r.body, r.url], ['hello', server.url('/hello')]);
  await assert.rejects(
    tool.request({ method: 'GET', url: server.url('/to-other') }),
    code('HTTP_HOST_NOT_ALLOWED'),
  );
  await assert.rejects(
    tool.request({ method: 'GET', url: server.url('/to-localhost') }),
    code('HTTP_HOST_NOT_ALLOWED'),
  );
  await assert.rejects(
    tool.request({ method: 'GET', url: server.url('/loop') }),
    (e: Error & { code?: string }) => e.code === 'HTTP_FAILED' && e.message.includes(String(MAX_REDIRECTS)),
  );
  const both = new HttpTool({ allowHosts: [server.host, other.host] });
  assert.equal((await both.request({ method: 'GET', url: server.url('/to-other') })).body, 'other host');
  // 303 turns a POST into a GET without its body; 307 keeps both.
  const see = await tool.request({ method: 'POST', url: server.url('/post-303'), body: 'x' });
  assert.deepEqual(JSON.parse(see.body), { method: 'GET', body: '', agent: null });
  const temp = await tool.request({ method: 'POST', url: server.url('/post-307'), body: 'x' });
  assert.deepEqual(JSON.parse(temp.body), { method: 'POST', body: 'x', agent: null });
});

test('a response over the size limit is aborted while streaming, not read to the end', async () => {
  const tool = new HttpTool({ allowHosts: [server.host], maxResponseBytes: 256 * 1024 });
  await assert.rejects(
    tool.request({ method: 'GET', url: server.url('/big') }),
    code('HTTP_RESPONSE_TOO_LARGE'),
  );
  await bigClosed;
  assert.ok(bigWritten < BIG_TOTAL, `the server wrote ${bigWritten} of ${BIG_TOTAL} bytes before the abort`);
  await assert.rejects(
    tool.request({ method: 'GET', url: server.url('/declared') }),
    code('HTTP_RESPONSE_TOO_LARGE'),
  );
});

test('the timeout covers waiting for headers and for the rest of the body', async () => {
  const tool = new HttpTool({ allowHosts: [server.host], timeoutMs: 200 });
  await assert.rejects(tool.request({ method: 'GET', url: server.url('/slow') }), code('HTTP_TIMEOUT'));
  await assert.rejects(tool.request({ method: 'GET', url: server.url('/trickle') }), code('HTTP_TIMEOUT'));
});

test('a refused connection is HTTP_FAILED; malformed requests are refused before sending', async () => {
  const closed = await listen(() => undefined);
  const host = closed.host;
  await closed.close();
  await assert.rejects(
    new HttpTool({ allowHosts: [host] }).request({ method: 'GET', url: `http://${host}/` }),
    code('HTTP_FAILED'),
  );
  const tool = new HttpTool({ allowHosts: [server.host] });
  const bad = [
    { method: 'DELETE', url: server.url('/hello') },
    { method: 'GET', url: 'ftp://127.0.0.1/x' },
    { method: 'GET', url: server.url('/hello'), body: 'x' },
    { method: 'GET', url: server.url('/hello'), headers: { Host: 'evil.example' } },
    { method: 'GET', url: server.url('/hello'), headers: { 'x-a': 'line\r\nInjected: 1' } },
    { method: 'POST', url: server.url('/echo'), body: 'x'.repeat(1024 * 1024 + 1) },
    { method: 'GET', url: `http://${'a'.repeat(3000)}.example/` },
    'http://127.0.0.1/',
  ];
  for (const req of bad) await assert.rejects(tool.request(req), code('HTTP_REQUEST_INVALID'));
  assert.throws(() => new HttpTool({ allowHosts: [] }), code('HTTP_REQUEST_INVALID'));
  assert.throws(() => new HttpTool({ allowHosts: ['a.example/path'] }), code('HTTP_REQUEST_INVALID'));
  assert.throws(
    () => new HttpTool({ allowHosts: [server.host], timeoutMs: 0 }),
    code('HTTP_REQUEST_INVALID'),
  );
});

let cluster: Cluster;
test('tool.invoke with tool=http runs on an operator; configure refuses a bad allow-list', async () => {
  cluster = await connectCluster({ name: 'agentshttp', log: () => undefined });
  try {
    await cluster.startNode({ id: 'n1', actors: OPERATOR_ACTORS });
    const config = (attrs: Record<string, string | number>) => ({
      deployment: 'dep',
      opId: 'fetch',
      op: 'tool.invoke',
      attrs: { tool: 'http', ...attrs },
      device: 'cpu',
      modelled: false,
      estimatedMs: 0,
      natsUrl: cluster.url,
      cluster: cluster.name,
    });
    const ref = await cluster.spawn('op-tool', { id: 'fetch' });
    await assert.rejects(ref.ask({ type: 'configure', config: config({}) }), code('HTTP_REQUEST_INVALID'));
    await ref.ask({ type: 'configure', config: config({ allow_hosts: server.host, timeout_ms: 2000 }) });
    const r = (await ref.ask({
      type: 'run',
      rid: 'r1',
      ctx: { http: { method: 'GET', url: server.url('/hello') } },
    })) as OpReply;
    assert.equal((r.out.http as { body: string }).body, 'hello');
    await assert.rejects(
      ref.ask({ type: 'run', rid: 'r2', ctx: { http: { method: 'GET', url: other.url('/') } } }),
      code('HTTP_HOST_NOT_ALLOWED'),
    );
  } finally {
    await cluster.close();
  }
});

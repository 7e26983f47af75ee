// The API service: HTTP in front, a stitch client behind (it hosts no actors). POST /carts/:id/quote
// with { items: { sku: count } } asks the customer's Cart actor, on whichever worker hosts it, and
// answers with its reply. STITCH_NATS, STITCH_CLUSTER, STITCH_NKEY (client.nk from `stitch cluster
// init --auth`), PORT (0: any free one), HOST.
import { createServer } from 'node:http';
import { Cart } from '@orders/actors';
import { connectCluster } from '@stitch/runtime';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const cluster = await connectCluster({
  nats: env('STITCH_NATS'),
  name: env('STITCH_CLUSTER'),
  nkeySeedFile: env('STITCH_NKEY'),
});

async function body(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return JSON.parse(text);
}

const server = createServer(async (req, res) => {
  const route = /^\/carts\/([\w-]+)\/quote$/.exec(req.url ?? '');
  if (req.method !== 'POST' || !route) {
    res.writeHead(404).end();
    return;
  }
  let items;
  try {
    ({ items } = await body(req));
  } catch {
    res.writeHead(400).end();
    return;
  }
  try {
    const quote = await cluster.get(Cart, route[1]).ask({ type: 'quote', items }, { timeoutMs: 5000 });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(quote));
  } catch (err) {
    // Stitch errors carry a stable code: HANDLER_ERROR (the handler threw; its message comes along),
    // ACTOR_TIMEOUT, ...
    res
      .writeHead(502, { 'content-type': 'application/json' })
      .end(JSON.stringify({ error: err.message, code: err.code }));
  }
});
server.listen(Number(process.env.PORT ?? 8080), process.env.HOST ?? '127.0.0.1', () => {
  const { address, port } = server.address();
  console.log(`api listening on http://${address}:${port}`);
});

const stop = () =>
  server.close(async () => {
    await cluster.close();
    process.exit(0);
  });
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

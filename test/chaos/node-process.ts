// A stitch node for the chaos hosts: joins the cluster at the URLs in its JSON argument, hosts Account,
// prints `ready <node id>`, and closes cleanly on SIGTERM.
import { connectCluster } from '@stitch/runtime';
import { Account } from './account.js';

const config = JSON.parse(process.argv[2] ?? '{}') as {
  urls: string[];
  cluster: string;
  nodeId: string;
  deadAfterMs: number;
  nkeySeedFile?: string;
};
const cluster = await connectCluster({
  nats: config.urls,
  name: config.cluster,
  deadAfterMs: config.deadAfterMs,
  waitForServerMs: 10_000,
  ...(config.nkeySeedFile ? { nkeySeedFile: config.nkeySeedFile } : {}),
});
const node = await cluster.startNode({ id: config.nodeId, actors: [Account] });
const stop = async () => {
  await cluster.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.stdout.write(`ready ${node.id}\n`);

// The node process the fuzzer attacks: joins the cluster named in its JSON argument, hosts the test
// fixtures' Counter, reports `{ ready: nodeId }` over IPC, and closes cleanly on SIGTERM.
import { connectCluster, type LogFn } from '@stitch/runtime';
import { Counter } from '../test/fixtures/runtime-actors.js';

interface FuzzNodeConfig {
  nats: string;
  cluster: string;
  nodeId: string;
  verbose?: boolean;
}

const config = JSON.parse(process.argv[2] ?? '{}') as FuzzNodeConfig;
// Hostile input is logged by the runtime (at most once a second per edge); `--verbose` shows it.
const log: LogFn = (level, message, fields) => {
  if (config.verbose === true) process.stderr.write(`${JSON.stringify({ level, message, fields })}\n`);
};
const cluster = await connectCluster({ nats: config.nats, name: config.cluster, log });
const node = await cluster.startNode({ id: config.nodeId, actors: [Counter] });
const stop = async () => {
  await cluster.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.send?.({ ready: node.id });

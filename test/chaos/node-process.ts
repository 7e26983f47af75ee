// A stitch node for the chaos hosts: joins the cluster at the URLs in its JSON argument, hosts Account
// (and, with `operators`, the agent operators a coordinator places), prints `ready <node id>`. SIGTERM
// drains it first (`draining`, then `drained <actors left>`: a coordinator moves its operators off it
// live), then closes it.
import { connectCluster } from '@stitch/runtime';
import { Account } from './account.js';

export interface NodeConfig {
  urls: string[];
  cluster: string;
  nodeId: string;
  deadAfterMs: number;
  /** Host the agent operators too, so that a coordinator can place a graph here. */
  operators?: boolean;
  nkeySeedFile?: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as NodeConfig;
const cluster = await connectCluster({
  nats: config.urls,
  name: config.cluster,
  deadAfterMs: config.deadAfterMs,
  waitForServerMs: 10_000,
  ...(config.nkeySeedFile ? { nkeySeedFile: config.nkeySeedFile } : {}),
});
const node = await cluster.startNode({
  id: config.nodeId,
  // Imported only where needed: the agents package is much more to load than Account.
  actors: config.operators ? [Account, ...(await import('@stitch/agents')).OPERATOR_ACTORS] : [Account],
});
const say = (line: string) => process.stdout.write(`${line}\n`);
const drainAndStop = async () => {
  say('draining');
  say(`drained ${await node.drain()}`);
  await cluster.close();
  process.exit(0);
};
process.once('SIGTERM', drainAndStop);
process.once('SIGINT', drainAndStop);
say(`ready ${node.id}`);

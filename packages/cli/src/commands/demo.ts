import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { probeHost } from '@stitch/kernels';
import { startEmbeddedNats } from '@stitch/runtime';
import type { Command } from 'commander';

/** The main job: the whole system on an embedded local nats-server, start to finish. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('Run the end-to-end demo on an embedded local nats-server')
    .action(async () => {
      const nats = await startEmbeddedNats();
      const say = (line: string) => process.stdout.write(`${line}\n`);
      try {
        say(`embedded nats-server ${nats.url} (pid ${nats.pid}, JetStream store ${nats.dir})`);
        const nc = await connect({ servers: nats.url, name: 'stitch-demo' });
        try {
          const nodes = await new Kvm(nc).create('stitch_demo_nodes', { ttl: 10_000 });
          const record = { nodeId: 'demo-node-0', ...probeHost() };
          await nodes.put(record.nodeId, JSON.stringify(record));
          const stored = await nodes.get(record.nodeId);
          say('capability record published to KV stitch_demo_nodes:');
          say(JSON.stringify(stored?.json(), null, 2));
        } finally {
          await nc.close();
        }
      } finally {
        await nats.stop();
        say('embedded nats-server stopped');
      }
    });
}

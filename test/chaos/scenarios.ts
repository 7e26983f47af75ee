// The faults of `pnpm chaos`, in the order they run.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { Scenario, World } from './scenario.js';

/** The server leading the mailbox stream (where losing a server hurts most); h1 when none answers. */
async function mailboxLeader(w: World): Promise<string> {
  const nc = await connect({ servers: w.nats.urls() });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const s of jsm.streams.list())
      if (s.config.name.endsWith('_mailbox') && s.cluster?.leader) return s.cluster.leader;
    return 'h1';
  } finally {
    await nc.close();
  }
}

let stopped = 'h1';

export const SCENARIOS: Scenario[] = [
  {
    name: 'nats-server-stop',
    what: 'the nats-server leading the mailbox stream killed (SIGKILL), restarted on its store',
    async fault(w) {
      stopped = await mailboxLeader(w);
      await w.nats.stop(stopped, 'SIGKILL');
    },
    heal: (w) => w.nats.start(stopped),
  },
  {
    name: 'node-kill',
    what: 'node n1 killed (SIGKILL), restarted under its id',
    async fault(w) {
      const n1 = w.nodes.get('n1')!;
      n1.child.kill('SIGKILL');
      await n1.exited;
    },
    heal: (w) => w.startNode('n1'),
  },
  {
    name: 'partition',
    what: 'host h1 (a nats-server and node n1) cut off by dropping all its packets, then healed',
    fault: async (w) => w.hosts.cut('h1'),
    heal: async (w) => w.hosts.heal('h1'),
  },
  {
    name: 'latency',
    what: '100 ms ± 20 ms one way on every route between hosts (userspace proxy), then removed',
    proxied: true,
    timeoutMs: 5000,
    fault: async (w) => w.nats.impair({ delayMs: 100, jitterMs: 20 }),
    heal: async (w) => w.nats.impair({}),
  },
];

// The faults of `pnpm chaos`, in the order they run.
import { setTimeout as delay } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { connectCluster } from '@stitch/runtime';
import { Account } from './account.js';
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

/** Accounts the load client uses (run.ts's shape.actors at most). */
const ACCOUNTS = 8;

/**
 * Live-migrates every account n1 hosts to n2 at once and kills n1 (SIGKILL) as soon as the first move
 * has committed: the rest die mid-hand-off with their source. No effect may be lost or applied twice.
 */
async function killDuringMigrations(w: World): Promise<void> {
  const c = await connectCluster({ nats: w.nats.urls(), name: w.cluster, log: () => undefined });
  try {
    const refs = Array.from({ length: ACCOUNTS }, (_, i) =>
      c.ref<typeof Account>({ type: Account.type, id: `acct-${i}` }),
    );
    const onN1 = [];
    for (const ref of refs) if ((await c.locate(ref))?.node === 'n1') onN1.push(ref);
    const moves = onN1.map((ref) =>
      c.migrate(ref, 'n2', { timeoutMs: 5000 }).then(
        () => true,
        () => false,
      ),
    );
    // Killed as soon as the first move has committed: the others are still on their way.
    await Promise.race([
      Promise.race(moves.map((m) => m.then((ok) => (ok ? true : new Promise(() => {}))))),
      delay(3000),
    ]);
    const n1 = w.nodes.get('n1')!;
    n1.child.kill('SIGKILL');
    await n1.exited;
    const done = await Promise.all(moves);
    const committed = done.filter(Boolean).length;
    process.stderr.write(
      `migration-kill: ${onN1.length} accounts on n1, ${committed} moved before the kill, ${onN1.length - committed} died with it\n`,
    );
  } finally {
    await c.close();
  }
}

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
    name: 'migration-kill',
    what: "n1's accounts migrated live to n2, and n1 killed (SIGKILL) while the moves run; restarted",
    fault: killDuringMigrations,
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

import { Coordinator, coordinatorActor, missedSlaNote } from '@stitch/agents';
import { PARSE_LIMITS } from '@stitch/ir';
import { connectCluster, InvalidOptions, watchServerDisconnects } from '@stitch/runtime';
import { observeCoordinator } from '@stitch/telemetry';
import type { Command } from 'commander';
import { addConnectionOptions, type ConnectionFlags, connectionFromFlags } from '../connection-options.js';
import { readInputText } from '../input-file.js';
import { addLogOption, type LogFlags, logFromFlags } from '../log-options.js';
import { firstSignal } from '../signals.js';
import { addTelemetryOptions, type TelemetryFlags, telemetryFromFlags } from '../telemetry-options.js';

interface CoordinatorCommandOptions extends ConnectionFlags, LogFlags, TelemetryFlags {
  name: string;
  id: string;
  deploy?: string[];
  systemNkey?: string;
  leaseMs: string;
  policy: string;
}

export function registerCoordinator(program: Command): void {
  const command = program
    .command('coordinator')
    .description(
      'Run the coordinator actor: place deployments on the live nodes, re-plan and migrate operators ' +
        'on node join/leave or drift, until SIGINT/SIGTERM',
    );
  addLogOption(addTelemetryOptions(addConnectionOptions(command)))
    .option('--name <cluster>', 'cluster name', 'default')
    .option('--id <name>', 'coordinator actor id (stitch-coordinator/<id>)', 'main')
    .option('--deploy <file.mlir...>', 'agent graphs to deploy once the coordinator runs')
    .option(
      '--lease-ms <ms>',
      'leader lease: a standby coordinator takes over after this long without renewal',
      '2000',
    )
    .option(
      '--policy <name>',
      "static (operators keep the plan's replicas) or rebalance (a control loop adds replicas of busy operators and removes idle ones)",
      'static',
    )
    .option(
      '--system-nkey <file>',
      "a system-account user's seed (system.nk from cluster init --auth): move a dead node's operators when the server reports its connection closed, not when its heartbeat expires",
    )
    .action(async (opts: CoordinatorCommandOptions) => {
      const stopped = firstSignal();
      if (opts.policy !== 'static' && opts.policy !== 'rebalance')
        throw new InvalidOptions(
          `--policy must be static or rebalance, found ${JSON.stringify(opts.policy)}`,
        );
      const telemetry = await telemetryFromFlags('stitch-coordinator', opts);
      const connection = connectionFromFlags(opts);
      const cluster = await connectCluster({ name: opts.name, log: logFromFlags(opts), ...connection });
      const say = (line: string) => process.stdout.write(`${line}\n`);
      let advisories: { close(): Promise<void> } | undefined;
      let coordinator: Coordinator | undefined;
      try {
        coordinator = new Coordinator(cluster, {
          name: `coordinator-${opts.id}-${process.pid}`,
          leaseMs: Number(opts.leaseMs),
          autoscale: { policy: opts.policy },
          log: (l) => say(l),
        });
        observeCoordinator(coordinator);
        if (opts.systemNkey) {
          if (connection.nats === undefined)
            throw new InvalidOptions('--system-nkey needs --nats: the server whose advisories to watch');
          const { nats, tls } = connection;
          advisories = await watchServerDisconnects(
            { nats, nkeySeedFile: opts.systemNkey, ...(tls ? { tls } : {}) },
            (client) => coordinator?.nodeDisconnected(client),
          );
        }
        const def = coordinatorActor(coordinator);
        // Its own node hosts only the coordinator actor; the planner ignores nodes without operator types.
        await cluster.startNode({ id: `coordinator-${opts.id}`, actors: [def] });
        await coordinator.start();
        await cluster.spawn(def, { id: opts.id });
        say(
          `coordinator stitch-coordinator/${opts.id} running in cluster "${cluster.name}" at ${cluster.url}`,
        );
        for (const file of opts.deploy ?? []) {
          const d = await coordinator.deploy(readInputText(file, PARSE_LIMITS.maxInputBytes, 'graph'));
          say(`deployed ${d.name} (${file}) by ${d.solver}: est. ${d.latencyMs.toFixed(1)} ms per request`);
          // A graph planned for a rate (rate_rps) says how it was sized against the live slots, and
          // a best-effort one (sla_policy) whether it misses its SLA.
          const missed = missedSlaNote(d.notes);
          for (const n of d.notes.filter((x) => x.startsWith('sized for') || x === missed)) say(`  ${n}`);
          for (const o of d.ops) {
            const device = o.modelled ? `virtual:${o.classId} (modelled)` : o.classId;
            // Replicas a planned rate started the op with run on further nodes of its class.
            const more = (o.replicas ?? []).map((r) => r.node);
            const nodes = more.length > 0 ? `${o.node} + ${more.join(', ')}` : o.node;
            say(`  ${o.id.padEnd(18)} ${o.op.padEnd(16)} ${device.padEnd(26)} ${nodes}`);
          }
        }
        await stopped;
        say('coordinator stopping');
      } finally {
        // Also after a failure (a deploy no node can take): its lease and control loop would keep
        // the process running.
        await coordinator?.stop().catch((err) => say(`coordinator stop failed: ${(err as Error).message}`));
        await advisories?.close();
        await cluster.close();
        await telemetry.shutdown();
      }
    });
}

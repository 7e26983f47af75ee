import { connectCluster } from '@stitch/runtime';
import type { Command } from 'commander';
import { addConnectionOptions, type ConnectionFlags, connectionFromFlags } from '../connection-options.js';
import { integer } from '../number-options.js';

interface DrainFlags extends ConnectionFlags {
  name: string;
  timeoutMs: number;
}

export function registerDrain(program: Command): void {
  const command = program
    .command('drain')
    .argument('<node-id>', 'the node to drain')
    .description(
      'Drain a running node before maintenance, as its SIGTERM would but leaving it running: it takes no ' +
        'new actors, a coordinator moves its actors off it live; exits 0 once none is left, 1 if some are',
    );
  addConnectionOptions(command, { natsRequired: true })
    .option('--name <cluster>', 'cluster name', 'default')
    .option(
      '--timeout-ms <ms>',
      'how long to wait for the actors to leave (at most 600000)',
      integer(1),
      10_000,
    )
    .action(async (nodeId: string, flags: DrainFlags) => {
      const cluster = await connectCluster({
        name: flags.name,
        log: () => undefined,
        ...connectionFromFlags(flags),
      });
      try {
        const t0 = performance.now();
        const { left } = await cluster.drainNode(nodeId, { timeoutMs: flags.timeoutMs });
        const ms = (performance.now() - t0).toFixed(0);
        if (left === 0) {
          process.stdout.write(
            `node ${nodeId} drained in ${ms} ms: no actor left on it; it takes no new ones until undrained or restarted\n`,
          );
          return;
        }
        process.stdout.write(
          `node ${nodeId}: ${left} actor(s) still on it after ${ms} ms (nobody moved them: is a coordinator running? ` +
            'stopping the node stops them, each persisting its snapshot)\n',
        );
        process.exitCode = 1;
      } finally {
        await cluster.close();
      }
    });
}

export function registerUndrain(program: Command): void {
  const command = program
    .command('undrain')
    .argument('<node-id>', 'the drained node')
    .description(
      'End a drain (stitch drain): the node takes new actors again and announces itself as joined, so ' +
        'that a coordinator places operators on it again; the actors moved off it stay where they are',
    );
  addConnectionOptions(command, { natsRequired: true })
    .option('--name <cluster>', 'cluster name', 'default')
    .action(async (nodeId: string, flags: Omit<DrainFlags, 'timeoutMs'>) => {
      const cluster = await connectCluster({
        name: flags.name,
        log: () => undefined,
        ...connectionFromFlags(flags),
      });
      try {
        const { undrained } = await cluster.undrainNode(nodeId);
        process.stdout.write(
          undrained
            ? `node ${nodeId} takes new actors again\n`
            : `node ${nodeId} was not draining (or is stopping): nothing changed\n`,
        );
      } finally {
        await cluster.close();
      }
    });
}

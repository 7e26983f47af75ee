import type { Command } from 'commander';
import { addConnectionOptions, type ConnectionFlags, withCluster } from '../connection-options.js';
import { integer } from '../number-options.js';

interface DrainFlags extends ConnectionFlags {
  name: string;
  timeoutMs: number;
}

/** A command on one running node: its id, the connection flags and `--name`. */
function nodeCommand(program: Command, name: string, node: string, description: string): Command {
  const command = program.command(name).argument('<node-id>', node).description(description);
  return addConnectionOptions(command, { natsRequired: true }).option(
    '--name <cluster>',
    'cluster name',
    'default',
  );
}

export function registerDrain(program: Command): void {
  nodeCommand(
    program,
    'drain',
    'the node to drain',
    'Drain a running node before maintenance, as its SIGTERM would but leaving it running: it takes no ' +
      'new actors, a coordinator moves its actors off it live; exits 0 once none is left, 1 if some are',
  )
    .option(
      '--timeout-ms <ms>',
      'how long to wait for the actors to leave (at most 600000)',
      integer(1),
      10_000,
    )
    .action((nodeId: string, flags: DrainFlags) =>
      withCluster(flags, async (cluster) => {
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
      }),
    );
}

export function registerUndrain(program: Command): void {
  nodeCommand(
    program,
    'undrain',
    'the drained node',
    'End a drain (stitch drain): the node takes new actors again and announces itself as joined, so ' +
      'that a coordinator places operators on it again; the actors moved off it stay where they are',
  ).action((nodeId: string, flags: Omit<DrainFlags, 'timeoutMs'>) =>
    withCluster(flags, async (cluster) => {
      const { undrained } = await cluster.undrainNode(nodeId);
      process.stdout.write(
        undrained
          ? `node ${nodeId} takes new actors again\n`
          : `node ${nodeId} was not draining (or is stopping): nothing changed\n`,
      );
    }),
  );
}

import type { ReminderInfo } from '@stitch/runtime';
import type { Command } from 'commander';
import { alignColumns } from '../columns.js';
import { addConnectionOptions, type ConnectionFlags, withCluster } from '../connection-options.js';

interface RemindersFlags extends ConnectionFlags {
  name: string;
  json?: boolean;
  cancel?: string;
}

export function registerReminders(program: Command): void {
  const command = program
    .command('reminders')
    .argument('<type>', 'actor type')
    .argument('<id>', 'actor id')
    .description(
      "List an actor's reminders (next due time, period, delivery mode), or cancel one with --cancel " +
        '(on a secured cluster that takes a node credential: clients may only read reminders)',
    );
  addConnectionOptions(command, { natsRequired: true })
    .option('--name <cluster>', 'cluster name', 'default')
    .option('--cancel <reminder>', 'remove this reminder of the actor, then list what is left')
    .option('--json', 'print the list as JSON')
    .action((type: string, id: string, flags: RemindersFlags) =>
      withCluster(flags, async (cluster) => {
        const ref = { type, id };
        if (flags.cancel !== undefined) await cluster.cancelReminder(ref, flags.cancel);
        const list = await cluster.reminders(ref);
        process.stdout.write(
          flags.json ? `${JSON.stringify(list)}\n` : remindersText(`${type}/${id}`, list, Date.now()),
        );
      }),
    );
}

/** The reminders as a table, each with when it is next due from `now`. */
export function remindersText(actor: string, list: readonly ReminderInfo[], now: number): string {
  if (list.length === 0) return `${actor} has no reminders\n`;
  const rows = [
    ['name', 'next due', 'in', 'period', 'mode'],
    ...list.map((r) => [
      r.name,
      new Date(r.dueAt).toISOString(),
      seconds(r.dueAt - now),
      r.periodMs === 0 ? 'once' : seconds(r.periodMs),
      r.mode,
    ]),
  ];
  const lines = alignColumns(rows, (c) => c === 2 || c === 3).map((l) => l.trimEnd());
  return `${lines.join('\n')}\n`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s`;
}

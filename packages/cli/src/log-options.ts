import { LOG_LEVELS, type LogFn, type LogLevel, stderrLogAt } from '@stitch/runtime';
import { type Command, Option } from 'commander';

/** `--log-level` as commander parses it. */
export interface LogFlags {
  logLevel: LogLevel;
}

/** Adds `--log-level`: what the runtime writes to stderr, as JSON lines (info adds each live migration). */
export function addLogOption(command: Command): Command {
  return command.addOption(
    new Option(
      '--log-level <level>',
      "the runtime's stderr log, one JSON line each: info adds each live migration with its phases",
    )
      .choices(LOG_LEVELS)
      .default('warn'),
  );
}

export function logFromFlags(flags: LogFlags): LogFn {
  return stderrLogAt(flags.logLevel);
}

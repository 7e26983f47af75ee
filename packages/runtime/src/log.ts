export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Where the runtime reports what it cannot tell a caller: dropped messages, crashes, failed heartbeats. */
export type LogFn = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

/** The levels, least severe first. */
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/**
 * Writes what is at `least` or more severe to stderr as one JSON line each, with the time (faults are
 * read by it).
 */
export function stderrLogAt(least: LogLevel): LogFn {
  const from = LOG_LEVELS.indexOf(least);
  return (level, message, fields) => {
    if (LOG_LEVELS.indexOf(level) < from) return;
    process.stderr.write(
      `${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`,
    );
  };
}

/** Warnings and errors to stderr (the default log). */
export const stderrLog: LogFn = stderrLogAt('warn');

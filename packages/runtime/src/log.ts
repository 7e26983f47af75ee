export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Where the runtime reports what it cannot tell a caller: dropped messages, crashes, failed heartbeats. */
export type LogFn = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

/** Writes warnings and errors to stderr as one JSON line each, with the time (faults are read by it). */
export const stderrLog: LogFn = (level, message, fields) => {
  if (level === 'debug' || level === 'info') return;
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`,
  );
};

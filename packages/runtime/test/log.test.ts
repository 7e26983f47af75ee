// stderrLogAt: one JSON line per entry at or above its level, nothing below it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stderrLog, stderrLogAt } from '../src/log.js';

/** What `fn` writes to stderr. */
function written(fn: () => void): string[] {
  const lines: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => {
    lines.push(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    fn();
  } finally {
    process.stderr.write = write;
  }
  return lines;
}

test('a log at info writes info and above, as JSON lines with the time; the default starts at warn', () => {
  const lines = written(() => {
    const log = stderrLogAt('info');
    log('debug', 'not this');
    log('info', 'actor migrated', { pausedMs: 3.5 });
    log('error', 'failed');
  });
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    parsed.map(({ level, msg }) => [level, msg]),
    [
      ['info', 'actor migrated'],
      ['error', 'failed'],
    ],
  );
  assert.equal(parsed[0]!.pausedMs, 3.5);
  assert.ok(!Number.isNaN(Date.parse(String(parsed[0]!.time))));
  assert.deepEqual(
    written(() => {
      stderrLog('info', 'dropped');
      stderrLog('warn', 'kept');
    }).map((l) => (JSON.parse(l) as { msg: string }).msg),
    ['kept'],
  );
});

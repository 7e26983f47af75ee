// `pnpm bench <name>` runs bench/<name>.ts; each benchmark prints one JSON object per line.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// Modules the benchmarks use, not benchmarks themselves.
const HELPERS = new Set(['run', 'actors-responder', 'responder-process', 'socket-stamps', 'spike-load']);
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))
  .filter((f) => !HELPERS.has(f));
const [name, ...rest] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  process.stderr.write(`usage: pnpm bench <name> [args]; benchmarks: ${available.join(', ') || '(none)'}\n`);
  process.exit(2);
}
const result = spawnSync(
  process.execPath,
  ['--import', '@stitch/typescript-loader', join(here, `${name}.ts`), ...rest],
  {
    stdio: 'inherit',
  },
);
process.exit(result.status ?? 1);

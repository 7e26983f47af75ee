// `pnpm bench <name>` runs bench/<name>.ts; each benchmark prints one JSON object per line. It runs
// in this process, with the arguments after the name as its own (a second process would only add
// its start-up to every run).
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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
const file = join(here, `${name}.ts`);
process.argv = [process.argv[0]!, file, ...rest];
await import(pathToFileURL(file).href);

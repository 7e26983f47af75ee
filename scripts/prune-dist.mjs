// Run by each TypeScript package's build after tsc, in the package's folder: removes from dist/ what
// no source in src/ produces any more (outputs of deleted or moved modules), so that a packed tarball
// ships no stale module. tsc rewrites the rest in place, so dist/ is never empty while tests or other
// builds read it (as it would be with `rm -rf dist` before tsc).
import { existsSync, readdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { join, relative } from 'node:path';

const OUTPUT = /\.(d\.ts\.map|d\.ts|js\.map|js)$/;

function prune(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      prune(path);
      if (readdirSync(path).length === 0) rmdirSync(path);
      continue;
    }
    const rel = relative('dist', path);
    const m = OUTPUT.exec(rel);
    if (!m || !existsSync(join('src', `${rel.slice(0, m.index)}.ts`))) unlinkSync(path);
  }
}

if (existsSync('dist')) prune('dist');

// Run by each TypeScript package's build after `tsc` (which writes only the .d.ts files), in the
// package's folder: esbuild bundles the package's own modules into one file per entry point in dist/,
// with the code entries share in chunks beside them (so a class is one class whichever entry loaded it).
// Other packages, @stitch/* included, stay imports. Why: each ES module a process loads costs it, and
// the most under a module hook (the test command's TypeScript loader: two round trips to the hooks'
// thread per module): importing the runtime and the kernels took 0.59 CPU-s with ~140 modules and 0.33
// with 4. Then it removes from dist/ what neither this build nor tsc produced (outputs of deleted
// modules, chunks of an earlier build), rewriting in place, so dist/ is never empty while tests or
// other builds read it.
//
// Entry points: every `exports` and `bin` target of package.json, and `bundleEntries` (modules loaded
// by file name: worker threads, child processes, what a benchmark imports from inside a package);
// `browserEntries` are built alone for a browser. `src/a/b.ts` is built to `dist/a-b.js`.
// Code that finds files next to its module (`new URL('./x.js', import.meta.url)`) finds them in dist/,
// where every entry and chunk lies; entries keep their names, so nothing may sit in a sub-folder.
import { existsSync, readdirSync, readFileSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as esbuild from 'esbuild';

const manifest = JSON.parse(readFileSync('package.json', 'utf8'));

/** `./dist/x.js` → `x`, the entry's name, read from `src/x.ts`. */
function entryName(target) {
  const m = /^\.\/dist\/([^/]+)\.js$/.exec(target);
  if (!m)
    throw new Error(
      `${manifest.name}: ${target} is not a module in dist/ (bundle-dist.mjs builds those only)`,
    );
  return m[1];
}

const targets = [];
for (const value of Object.values(manifest.exports ?? {})) {
  const target = typeof value === 'string' ? value : value.default;
  if (target.startsWith('./dist/')) targets.push(target);
}
for (const target of Object.values(manifest.bin ?? {})) targets.push(target);
const entryPoints = Object.fromEntries(targets.map((t) => [entryName(t), `src/${entryName(t)}.ts`]));
/** `src/a/b.ts`, listed in package.json's `field` → `a-b`, its name in dist/. */
function sourceName(source, field) {
  const m = /^src\/(.+)\.ts$/.exec(source);
  if (!m) throw new Error(`${manifest.name}: ${field} lists ${source}, not a .ts file in src/`);
  return m[1].replaceAll('/', '-');
}
for (const source of manifest.bundleEntries ?? []) entryPoints[sourceName(source, 'bundleEntries')] = source;

const result = await esbuild.build({
  entryPoints,
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  sourcesContent: true,
  metafile: true,
  logLevel: 'warning',
  // As tsconfig.json has it: class fields are defined, imports stay as written.
  tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true } },
  // `bin` entries keep their #! line (esbuild moves it to the top of the output).
});

const outputs = Object.keys(result.metafile.outputs);
// Scripts for a browser (the dashboard's page): each one file, in dist/ by its src path's name.
for (const source of manifest.browserEntries ?? []) {
  const page = await esbuild.build({
    entryPoints: { [sourceName(source, 'browserEntries')]: source },
    outdir: 'dist',
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
  });
  outputs.push(...Object.keys(page.metafile.outputs));
}

const built = new Set(outputs.map((p) => relative('dist', p)));

/** What tsc writes: a declaration per module of src/. */
const declared = (rel) => {
  const m = /\.d\.ts$/.exec(rel);
  return m !== null && existsSync(join('src', `${rel.slice(0, m.index)}.ts`));
};

function prune(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      prune(path);
      if (readdirSync(path).length === 0) rmdirSync(path);
      continue;
    }
    const rel = relative('dist', path);
    if (!built.has(rel) && !declared(rel)) unlinkSync(path);
  }
}
prune('dist');

// What `pnpm pack` puts in each publishable package's tarball: only what users need (dist; for the
// native addon and the speech worker the sources they build from, never build/), entry points that exist, source maps whose
// sources are inlined or shipped, no workspace: versions, a license and engines.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, test } from 'node:test';
import { killAll, pack, ROOT, workspacePackages } from './fixtures/packing.js';

const work = mkdtempSync(join(tmpdir(), 'stitch-pack-'));
after(() => {
  killAll();
  rmSync(work, { recursive: true, force: true });
});

/** Every file below `dir`, as paths relative to it. */
function walk(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p, base) : [relative(base, p)];
  });
}

/** Every string in an `exports` value (conditions and subpaths nest). */
function targets(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (value && typeof value === 'object') return Object.values(value).flatMap(targets);
  return [];
}

/** Modules the build makes from package.json's bundleEntries and browserEntries: `src/a/b.ts` → `dist/a-b.js`. */
function builtByName(manifest: Record<string, unknown>): string[] {
  return [manifest.bundleEntries, manifest.browserEntries]
    .flatMap((l) => (Array.isArray(l) ? (l as string[]) : []))
    .map(
      (s) =>
        `dist/${s
          .replace(/^src\//, '')
          .replace(/\.ts$/, '')
          .replaceAll('/', '-')}.js`,
    );
}

const NATIVE_FILES =
  /^(package\.json|README\.md|LICENSE|binding\.gyp|build\.cjs|index\.cjs|index\.d\.ts|src\/[^/]+\.(cc|h))$/;
// native/*.c: C sources a TypeScript package compiles on first use (the speech-to-text worker).
const TS_FILES = /^(package\.json|README\.md|LICENSE|dist\/.+\.(js|d\.ts|js\.map)|native\/[^/]+\.c)$/;

test('only the root package is private', () => {
  const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { private?: boolean };
  assert.equal(root.private, true);
  for (const { dir, manifest } of workspacePackages())
    assert.notEqual(manifest.private, true, `${relative(ROOT, dir)} is private, so it cannot be published`);
});

for (const { dir, manifest } of workspacePackages()) {
  const native = relative(ROOT, dir) === 'native';
  test(`the tarball of ${manifest.name} holds what users need and nothing else`, async () => {
    const tarball = await pack(dir, work);
    const out = join(work, manifest.name.replace('/', '+'));
    mkdirSync(out, { recursive: true });
    execFileSync('tar', ['xzf', tarball, '-C', out], { timeout: 30_000 });
    const pkgDir = join(out, 'package');
    const files = walk(pkgDir);
    const packed = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as Record<string, unknown>;

    const unexpected = files.filter((f) => !(native ? NATIVE_FILES : TS_FILES).test(f));
    assert.deepEqual(unexpected, [], `files users do not need in ${manifest.name}'s tarball`);
    if (native)
      assert.ok(files.includes('binding.gyp') && files.includes('src/addon.cc'), 'sources to build from');

    assert.equal(typeof packed.license, 'string', 'license');
    assert.equal(typeof (packed.engines as { node?: unknown } | undefined)?.node, 'string', 'engines.node');
    for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
      for (const [dep, spec] of Object.entries((packed[field] as Record<string, string> | undefined) ?? {}))
        assert.ok(!spec.startsWith('workspace:'), `${field}.${dep} is still ${spec} in the tarball`);
    }

    // Entry points: exports, main, types and bin name files that are in the tarball.
    const bin = packed.bin;
    const binFiles = typeof bin === 'string' ? [bin] : Object.values((bin as Record<string, string>) ?? {});
    const entries = [
      ...targets(packed.exports),
      ...targets(packed.main),
      ...targets(packed.types),
      ...binFiles,
      ...builtByName(packed),
    ];
    assert.ok(entries.length > 0, `${manifest.name} names no entry point`);
    for (const entry of entries)
      assert.ok(
        existsSync(join(pkgDir, entry)),
        `${manifest.name}: entry point ${entry} is not in the tarball`,
      );
    for (const file of binFiles)
      assert.match(readFileSync(join(pkgDir, file), 'utf8'), /^#!\/usr\/bin\/env node\n/, `${file}: shebang`);

    // Source maps: each source is inlined (sourcesContent) or a file in the tarball.
    for (const file of files.filter((f) => f.endsWith('.map'))) {
      const map = JSON.parse(readFileSync(join(pkgDir, file), 'utf8')) as {
        sources: string[];
        sourcesContent?: (string | null)[];
        sourceRoot?: string;
      };
      map.sources.forEach((source, i) => {
        if (typeof map.sourcesContent?.[i] === 'string') return;
        const at = resolve(dirname(join(pkgDir, file)), map.sourceRoot ?? '', source);
        assert.ok(
          at.startsWith(`${pkgDir}/`) && existsSync(at),
          `${manifest.name}: ${file} refers to ${source}, which is neither inlined nor in the tarball`,
        );
      });
    }

    // No leftovers of an earlier build: each module in dist/ is an entry point the package names, or
    // a chunk of code its entries share, which one of them imports.
    const shipped = files.filter((f) => f.startsWith('dist/') && f.endsWith('.js'));
    const reached = new Set(entries.filter((e) => e.endsWith('.js')).map((e) => e.replace(/^\.\//, '')));
    for (const file of reached)
      for (const [, chunk] of readFileSync(join(pkgDir, file), 'utf8').matchAll(
        /["'](\.\/[^"'\s]+\.js)["']/g,
      ))
        reached.add(join('dist', chunk!));
    assert.deepEqual(
      shipped.filter((f) => !reached.has(f)),
      [],
      `${manifest.name}: modules no entry point reaches (stale build output; rebuild it)`,
    );
  });
}

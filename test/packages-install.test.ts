// Every publishable package as a user gets it: all the tarballs `pnpm pack` makes, installed together
// with plain `npm install` into a folder under the OS temp dir (the @stitch/* dependencies are met by
// the tarballs themselves), then every export of every package is imported there, the native addon
// (compiled by its install script) probes the host, and the `stitch` bin answers --version.
// Skipped only when npm cannot reach the registry.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  killAll,
  npmInstall,
  outcome,
  pack,
  registryProblem,
  run,
  userApp,
  userEnv,
  workspacePackages,
} from './fixtures/packing.js';

let work: string | undefined;
after(() => {
  killAll();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('all packages install together with npm outside the workspace, load, and the stitch bin runs', {
  timeout: 300_000,
}, async (t) => {
  const problem = await registryProblem();
  if (problem) {
    t.skip(problem);
    return;
  }
  work = mkdtempSync(join(tmpdir(), 'stitch-packages-install-'));
  const tarballs = join(work, 'tarballs');
  mkdirSync(tarballs);
  const packages = workspacePackages();
  const files = await Promise.all(packages.map(({ dir }) => pack(dir, tarballs)));
  const app = userApp(join(work, 'app'));
  await npmInstall(app, files);
  assert.ok(
    existsSync(join(app, 'node_modules/@stitch/native/build/Release/stitch_native.node')),
    'the install script of @stitch/native built the addon',
  );

  // Each module a package exports (the cli exports none, only its bin), imported by name as a user's
  // code would.
  const specifiers = packages.flatMap(({ manifest }) =>
    Object.keys((manifest.exports as Record<string, unknown> | undefined) ?? {})
      .filter((sub) => sub !== './package.json')
      .map((sub) => `${manifest.name}${sub.slice(1)}`),
  );
  writeFileSync(
    join(app, 'check.mjs'),
    [
      "import { createRequire } from 'node:module';",
      `for (const s of ${JSON.stringify(specifiers)}) await import(s);`,
      "const { probe } = createRequire(import.meta.url)('@stitch/native');",
      `console.log('imported ${specifiers.length} entry points; probe: ' + probe().arch);`,
      '',
    ].join('\n'),
  );
  const check = await run(process.execPath, ['check.mjs'], { cwd: app, env: userEnv(), timeoutMs: 60_000 });
  assert.equal(check.code, 0, outcome('node check.mjs', check));
  assert.match(check.stdout, new RegExp(`^imported ${specifiers.length} entry points; probe: \\S+\\n$`));

  const version = await run(join(app, 'node_modules/.bin/stitch'), ['--version'], {
    cwd: app,
    env: userEnv(),
    timeoutMs: 60_000,
  });
  assert.equal(version.code, 0, outcome('stitch --version', version));
  const cli = packages.find(({ manifest }) => manifest.name === '@stitch/cli')!;
  assert.equal(version.stdout.trim(), cli.manifest['version']);
});

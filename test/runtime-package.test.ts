// @stitch/runtime as a user outside the workspace gets it: packed with `pnpm pack`, installed with
// plain `npm install` into a fresh folder under the OS temp dir, and the README's embedding example
// (the ```js block right after `<!-- example: embed -->`) run there as example.mjs with plain node,
// against a nats-server (JetStream on) that this test starts, with a PATH that holds node only: no
// LLVM tools, no nats-server. Skipped only when npm cannot reach the registry.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';
import {
  killAll,
  npmInstall,
  outcome,
  pack,
  ROOT,
  registryProblem,
  run,
  userApp,
} from './fixtures/packing.js';

const RUNTIME = join(ROOT, 'packages', 'runtime');
const MARKER = '<!-- example: embed -->';

let work: string | undefined;
let nats: EmbeddedNats | undefined;
after(async () => {
  killAll();
  await nats?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The ```js block that directly follows the marker line in packages/runtime/README.md. */
function readmeExample(): string {
  const readme = readFileSync(join(RUNTIME, 'README.md'), 'utf8');
  const at = readme.indexOf(`\n${MARKER}\n`);
  assert.ok(at >= 0, `packages/runtime/README.md has no line ${MARKER}`);
  const block = /^```js\n([\s\S]*?\n)```\n/.exec(readme.slice(at + MARKER.length + 2));
  assert.ok(block, `packages/runtime/README.md: no \`\`\`js block directly after ${MARKER}`);
  return block[1]!;
}

test('the packed runtime installs with npm outside the workspace and runs its README example', {
  timeout: 300_000,
}, async (t) => {
  const example = readmeExample();
  const problem = await registryProblem();
  if (problem) {
    t.skip(problem);
    return;
  }

  work = mkdtempSync(join(tmpdir(), 'stitch-runtime-package-'));
  assert.ok(!work.startsWith(`${ROOT}/`), `the temp dir ${work} is inside the workspace`);
  const tarball = await pack(RUNTIME, work);
  const manifest = JSON.parse(
    execFileSync('tar', ['xzf', tarball, '-O', 'package/package.json'], {
      encoding: 'utf8',
      timeout: 30_000,
    }),
  ) as { dependencies?: Record<string, string> };
  const internal = Object.keys(manifest.dependencies ?? {}).filter((d) => d.startsWith('@stitch/'));
  assert.deepEqual(internal, [], 'the packed runtime depends on unpublished workspace packages');

  const app = userApp(join(work, 'app'));
  await npmInstall(app, [tarball]);
  assert.deepEqual(
    readdirSync(join(app, 'node_modules', '@stitch')),
    ['runtime'],
    'installed @stitch packages',
  );
  writeFileSync(join(app, 'example.mjs'), example);

  nats = await startEmbeddedNats({ jetstream: true });
  // PATH: node alone, so neither the LLVM tools nor a nats-server can be found.
  const bin = join(work, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  const r = await run('node', ['example.mjs'], {
    cwd: app,
    env: { PATH: bin, HOME: work, TMPDIR: tmpdir(), NATS_URL: nats.url },
    timeoutMs: 60_000,
  });
  assert.equal(r.code, 0, outcome('node example.mjs', r));
  assert.equal(r.stdout, 'counter c1 = 3\n', outcome('node example.mjs', r));
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { probeHost } from '@stitch/kernels';

const run = promisify(execFile);
const bin = new URL('../packages/cli/dist/bin.js', import.meta.url).pathname;
const stitch = (...args: string[]) => run(process.execPath, [bin, ...args]);

test('--version prints the package version, --help lists the commands', async () => {
  const pkg = JSON.parse(readFileSync(new URL('../packages/cli/package.json', import.meta.url), 'utf8'));
  assert.equal((await stitch('--version')).stdout.trim(), pkg.version);
  const help = (await stitch('--help')).stdout;
  assert.match(help, /Usage: stitch/);
  assert.match(help, /probe/);
});

test('probe --json reports what the addon sees, as parseable JSON', async () => {
  const record = JSON.parse((await stitch('probe', '--json')).stdout);
  assert.deepEqual(record, JSON.parse(JSON.stringify(probeHost())));
});

test('probe prints a table for people', async () => {
  const { stdout } = await stitch('probe');
  // Every regex character escaped: model names carry `(R)`, `@ 2.40GHz`, `8480+` and the like.
  const model = probeHost().cpuModel.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  assert.match(stdout, new RegExp(`cpu\\s+${model}\\n`));
  assert.match(stdout, /logical cores\s+\d+/);
});

test('an unknown command fails with a usage error, not a stack trace', async () => {
  await assert.rejects(stitch('frobnicate'), (err: { code?: number; stderr?: string }) => {
    assert.notEqual(err.code, 0);
    assert.match(err.stderr ?? '', /unknown command/);
    assert.doesNotMatch(err.stderr ?? '', /at .*\.js:\d+/);
    return true;
  });
});

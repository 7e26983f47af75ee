// `stitch cluster guard` as a process: it runs the nats-server it is given while its peers are in
// reach, passes SIGHUP on (the server reloads), and on SIGTERM stops the server and exits; bad flags
// are refused with a clear line. The isolation itself is tested on namespace hosts
// (test/partition-guard.test.ts).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { findNatsServer } from '@stitch/runtime';
import { freePort } from '../packages/telemetry/test/otlp-receiver.js';
import { ROOT } from './fixtures/packing.js';
import { alive, killWithChildren } from './fixtures/pids.js';
import { waitUntil } from './fixtures/wait.js';

const BIN = join(ROOT, 'packages/cli/dist/bin.js');

test('stitch cluster guard runs the server, passes SIGHUP on, and stops it on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'stitch-guard-cli-'));
  const log = join(dir, 'server.log');
  // A peer whose host answers (with a refusal): in reach, so the server keeps running.
  const [port, peer] = [await freePort(), await freePort()];
  const conf = join(dir, 'nats.conf');
  writeFileSync(conf, `listen: "127.0.0.1:${port}"\nlog_file: "${log}"\n`);
  const server = [findNatsServer(), '-c', conf];
  const guard = spawn(
    process.execPath,
    [BIN, 'cluster', 'guard', '--peers', `127.0.0.1:${peer}`, '--', ...server],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  guard.stderr!.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const exited = new Promise<number | null>((resolve) => guard.once('exit', (code) => resolve(code)));
  try {
    await waitUntil(() => {
      try {
        return readFileSync(log, 'utf8').includes('Server is ready');
      } catch {
        return false;
      }
    }, 15_000);
    const nc = await connect({ servers: `nats://127.0.0.1:${port}` });
    await nc.flush();
    await nc.close();
    guard.kill('SIGHUP');
    await waitUntil(() => readFileSync(log, 'utf8').includes('Reloaded'), 15_000);
    await delay(1200); // a few probe rounds: a peer in reach leaves the server alone
    assert.equal(readFileSync(log, 'utf8').split('Server is ready').length - 1, 1, 'started once');
    assert.doesNotMatch(stderr, /stopped until/);
    const pid = Number(/\[(\d+)\]/.exec(readFileSync(log, 'utf8'))![1]);
    assert.ok(alive(pid));
    guard.kill('SIGTERM');
    // nats-server exits 1 on SIGTERM; the guard exits with the server.
    assert.equal(await exited, 1, stderr);
    assert.ok(!alive(pid), 'the server stopped with the guard');
  } finally {
    // The guard's server too: killed alone, the guard would leave it running on the port.
    if (guard.pid !== undefined) killWithChildren(guard.pid);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stitch cluster guard refuses bad flags with one line', () => {
  for (const [args, message] of [
    [['--peers', 'nohost'], /peer "nohost" is not host:port/],
    [['--peers', '127.0.0.1:1', '--isolated-after', 'soon'], /--isolated-after takes milliseconds/],
  ] as const) {
    const r = spawnSync(process.execPath, [BIN, 'cluster', 'guard', ...args, '--', 'nats-server'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { findNatsServer, NatsServerNotFound, startEmbeddedNats } from '@stitch/runtime';
import { alive } from './fixtures/pids.js';
import { waitUntil } from './fixtures/wait.js';

const fixture = new URL('./fixtures/nats-holder.ts', import.meta.url).pathname;

async function gone(pid: number, dir: string, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (!alive(pid) && !existsSync(dir)) return true;
    await sleep(50);
  }
  return false;
}

async function exitCode(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const [code] = await once(child, 'exit');
  return code as number | null;
}

/** Pids of the processes in process group `pgid` (from /proc: the fifth field of `stat`). */
function groupMembers(pgid: number): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // `pid (comm) state ppid pgrp …`; comm may hold spaces or parentheses, so split after the last `)`.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') found.push(Number(name));
    } catch {
      // Exited while we looked.
    }
  }
  return found;
}

/**
 * A stand-in for nats-server that ignores SIGTERM (as a server stuck in shutdown would): it logs the
 * two lines startEmbeddedNats waits for, then sleeps in the same process until it is SIGKILLed.
 */
function termIgnoringServer(): { path: string; remove(): void } {
  const home = mkdtempSync(join(tmpdir(), 'stuck-nats-server-'));
  const path = join(home, 'stuck-nats-server');
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      "trap '' TERM",
      'echo "[$$] [INF] Listening for client connections on 127.0.0.1:1" >&2',
      'echo "[$$] [INF] Server is ready" >&2',
      'exec sleep 600',
      '',
    ].join('\n'),
  );
  chmodSync(path, 0o755);
  return { path, remove: () => rmSync(home, { recursive: true, force: true }) };
}

/** Runs the fixture in `mode`, returns the server it reported and the child for further handling. */
async function runHolder(mode: string, opts: { detached?: boolean; env?: NodeJS.ProcessEnv } = {}) {
  // Without NODE_TEST_CONTEXT the fixture's own node:test reports as plain TAP, not to our runner.
  const { NODE_TEST_CONTEXT: _, ...env } = { ...process.env, ...opts.env };
  const child = spawn(process.execPath, ['--import', '@stitch/typescript-loader', fixture, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
    detached: opts.detached ?? false,
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const deadline = Date.now() + 15_000;
  while (!/^server \d+ \S+/m.test(out) && Date.now() < deadline && child.exitCode === null) await sleep(20);
  const m = /^server (\d+) (\S+)/m.exec(out);
  assert.ok(m, `fixture printed no server: ${out}`);
  return { child, pid: Number(m[1]), dir: m[2]! };
}

test('starts with JetStream on a free loopback port, and stop() leaves nothing behind', async () => {
  const [a, b] = await Promise.all([startEmbeddedNats(), startEmbeddedNats()]);
  try {
    assert.notEqual(a.port, b.port);
    assert.match(a.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
    const nc = await connect({ servers: a.url });
    const jsm = await jetstreamManager(nc);
    const info = await jsm.getAccountInfo();
    assert.equal(typeof info.limits, 'object');
    const kv = await new Kvm(nc).create('probe');
    await kv.put('k', 'v');
    assert.equal((await kv.get('k'))?.string(), 'v');
    await nc.close();
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  for (const s of [a, b]) {
    assert.equal(alive(s.pid), false, 'server process is gone');
    assert.equal(existsSync(s.dir), false, 'temp dir is removed');
  }
  await a.stop(); // a second stop is harmless
});

test('a failing test still tears its server down', async () => {
  const { child, pid, dir } = await runHolder('fail-test');
  const code = await exitCode(child);
  assert.notEqual(code, 0, 'the inner test failed');
  assert.ok(await gone(pid, dir, 5000), 'server and dir gone after the failing test');
});

test('an uncaught exception or SIGKILL of the owner leaves no server or dir', async () => {
  const crashed = await runHolder('throw');
  await exitCode(crashed.child);
  assert.ok(await gone(crashed.pid, crashed.dir, 5000), 'gone after a crash');

  const killed = await runHolder('hang');
  assert.ok(alive(killed.pid));
  killed.child.kill('SIGKILL');
  assert.ok(await gone(killed.pid, killed.dir, 5000), 'gone after SIGKILL');
});

test('a missing nats-server is a typed error that says how to install it', () => {
  assert.throws(
    () => findNatsServer({ PATH: '/nonexistent' }),
    (err: unknown) =>
      err instanceof NatsServerNotFound &&
      err.code === 'NATS_SERVER_NOT_FOUND' &&
      /apt-get install -y nats-server/.test(err.message),
  );
  assert.throws(() => findNatsServer({ STITCH_NATS_SERVER: tmpdir() }), NatsServerNotFound);
});

test('a dir left by a server that died with its watchdog is swept at the next start', async () => {
  const stale = mkdtempSync(join(tmpdir(), 'stitch-nats-'));
  // pid 2^22 + 1 is above Linux's pid_max ceiling, so no process can have it.
  writeFileSync(join(stale, 'nats.pid'), String(2 ** 22 + 1));
  const live = await startEmbeddedNats();
  try {
    assert.equal(existsSync(stale), false, 'the stale dir is removed');
    assert.equal(existsSync(live.dir), true, 'the new server keeps its own dir');
  } finally {
    await live.stop();
  }
});

test('Ctrl-C (SIGINT to the whole process group) stops the server and still removes its dir', async () => {
  // Its own process group, as a terminal's foreground job is: Ctrl-C signals every process in it.
  const holder = await runHolder('hang', { detached: true });
  const pgid = holder.child.pid!;
  try {
    assert.ok(alive(holder.pid));
    // The owner (node), the watchdog shell, its pipe reader and the server all share the group.
    assert.ok(groupMembers(pgid).includes(holder.pid), 'the server runs in the holder’s group');
    process.kill(-pgid, 'SIGINT');
    assert.ok(await gone(holder.pid, holder.dir, 5000), 'server gone and dir removed after Ctrl-C');
    await waitUntil(() => groupMembers(pgid).length === 0, 5000).catch(() => undefined);
    assert.deepEqual(groupMembers(pgid), [], 'no process of the group remains');
  } finally {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Already all gone.
    }
    rmSync(holder.dir, { recursive: true, force: true });
  }
});

test('a server that ignores SIGTERM is SIGKILLed by the escalation, by stop() and after its owner died', async () => {
  const stuck = termIgnoringServer();
  const pids: number[] = [];
  const dirs: string[] = [];
  try {
    // stop(): the owner lives and waits.
    const nats = await startEmbeddedNats({ serverPath: stuck.path, jetstream: false });
    pids.push(nats.pid);
    dirs.push(nats.dir);
    // The owner is SIGKILLed: only the watchdog is left to escalate.
    const killed = await runHolder('hang', { env: { STITCH_NATS_SERVER: stuck.path } });
    pids.push(killed.pid);
    dirs.push(killed.dir);
    assert.ok(alive(nats.pid) && alive(killed.pid));
    killed.child.kill('SIGKILL');
    await nats.stop();
    assert.equal(alive(nats.pid), false, 'stop() returns only once the server is gone');
    assert.equal(existsSync(nats.dir), false, 'its dir is removed');
    assert.ok(await gone(killed.pid, killed.dir, 10_000), 'gone after the owner was SIGKILLed');
  } finally {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone, as it should be.
      }
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    stuck.remove();
  }
});

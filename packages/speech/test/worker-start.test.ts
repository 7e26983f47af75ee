// The recogniser's worker start is bounded: a worker that never says "ready" is killed at the start
// timeout with a typed error, and close() during a start kills it at once instead of waiting.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { running } from '../../../test/fixtures/pids.js';
import { WORKER_ENV } from '../src/build-worker.js';
import { PocketsphinxRecognizer, SpeechError } from '../src/index.js';

const home = mkdtempSync(join(tmpdir(), 'stitch-stt-start-test-'));
// The model files need only exist: the stand-in worker never reads them.
const modelDir = join(home, 'model');
mkdirSync(join(modelDir, 'en-us'), { recursive: true });
writeFileSync(join(modelDir, 'en-us.lm.bin'), '');
writeFileSync(join(modelDir, 'cmudict-en-us.dict'), '');
/** A worker hung while loading its model: it records its pid and sleeps, never saying "ready". */
const pidFile = join(home, 'worker.pid');
const worker = join(home, 'hung-worker');
writeFileSync(worker, `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 600\n`);
chmodSync(worker, 0o755);

const savedEnv = process.env[WORKER_ENV];
process.env[WORKER_ENV] = worker;
const pids = new Set<number>();
after(() => {
  if (savedEnv === undefined) delete process.env[WORKER_ENV];
  else process.env[WORKER_ENV] = savedEnv;
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone, as it should be.
    }
  }
  rmSync(home, { recursive: true, force: true });
});

/** The pid the stand-in worker wrote, once it has; bounded. */
async function workerPid(): Promise<number> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      const m = /^(\d+)\n/.exec(readFileSync(pidFile, 'utf8'));
      if (m) {
        pids.add(Number(m[1]));
        return Number(m[1]);
      }
    } catch {
      // Not written yet.
    }
    await sleep(20);
  }
  assert.fail('the worker wrote no pid');
}

async function gone(pid: number, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (!running(pid)) return true;
    await sleep(20);
  }
  return false;
}

/** What `p` settles to (the error, for a rejection), or a string saying it has not within `ms`. */
function settled(p: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([
    p.then(
      () => 'resolved',
      (e: unknown) => e,
    ),
    sleep(ms, `not settled within ${ms} ms`, { ref: false }),
  ]);
}

/** Ends what a test started whatever happened in it: the worker, then the recogniser. */
async function cleanUp(stt: PocketsphinxRecognizer): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone, as it should be.
    }
  }
  await settled(stt.close(), 5000);
}

test('a worker that never says ready is killed at the start timeout, with a typed error', async () => {
  rmSync(pidFile, { force: true });
  const stt = new PocketsphinxRecognizer({ modelDir, startTimeoutMs: 300 });
  try {
    const warming = stt.warm();
    const pid = await workerPid();
    const e = await settled(warming, 10_000);
    assert.ok(e instanceof SpeechError, `a SpeechError, not ${String(e)}`);
    assert.equal(e.code, 'SPEECH_WORKER_UNAVAILABLE');
    assert.match(e.message, /ready/);
    assert.ok(await gone(pid, 5000), 'the hung worker is killed');
    assert.equal(await settled(stt.close(), 5000), 'resolved', 'close() returns');
  } finally {
    await cleanUp(stt);
  }
});

test('close() during a hung start kills the worker at once and fails the start as closed', async () => {
  rmSync(pidFile, { force: true });
  // The start timeout is far away: close() must not wait for it.
  const stt = new PocketsphinxRecognizer({ modelDir, startTimeoutMs: 60_000 });
  try {
    const started = settled(stt.warm(), 10_000);
    const pid = await workerPid();
    assert.equal(await settled(stt.close(), 5000), 'resolved', 'close() returns');
    assert.ok(await gone(pid, 5000), 'the worker is killed');
    const e = await started;
    assert.ok(e instanceof SpeechError, `a SpeechError, not ${String(e)}`);
    assert.equal(e.code, 'SPEECH_CLOSED');
  } finally {
    await cleanUp(stt);
  }
});

test('warm() after close() starts no worker', async () => {
  rmSync(pidFile, { force: true });
  const stt = new PocketsphinxRecognizer({ modelDir, startTimeoutMs: 60_000 });
  try {
    await stt.close();
    const e = await settled(stt.warm(), 5000);
    assert.ok(e instanceof SpeechError, `a SpeechError, not ${String(e)}`);
    assert.equal(e.code, 'SPEECH_CLOSED');
    await sleep(200);
    assert.throws(() => readFileSync(pidFile), /ENOENT/, 'no worker was started');
  } finally {
    await cleanUp(stt);
  }
});

// A compile tool never outlives its bound: on timeout its whole process group goes (clang's `ld`
// included), and a parent SIGKILLed mid-run does not leave it running past the bound.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { running } from '../../../test/fixtures/pids.js';
import { CompileFailed, ToolchainMissing } from '../src/errors.js';
import { runTool } from '../src/toolchain.js';

const home = mkdtempSync(join(tmpdir(), 'stitch-toolchain-test-'));
/** Every pid a test saw; all SIGKILLed at the end whatever happened. */
const seen = new Set<number>();
after(() => {
  for (const pid of seen) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone, as it should be.
    }
  }
  rmSync(home, { recursive: true, force: true });
});

/** A tool that hangs: it starts a child (as clang starts `ld`), writes `pid childPid` to $1, waits. */
const hanging = join(home, 'hanging-tool');
writeFileSync(hanging, '#!/bin/sh\nsleep 600 &\necho "$$ $!" > "$1"\nwait\n');
chmodSync(hanging, 0o755);

/** The process group of `pid`, from /proc. */
function pgidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

/** Pids of the live processes in group `pgid`. */
function groupMembers(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => {
      try {
        return running(pid) && pgidOf(pid) === pgid;
      } catch {
        return false;
      }
    });
}

/** The two pids the hanging tool wrote to `file`, once it has; bounded. */
async function toolPids(file: string): Promise<[number, number]> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      const m = /^(\d+) (\d+)\n/.exec(readFileSync(file, 'utf8'));
      if (m) {
        const pids: [number, number] = [Number(m[1]), Number(m[2])];
        for (const p of pids) seen.add(p);
        return pids;
      }
    } catch {
      // Not written yet.
    }
    await sleep(20);
  }
  assert.fail(`the tool wrote no pids to ${file}`);
}

async function allGone(pids: number[], withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (!pids.some(running)) return true;
    await sleep(50);
  }
  return false;
}

test('a tool that hangs is killed at its timeout together with the child it started', async () => {
  const file = join(home, 'timeout.pids');
  const run = runTool(hanging, [file], '', 'hanging-tool', 'k', undefined, 500);
  const outcome = run.then(
    () => 'resolved',
    (e: unknown) => e,
  );
  const [tool, child] = await toolPids(file);
  const pgid = pgidOf(tool);
  const settled = await Promise.race([outcome, sleep(10_000, 'not settled within 10 s', { ref: false })]);
  assert.ok(settled instanceof CompileFailed, `a CompileFailed, not ${String(settled)}`);
  assert.match(settled.message, /killed after 500 ms/);
  assert.ok(await allGone([tool, child], 5000), 'the tool and its child are gone');
  assert.notEqual(pgid, process.pid, 'the tool ran in a process group of its own');
  assert.deepEqual(groupMembers(pgid), [], 'nothing of its group remains');
});

/** A node process running `script` (outside the test runner's context), as a node runs a compile. */
function parentRunning(script: string) {
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const parent = spawn(
    process.execPath,
    ['--import', '@stitch/typescript-loader', '--input-type=module', '-e', script],
    { stdio: 'ignore', env },
  );
  seen.add(parent.pid!);
  return parent;
}

test("a parent SIGKILLed mid-run does not leave the tool running past the tool's bound", async () => {
  const file = join(home, 'orphan.pids');
  const src = new URL('../src/toolchain.ts', import.meta.url).href;
  const script = `import { runTool } from '${src}';
    await runTool(${JSON.stringify(hanging)}, [${JSON.stringify(file)}], '', 'hanging-tool', 'k', undefined, 1000);`;
  const parent = parentRunning(script);
  try {
    const [tool, child] = await toolPids(file);
    parent.kill('SIGKILL');
    // The bound is 1 s from the tool's start (the parent's timer, with a backstop that outlives it).
    assert.ok(await allGone([tool, child], 10_000), 'the tool and its child are gone after the bound');
  } finally {
    parent.kill('SIGKILL');
  }
});

test('a parent that exits mid-run (process.exit) takes the running tool with it', async () => {
  const file = join(home, 'exit.pids');
  const src = new URL('../src/toolchain.ts', import.meta.url).href;
  const script = `import { readFileSync } from 'node:fs';
    import { runTool } from '${src}';
    void runTool(${JSON.stringify(hanging)}, [${JSON.stringify(file)}], '', 'hanging-tool', 'k', undefined, 60_000);
    setInterval(() => {
      try { if (/\\n/.test(readFileSync(${JSON.stringify(file)}, 'utf8'))) process.exit(0); } catch {}
    }, 20);`;
  const parent = parentRunning(script);
  try {
    const [tool, child] = await toolPids(file);
    // Far sooner than the tool's 60 s bound.
    assert.ok(await allGone([tool, child], 5000), 'the tool and its child are gone with their parent');
  } finally {
    parent.kill('SIGKILL');
  }
});

test('a tool that is not installed is TOOLCHAIN_MISSING; one that fails is KERNEL_COMPILE with its stderr', async () => {
  await assert.rejects(
    runTool(join(home, 'no-such-tool'), [], '', 'no-such-tool', 'k'),
    (e: unknown) => e instanceof ToolchainMissing && /no-such-tool was not found/.test(e.message),
  );
  const failing = join(home, 'failing-tool');
  writeFileSync(failing, '#!/bin/sh\ncat >/dev/null\necho "bad input" >&2\nexit 3\n');
  chmodSync(failing, 0o755);
  await assert.rejects(
    runTool(failing, [], 'x', 'failing-tool', 'k'),
    (e: unknown) => e instanceof CompileFailed && /bad input/.test(e.message),
  );
  const echo = join(home, 'echo-tool');
  writeFileSync(echo, '#!/bin/sh\ncat\n');
  chmodSync(echo, 0o755);
  assert.equal(await runTool(echo, [], 'hello', 'echo-tool', 'k'), 'hello');
});

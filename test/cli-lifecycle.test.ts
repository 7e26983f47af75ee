// Every process a command starts, it stops, and a command that fails exits: `stitch demo` stopped by
// SIGTERM/SIGINT stops its nats-server and nodes and exits non-zero; SIGKILLed, its nodes exit by
// themselves; `stitch node`, `dashboard` and `coordinator` that fail after connecting exit on their
// own instead of hanging on what they had opened.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';
import { alive } from './fixtures/pids.js';
import { waitUntil, within } from './fixtures/wait.js';

const BIN = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const SAMPLE = fileURLToPath(new URL('../packages/ir/samples/tool-agent.tiny-llama.mlir', import.meta.url));
/** How long a process that has nothing left to do may take to exit. */
const EXIT_MS = 20_000;

/** Running and not a zombie (an orphan's zombie lingers until its new parent reaps it). */
function running(pid: number): boolean {
  if (!alive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

interface Cli {
  child: ChildProcess;
  output(): string;
  /** Every pid the command printed as `(pid N` (its nats-server and nodes). */
  pids(): number[];
  waitFor(re: RegExp, ms?: number): Promise<void>;
  /** The exit code (or signal), or a string saying it still ran after `ms`. */
  exit(ms?: number): Promise<number | string | null>;
  /** SIGKILLs it and every pid it printed: for finally, so nothing outlives a failed test. */
  kill(): void;
}

function cli(args: string[], stdin: 'ignore' | 'pipe' = 'ignore'): Cli {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: [stdin, 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const exited = new Promise<number | string | null>((done) =>
    child.once('exit', (code, signal) => done(code ?? signal)),
  );
  const pids = () => [...out.matchAll(/\(pid (\d+)/g)].map((m) => Number(m[1]));
  return {
    child,
    output: () => out,
    pids,
    waitFor: async (re, ms = 60_000) => {
      await waitUntil(() => re.test(out) || child.exitCode !== null || child.signalCode !== null, ms).catch(
        () => undefined,
      );
      assert.match(out, re);
    },
    exit: (ms = EXIT_MS) => within(exited, ms, `still running after ${ms} ms`),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      for (const pid of pids()) if (alive(pid)) process.kill(pid, 'SIGKILL');
    },
  };
}

/** The demo's nats-server and its three nodes, once all three nodes have joined. */
async function demoUp(demo: Cli): Promise<number[]> {
  await demo.waitFor(/(\[node-\S+\] node node-\S+ joined[\s\S]*){3}/);
  const pids = demo.pids();
  assert.equal(pids.length, 4, demo.output());
  for (const pid of pids) assert.ok(running(pid), `pid ${pid} is not running:\n${demo.output()}`);
  return pids;
}

async function allGone(pids: number[], out: () => string): Promise<void> {
  await waitUntil(() => pids.every((p) => !running(p)), EXIT_MS).catch(() => undefined);
  assert.deepEqual(
    pids.filter((p) => running(p)),
    [],
    `still running ${EXIT_MS} ms after the demo ended:\n${out()}`,
  );
}

test('stitch demo: SIGTERM mid-run stops its nats-server and nodes and exits non-zero', {
  timeout: 90_000,
}, async () => {
  const demo = cli(['demo', '--no-report']);
  try {
    const pids = await demoUp(demo);
    await demo.waitFor(/deploying /); // past start-up: the demo's own work is under way
    demo.child.kill('SIGTERM');
    const code = await demo.exit();
    assert.equal(code, 143, demo.output());
    assert.match(demo.output(), /stitch: demo interrupted by SIGTERM/);
    assert.match(demo.output(), /all processes stopped/);
    await allGone(pids, demo.output);
  } finally {
    demo.kill();
  }
});

test('stitch demo --agent voice: SIGINT during start-up stops what it started and exits non-zero', {
  timeout: 90_000,
}, async () => {
  const demo = cli(['demo', '--agent', 'voice', '--reply', '/dev/null']);
  try {
    const pids = await demoUp(demo);
    demo.child.kill('SIGINT');
    const code = await demo.exit();
    assert.equal(code, 130, demo.output());
    assert.match(demo.output(), /stitch: demo interrupted by SIGINT/);
    assert.match(demo.output(), /all processes stopped/);
    await allGone(pids, demo.output);
  } finally {
    demo.kill();
  }
});

test('stitch demo SIGKILLed: its nodes and nats-server exit by themselves', {
  timeout: 90_000,
}, async () => {
  const demo = cli(['demo', '--no-report']);
  try {
    const pids = await demoUp(demo);
    demo.child.kill('SIGKILL');
    assert.equal(await demo.exit(), 'SIGKILL');
    await allGone(pids, demo.output);
  } finally {
    demo.kill();
  }
});

let nats: EmbeddedNats | undefined;
before(async () => {
  nats = await startEmbeddedNats();
});
after(() => nats?.stop());

test('stitch node that fails after connecting (an unreadable --kernel-key) exits non-zero', {
  timeout: 60_000,
}, async () => {
  const bad = cli([
    'node',
    '--nats',
    nats!.url,
    '--name',
    'lifecycle-node',
    '--no-calibrate',
    '--kernel-key',
    '/nonexistent/publisher.pem',
  ]);
  try {
    const code = await bad.exit();
    assert.equal(typeof code, 'number', bad.output());
    assert.notEqual(code, 0, bad.output());
    assert.match(bad.output(), /could not read the kernel publisher key \/nonexistent\/publisher\.pem/);
  } finally {
    bad.kill();
  }
});

test('stitch node refuses load-shedding flags out of range before it connects', async () => {
  for (const [flag, value, said] of [
    ['--shed-heap', '2', /--shed-heap must be above 0 and at most 1, found "2"/],
    ['--shed-lag-ms', '5', /--shed-lag-ms must be at least 50 \(ms\), found "5"/],
  ] as const) {
    const bad = cli(['node', '--nats', 'nats://127.0.0.1:1', '--no-calibrate', flag, value]);
    try {
      const code = await bad.exit();
      assert.equal(typeof code, 'number', bad.output());
      assert.notEqual(code, 0, bad.output());
      assert.match(bad.output(), said);
    } finally {
      bad.kill();
    }
  }
});

test("a local cluster's stitch node (--stop-when-stdin-ends) leaves once its stdin ends", {
  timeout: 60_000,
}, async () => {
  // What the node of a SIGKILLed demo sees: the parent's end of its stdin pipe closes.
  const node = cli(
    ['node', '--nats', nats!.url, '--name', 'lifecycle-stdin', '--no-calibrate', '--stop-when-stdin-ends'],
    'pipe',
  );
  try {
    await node.waitFor(/node \S+ joined cluster "lifecycle-stdin"/);
    node.child.stdin!.end();
    assert.equal(await node.exit(), 0, node.output());
    assert.match(node.output(), /node \S+: stdin ended \(its parent exited\); leaving/);
  } finally {
    node.kill();
  }
});

test('stitch dashboard on a port in use exits non-zero', { timeout: 60_000 }, async () => {
  const busy: Server = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = (busy.address() as { port: number }).port;
  const dashboard = cli([
    'dashboard',
    '--nats',
    nats!.url,
    '--name',
    'lifecycle-dash',
    '--port',
    String(port),
  ]);
  try {
    const code = await dashboard.exit();
    assert.equal(typeof code, 'number', dashboard.output());
    assert.notEqual(code, 0, dashboard.output());
    assert.match(dashboard.output(), /EADDRINUSE/);
  } finally {
    dashboard.kill();
    busy.close();
  }
});

test('stitch coordinator --policy rebalance whose --deploy fails exits non-zero', {
  timeout: 60_000,
}, async () => {
  // No node hosts operator actors in this cluster: the deploy fails.
  const coord = cli([
    'coordinator',
    '--nats',
    nats!.url,
    '--name',
    'lifecycle-coord',
    '--policy',
    'rebalance',
    '--deploy',
    SAMPLE,
  ]);
  try {
    const code = await coord.exit();
    assert.equal(typeof code, 'number', coord.output());
    assert.notEqual(code, 0, coord.output());
    assert.match(coord.output(), /DEPLOY_NO_NODES/);
  } finally {
    coord.kill();
  }
});

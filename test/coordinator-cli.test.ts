// `stitch coordinator --deploy` as an operator runs it beside a `stitch node`: it places the graph on
// the live node, prints the placement, and exits 0 on SIGTERM.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { GraphRunner, loadDeployment } from '@stitch/agents';
import { connectCluster, type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';

const BIN = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const ACTORS = fileURLToPath(new URL('../packages/agents/dist/actors.js', import.meta.url));
const SAMPLE = fileURLToPath(new URL('../packages/ir/samples/tool-agent.tiny-llama.mlir', import.meta.url));
const children: ChildProcess[] = [];
let nats: EmbeddedNats | undefined;

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await nats?.stop();
});

function start(args: string[]): {
  child: ChildProcess;
  output: () => string;
  waitFor: (re: RegExp) => Promise<void>;
} {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  const waiters: (() => void)[] = [];
  const onData = (b: Buffer) => {
    out += b.toString();
    for (const w of waiters.splice(0)) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const waitFor = (re: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new assert.AssertionError({ message: `no ${re} in:\n${out}` })),
        60_000,
      );
      const check = () => {
        if (re.test(out)) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  return { child, output: () => out, waitFor };
}

/** Runs `stitch args` to its end: its exit code and what it wrote (stdout, then stderr). */
async function run(args: string[]): Promise<{ code: number | null; out: string }> {
  const { child, output } = start(args);
  // 'close', not 'exit': the pipes may still hold output when the process has exited.
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, out: output() };
}

const exit = (c: ChildProcess) =>
  new Promise<number | null>((done) =>
    c.exitCode !== null ? done(c.exitCode) : c.once('exit', (code) => done(code)),
  );

test('stitch coordinator places a graph on a live node and stops cleanly', { timeout: 120_000 }, async () => {
  nats = await startEmbeddedNats();
  const common = ['--nats', nats.url, '--name', 'coordcli'];
  const node = start(['node', ...common, '--id', 'n1', '--no-calibrate', '--actors', ACTORS]);
  await node.waitFor(/node n1 joined/);
  const coord = start(['coordinator', ...common, '--deploy', SAMPLE]);
  await coord.waitFor(/deployed tool_agent .* by (milp|heuristic)/);
  await coord.waitFor(/agent\.output#10\s+agent\.output\s+cpu\s+n1/);
  assert.match(coord.output(), /llm\.prefill\s+cpu\s+n1/);
  // A client in a third process finds the deployment in KV and runs a request through the node.
  const client = await connectCluster({ nats: nats.url, name: 'coordcli', log: () => undefined });
  try {
    const d = await loadDeployment(client, 'tool_agent');
    assert.ok(d, 'the deployment record is in KV');
    const r = await new GraphRunner(client).run(d, 'cli-1', { query: 'q', expr: '40+2', search: 'MLIR' });
    assert.deepEqual((r.answer as { calc?: unknown }).calc, { expr: '40+2', value: 42 });
    assert.equal((r.answer as { found?: unknown }).found, 'MLIR');
  } finally {
    await client.close();
  }
  // `stitch status` reads the same cluster from a fourth process: the node, where each op runs, the
  // coordinator that leads.
  const status = await run(['status', ...common]);
  assert.equal(status.code, 0, status.out);
  assert.match(status.out, /cluster "coordcli" at .*: 2 node\(s\), 1 deployment\(s\)/);
  assert.match(status.out, /^coordinator main: leads \(epoch \d+\)/m);
  assert.match(status.out, /^n1\s+cpu\s+healthy\s+\d+/m);
  assert.match(status.out, /^deployment tool_agent: SLA \d+ ms, planned/m);
  assert.match(status.out, /^ {2}agent\.output#10\s+agent\s+cpu\s+n1\s+-/m);
  const listed = await run(['status', ...common, '--actors']);
  assert.equal(listed.code, 0, listed.out);
  assert.match(listed.out, /^actors on n1 \(\d+\):$/m);
  assert.match(listed.out, /^ {2}op-\w+\s+tool_agent-\w+\s+running\s+\d+/m);
  assert.match(listed.out, /^ {2}stitch-coordinator\s+main\s+running/m);
  const json = await run(['status', ...common, '--json']);
  assert.equal(json.code, 0, json.out);
  const state = JSON.parse(json.out) as {
    nodes: { id: string; shedding: boolean; draining: boolean }[];
    deployments: { name: string; ops: { node: string; mailbox: { processed: number } | null }[] }[];
    coordinator: { ok: boolean };
  };
  assert.ok(state.coordinator.ok);
  assert.ok(state.nodes.some((n) => n.id === 'n1' && n.shedding === false));
  assert.deepEqual(
    state.deployments.map((d) => d.name),
    ['tool_agent'],
  );
  assert.ok(state.deployments[0]!.ops.every((o) => o.node === 'n1' && (o.mailbox?.processed ?? 0) >= 1));
  // No server to read: a one-line error, exit 1.
  const refused = await run(['status', '--nats', 'nats://127.0.0.1:1', '--name', 'coordcli']);
  assert.equal(refused.code, 1, refused.out);
  assert.match(refused.out, /^stitch: .+\n$/);
  // `stitch drain n1` before maintenance: the coordinator moves every operator to n2 live, n1 keeps
  // running, draining, and the graph still answers.
  const second = start(['node', ...common, '--id', 'n2', '--no-calibrate', '--actors', ACTORS]);
  await second.waitFor(/node n2 joined/);
  const drained = await run(['drain', 'n1', ...common, '--timeout-ms', '60000']);
  assert.equal(drained.code, 0, drained.out);
  assert.match(drained.out, /^node n1 drained in \d+ ms: no actor left on it/);
  const after = JSON.parse((await run(['status', ...common, '--json'])).out) as typeof state;
  assert.ok(after.nodes.some((n) => n.id === 'n1' && n.draining));
  assert.ok(
    after.deployments[0]!.ops.every((o) => o.node === 'n2'),
    JSON.stringify(after.deployments),
  );
  const again = await connectCluster({ nats: nats.url, name: 'coordcli', log: () => undefined });
  try {
    const d = await loadDeployment(again, 'tool_agent');
    const r = await new GraphRunner(again).run(d!, 'cli-2', { query: 'q', expr: '1+2', search: 'MLIR' });
    assert.deepEqual((r.answer as { calc?: unknown }).calc, { expr: '1+2', value: 3 });
  } finally {
    await again.close();
  }
  // Back from maintenance: n1 takes actors again (what moved off it stays on n2).
  const undrained = await run(['undrain', 'n1', ...common]);
  assert.equal(undrained.code, 0, undrained.out);
  assert.match(undrained.out, /^node n1 takes new actors again$/m);
  const back = JSON.parse((await run(['status', ...common, '--json'])).out) as typeof state;
  assert.ok(back.nodes.some((n) => n.id === 'n1' && !n.draining));
  assert.match((await run(['undrain', 'n1', ...common])).out, /^node n1 was not draining/m);
  const bad = await run(['drain', 'n1', ...common, '--timeout-ms', '0']);
  assert.equal(bad.code, 1, bad.out);
  assert.match(bad.out, /--timeout-ms.*expected an integer ≥ 1/);
  coord.child.kill('SIGTERM');
  node.child.kill('SIGTERM');
  second.child.kill('SIGTERM');
  assert.equal(await exit(coord.child), 0, coord.output());
  assert.equal(await exit(node.child), 0, node.output());
  assert.equal(await exit(second.child), 0, second.output());
});

// The namespace harness itself: hosts reach each other, a cut host is unreachable until healed, the
// impairment proxy keeps a stream's bytes in order while delaying them, and nothing outlives a run,
// not even one whose process was killed.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { skipWithoutHosts } from './fixtures/hosts/available.js';
import { type Impairment, nextRelease } from './fixtures/hosts/impairment.js';
import { type HostProcess, Hosts, sweepLeftovers } from './fixtures/hosts/netns.js';
import { alive } from './fixtures/pids.js';

const skip = skipWithoutHosts();
const PROXY = fileURLToPath(new URL('./fixtures/hosts/proxy-process.ts', import.meta.url));

// An echo server on port 7000 of its host; prints `listening`.
const ECHO = `require('net').createServer((s) => s.pipe(s)).listen(7000, process.argv[1], () => console.log('listening'))`;
// Connects to argv[1]:argv[2], sends argv[3] bytes, prints `ok <ms>` once they all came back, or `error <code>`.
const CLIENT = `
const [host, port, n] = process.argv.slice(1);
const data = Buffer.alloc(Number(n), 0).map((_, i) => i % 251);
const t0 = Date.now();
const s = require('net').connect({ host, port: Number(port), timeout: 1500 });
let got = Buffer.alloc(0);
s.on('connect', () => s.write(data));
s.on('data', (b) => { got = Buffer.concat([got, b]); if (got.length >= data.length) { console.log(got.equals(data) ? 'ok ' + (Date.now() - t0) : 'corrupt'); s.destroy(); } });
s.on('timeout', () => { console.log('error timeout'); s.destroy(); });
s.on('error', (e) => console.log('error ' + e.code));
`;

async function lineOf(p: HostProcess, ms = 10_000): Promise<string> {
  const end = Date.now() + ms;
  while (!p.output().stdout.includes('\n')) {
    if (Date.now() > end) throw new Error(`no output in ${ms} ms: ${p.output().stderr}`);
    await delay(20);
  }
  return p.output().stdout.split('\n')[0]!;
}

async function roundTrip(
  hosts: Hosts,
  from: string,
  to: string,
  port: number,
  bytes = 1000,
): Promise<string> {
  const p = hosts.spawn(from, process.execPath, [
    '-e',
    CLIENT,
    hosts.host(to).ip,
    String(port),
    String(bytes),
  ]);
  const line = await lineOf(p);
  await p.exited;
  return line;
}

describe('namespace hosts', { skip }, () => {
  const all: Hosts[] = [];
  after(async () => {
    for (const h of all) await h.close();
  });

  test('hosts reach each other; a cut host is unreachable until healed, both ways of cutting', async () => {
    const hosts = new Hosts(['a', 'b']);
    all.push(hosts);
    const echo = hosts.spawn('b', process.execPath, ['-e', ECHO, hosts.host('b').ip]);
    assert.equal(await lineOf(echo), 'listening');
    assert.match(await roundTrip(hosts, 'a', 'b', 7000), /^ok /);
    for (const how of ['drop', 'link'] as const) {
      hosts.cut('b', how);
      assert.match(await roundTrip(hosts, 'a', 'b', 7000), /^error /, `cut by ${how}`);
      hosts.heal('b');
      assert.match(await roundTrip(hosts, 'a', 'b', 7000), /^ok /, `healed after ${how}`);
    }
    await hosts.close();
    assert.deepEqual(hosts.remaining(), []);
    assert.equal(alive(echo.child.pid!), false);
  });

  test('the proxy delays every chunk by at least the delay less the jitter and keeps bytes in order', async () => {
    const hosts = new Hosts(['a', 'b']);
    all.push(hosts);
    const b = hosts.host('b').ip;
    const echo = hosts.spawn('b', process.execPath, ['-e', ECHO, b]);
    await lineOf(echo);
    const routes = [{ listen: `${b}:7001`, target: `${b}:7000` }];
    const proxy = hosts.spawn('b', process.execPath, [
      '--import',
      '@stitch/typescript-loader',
      PROXY,
      JSON.stringify(routes),
    ]);
    assert.equal(await lineOf(proxy), 'ready');
    proxy.child.stdin!.write(`${JSON.stringify({ delayMs: 60, jitterMs: 20, loss: 0.2 })}\n`);
    while (!proxy.output().stdout.includes('set ')) await delay(10);
    // 200 kB in many chunks, each held 40-80 ms (some 200 ms more): echoed back intact and in order.
    const line = await roundTrip(hosts, 'a', 'b', 7001, 200_000);
    const [verdict, ms] = line.split(' ');
    assert.equal(verdict, 'ok', line);
    // Through the proxy both ways: never sooner than twice the smallest delay.
    assert.ok(Number(ms) >= 2 * 40, `round trip ${ms} ms`);
  });

  test('a run killed with SIGKILL leaves hosts that the next run sweeps away', async () => {
    const script = `
      import { Hosts } from ${JSON.stringify(new URL('./fixtures/hosts/netns.ts', import.meta.url).href)};
      const h = new Hosts(['x']);
      h.spawn('x', 'sleep', ['600']);
      console.log(JSON.stringify({ ns: h.host('x').ns }));
      setInterval(() => {}, 1000);`;
    const child = spawn(
      process.execPath,
      ['--import', '@stitch/typescript-loader', '--input-type=module', '-e', script],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const ns = await new Promise<string>((resolve) =>
      child.stdout.once('data', (b: Buffer) => resolve((JSON.parse(b.toString()) as { ns: string }).ns)),
    );
    const listed = () => spawnText('ip', ['netns', 'list']).includes(ns);
    assert.ok(listed(), `${ns} exists while its run lives`);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(listed(), 'SIGKILL gives the run no chance to clean up');
    sweepLeftovers();
    assert.equal(listed(), false);
  });
});

test('nextRelease keeps order and adds delay, jitter and retransmissions within bounds', () => {
  const imp: Impairment = { delayMs: 100, jitterMs: 20, loss: 0.5, rtoMs: 200 };
  let last = 0;
  for (let i = 0; i < 1000; i++) {
    const now = i * 3;
    const u1 = (i * 0.618) % 1;
    const u2 = (i * 0.382) % 1;
    const at = nextRelease(now, last, imp, u1, u2);
    assert.ok(at >= last, 'never before the previous chunk');
    assert.ok(at >= now + 80, 'at least delay - jitter');
    assert.ok(
      at <= Math.max(last, now + 120 + 200),
      'at most delay + jitter + one RTO, unless held by order',
    );
    last = at;
  }
  assert.equal(nextRelease(5, 0, { delayMs: 0, jitterMs: 0, loss: 0, rtoMs: 200 }, 0.3, 0.9), 5);
});

function spawnText(cmd: string, args: string[]): string {
  return spawnSync(cmd, args, { encoding: 'utf8' }).stdout ?? '';
}

// `stitch demo` as a user runs it: a child process that must finish with exit 0, print the placement
// table and matching counts, and leave no nats-server or node process behind.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeWav, durationS, wordErrorRate } from '@stitch/speech';
import { alive } from './fixtures/pids.js';

const BIN = new URL('../packages/cli/dist/bin.js', import.meta.url).pathname;

/** Runs `stitch demo` with `args`; returns its output after asserting exit 0 and that nothing it started survives. */
async function runDemo(args: string[]): Promise<string> {
  const child = spawn(process.execPath, [BIN, 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const pids = () => [...out.matchAll(/\(pid (\d+)/g)].map((m) => Number(m[1]));
  try {
    const code = await new Promise<number | null>((done) => child.once('exit', (c) => done(c)));
    assert.equal(code, 0, out);
    const stopped = /all processes stopped \(nats-server pid (\d+), nodes ([\d, ]+)\)/.exec(out);
    assert.ok(stopped, out);
    const all = [Number(stopped[1]), ...stopped[2]!.split(',').map((s) => Number(s.trim()))];
    assert.equal(all.length, 4);
    for (const pid of all) assert.equal(alive(pid), false, `pid ${pid} still runs after the demo`);
    return out;
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    for (const pid of pids()) if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
}

test('stitch demo refuses a request count or leave point that is not an integer, before starting anything', () => {
  for (const args of [
    ['--requests', 'abc'],
    ['--requests', '1'],
    ['--leave-after', '2.5'],
  ]) {
    const r = spawnSync(process.execPath, [BIN, 'demo', ...args], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(`option '${args[0]} <n>' argument '${args[1]}' is invalid\\. expected an integer`),
    );
    assert.doesNotMatch(r.stdout, /nats-server/);
  }
});

test('stitch demo runs the whole system end to end and cleans up', { timeout: 150_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stitch-demo-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = await runDemo(['--requests', '12', '--leave-after', '7', '--report', join(dir, 'report.html')]);
  // Placement table: a header and one row per granular op, modelled devices labelled as such.
  assert.match(out, /op\s+kind\s+device\s+timing\s+node\s+est\. ms\s+\$\/request/);
  for (const op of [
    'llm.tokenize',
    'llm.prefill',
    'kv.transfer',
    'llm.decode',
    'llm.detokenize',
    'tool.invoke',
  ])
    assert.match(out, new RegExp(`\\s${op.replace('.', '\\.')}\\s`), op);
  assert.match(out, /virtual:\S+\s+modelled/);
  assert.match(out, /synthetic weights/);
  assert.match(out, /requests: 12 sent, 12 completed, 0 failed/);
  const ops = /counts: (\d+) operators each applied 12 requests; answers bucket holds 12 stored answers/.exec(
    out,
  );
  assert.ok(ops && Number(ops[1]) >= 10, out);
  assert.match(out, /\n0 lost, 0 duplicated\n/);
  // The SIGTERMed node drains: its operators move off it live (or, when no move came in time, it
  // leaves and they restart elsewhere).
  assert.match(out, /migration \(node node-\S+ (is draining|left)/);
  assert.match(out, /latency p50 [\d.]+ ms, p99 [\d.]+ ms/);
  // Every node, the one that left included, drained and exited by itself.
  assert.match(out, /nodes ended: node-\S+ exit 0, node-\S+ exit 0, node-\S+ exit 0\n/);
  // The report it names holds the four plots, the node it stopped and the migration that followed.
  const path = /\nreport: (.+)\n/.exec(out)?.[1];
  assert.equal(path, join(dir, 'report.html'), out);
  const html = readFileSync(path, 'utf8');
  for (const id of ['latency-over-time', 'placement', 'cost-by-operator', 'sla-attainment'])
    assert.match(html, new RegExp(`<figure id="${id}">\n<svg `), id);
  assert.match(html, />SIGTERM node-\S+ \(before r007\)</);
  assert.match(html, />migration 1 \((before|after) r0\d\d\)</);
  assert.match(html, /\(moved\)</);
  assert.match(html, /12 requests sent, 12 completed, 0 failed/);
});

test('stitch demo --kill: a node killed mid-run loses nothing with durable asks', {
  timeout: 150_000,
}, async () => {
  const out = await runDemo(['--kill', '--requests', '10', '--leave-after', '6', '--no-report']);
  assert.doesNotMatch(out, /\nreport: /);
  assert.match(out, />>> SIGKILL node-/);
  assert.equal([...out.matchAll(/node-\S+ exit 0/g)].length, 2, out);
  assert.match(out, /migration \(node node-\S+ died/);
  assert.match(out, /requests: 10 sent, 10 completed, 0 failed/);
  assert.match(out, /counts: \d+ operators each applied 10 requests; answers bucket holds 10 stored answers/);
  assert.match(out, /\n0 lost, 0 duplicated\n/);
});

test('stitch demo --agent voice: speech in, through every operator, speech out', {
  timeout: 150_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stitch-voice-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const reply = join(dir, 'reply.wav');
  const out = await runDemo(['--agent', 'voice', '--reply', reply]);
  // The input is espeak-ng speech; pocketsphinx's transcript of it is poor but recognisably the question.
  const said = /input: espeak-ng says "([^"]+)"/.exec(out)?.[1];
  const heard = /transcript \(pocketsphinx\): "([^"]*)"/.exec(out)?.[1];
  assert.ok(said && heard !== undefined, out);
  const wer = wordErrorRate([{ reference: said, hypothesis: heard }]);
  assert.ok(wer <= 0.7, `WER ${wer}: "${said}" heard as "${heard}"`);
  // The caller id the request carried never reaches the model unredacted.
  assert.match(out, /redactions: .*caller: phone/);
  // Every operator of the sample graph ran, each with its device and whether its time is modelled.
  for (const op of ['text.stt', 'text.privacy_filter', 'llm.decode', 'tool.invoke', 'text.tts'])
    assert.match(
      out,
      new RegExp(
        `\\s${op.replace('.', '\\.')}\\s+\\S+\\s+(measured|modelled)\\s+node-\\S+\\s+[\\d.]+\\s+[\\d.]+`,
      ),
      op,
    );
  assert.match(out, /voice request: \d+ ms end to end/);
  // The answer is speech: a 16 kHz WAV that is not silence, long enough for its text, which is beside it.
  const text = readFileSync(`${reply}.txt`, 'utf8');
  assert.match(text, new RegExp(`^You asked: ${heard}\\.`));
  const pcm = decodeWav(readFileSync(reply));
  assert.equal(pcm.sampleRate, 16_000);
  assert.ok(durationS(pcm) > text.split(' ').length * 0.15, `${durationS(pcm)} s for "${text}"`);
  const rms = Math.sqrt(pcm.samples.reduce((s, x) => s + x * x, 0) / pcm.samples.length);
  assert.ok(rms > 300, `rms ${rms}`);
});

// `stitch serve` and `stitch dashboard` as a user runs them: with no --nats each starts the local
// cluster with the sample graph, answers over HTTP, stops on SIGTERM with exit 0 and leaves no
// process behind; a server bound beyond loopback without a key is refused before anything starts.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { test } from 'node:test';
import { freePort } from '../packages/telemetry/test/otlp-receiver.js';
import { alive } from './fixtures/pids.js';

const BIN = new URL('../packages/cli/dist/bin.js', import.meta.url).pathname;

/** Starts `stitch <args>`, resolves with the URL it prints (`pattern`), and the output so far. */
function start(args: string[], pattern: RegExp) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { text: '' };
  const url = new Promise<string>((resolve, reject) => {
    const read = (b: Buffer) => {
      output.text += b.toString();
      const m = pattern.exec(output.text);
      if (m) resolve(m[1]!);
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.once('exit', (code) => reject(new Error(`exited ${code} before serving:\n${output.text}`)));
  });
  return { child, output, url };
}

/** SIGTERM, exit 0, and every process it started is gone. */
async function stop(child: ChildProcess, output: { text: string }): Promise<void> {
  const exited = new Promise<number | null>((done) => child.once('exit', (c) => done(c)));
  child.kill('SIGTERM');
  try {
    assert.equal(await exited, 0, output.text);
    const stopped = /all processes stopped \(nats-server pid (\d+), nodes ([\d, ]+)\)/.exec(output.text);
    assert.ok(stopped, output.text);
    for (const pid of [stopped[1]!, ...stopped[2]!.split(',')].map((s) => Number(s.trim())))
      assert.equal(alive(pid), false, `pid ${pid} still runs`);
  } finally {
    for (const m of output.text.matchAll(/\(pid (\d+)/g))
      if (alive(Number(m[1]))) process.kill(Number(m[1]), 'SIGKILL');
  }
}

test('stitch serve answers chat completions on the sample graph, counts them for Prometheus, and stops cleanly', {
  timeout: 150_000,
}, async () => {
  const metricsPort = await freePort();
  const { child, output, url } = start(
    ['serve', '--port', '0', '--metrics-port', String(metricsPort)],
    /serving (http:\/\/\S+)\/v1 /,
  );
  try {
    const base = await url;
    const models = (await (await fetch(`${base}/v1/models`)).json()) as { data: { id: string }[] };
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['tool_agent'],
    );
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'tool_agent',
        messages: [{ role: 'user', content: 'What is JetStream?' }],
        metadata: { expr: '6*7' },
      }),
    });
    assert.equal(res.status, 200);
    // The content is the LLM's text; the graph's whole answer is in the extension field `stitch`.
    const body = (await res.json()) as {
      choices: { message: { content: string } }[];
      stitch: { answer: { calc: { value: number }; llmText: string } };
    };
    assert.equal(body.stitch.answer.calc.value, 42);
    assert.equal(body.choices[0]!.message.content, body.stitch.answer.llmText);
    // The request, counted where it ran: by deployment and outcome, its latency and each op's.
    const metrics = await (await fetch(`http://localhost:${metricsPort}/metrics`)).text();
    assert.match(
      metrics,
      /stitch_requests_total\{deployment="tool_agent",outcome="ok",within_sla="(true|false)"[^}]*\} 1/,
    );
    assert.match(metrics, /stitch_request_ms_count\{deployment="tool_agent"[^}]*\} 1/);
    assert.match(
      metrics,
      /stitch_operator_ask_ms_count\{deployment="tool_agent",op_id="[^"]+",op="llm.decode"[^}]*\} 1/,
    );
  } finally {
    await stop(child, output);
  }
});

test('stitch dashboard serves its page and state on the sample graph', { timeout: 150_000 }, async () => {
  const { child, output, url } = start(['dashboard', '--port', '0'], /dashboard (http:\/\/\S+)\/ /);
  try {
    const base = await url;
    assert.match(await (await fetch(`${base}/`)).text(), /<script type="module" src="\/dashboard.js">/);
    const state = (await (await fetch(`${base}/api/state`)).json()) as {
      nodes: { id: string }[];
      deployments: { name: string }[];
    };
    assert.deepEqual(
      state.nodes.map((n) => n.id),
      ['coordinator', 'node-cpu', 'node-gaudi3', 'node-h100'],
    );
    assert.deepEqual(
      state.deployments.map((d) => d.name),
      ['tool_agent'],
    );
  } finally {
    await stop(child, output);
  }
});

test('a server bound beyond loopback needs an API key, checked before anything starts', async () => {
  for (const command of ['serve', 'dashboard']) {
    const child = spawn(process.execPath, [BIN, command, '--port', '0', '--host', '0.0.0.0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    const code = await new Promise<number | null>((done) => child.once('exit', (c) => done(c)));
    assert.equal(code, 1, err);
    assert.match(err, /--api-key.*\[SERVE_OPTIONS\]/);
    assert.doesNotMatch(err, /nats-server/);
  }
});

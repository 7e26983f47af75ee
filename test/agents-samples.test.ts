// Every sample graph of packages/ir/samples runs on a cluster like the demo's (a real cpu node,
// modelled h100 and gaudi3): one request end to end (speech for the voice agents). Where the graph's
// SLA is beyond this fleet (the 8B and 70B samples: three research rounds of a large model in 2 s),
// the coordinator refuses it as written, naming the fastest placement it found, and the sample is
// deployed again with that time (plus a margin) as its SLA.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { GraphRunner } from '@stitch/agents';
import { EspeakSynthesizer, encodeWav, resample } from '@stitch/speech';
import { type AgentCluster, startAgentCluster, TOOL_AGENT_REQUEST } from './fixtures/operator-nodes.js';

const SAMPLES = new URL('../packages/ir/samples/', import.meta.url);
const files = readdirSync(SAMPLES).filter((f) => f.endsWith('.mlir'));

let agents: AgentCluster;
let speech: Uint8Array;

before(async () => {
  speech = encodeWav(
    resample(await new EspeakSynthesizer().synthesize('how efficient are solar panels'), 16_000),
  );
  agents = await startAgentCluster('samples', [
    ['node-cpu', []],
    ['node-h100', ['h100']],
    ['node-gaudi3', ['gaudi3']],
  ]);
});

after(() => agents?.close());

test('there are tool and voice samples at three sizes', () => {
  assert.equal(files.length, 6, files.join(', '));
});

for (const file of files) {
  test(`${file} deploys and answers a request`, { timeout: 120_000 }, async () => {
    const name = file.replace('.mlir', '').replace(/[^A-Za-z0-9_-]/g, '_');
    const mlir = readFileSync(new URL(file, SAMPLES), 'utf8');
    const d = await agents.coordinator.deploy(mlir, name).catch(async (e: Error & { code?: string }) => {
      const fastest = /the fastest found takes ([\d.]+) ms/.exec(e.message)?.[1];
      assert.ok(e.code === 'DEPLOY_INFEASIBLE' && fastest, e.message);
      const sla = Math.ceil(Number(fastest) * 1.5);
      return agents.coordinator.deploy(mlir.replace(/sla_ms = \d+ : i64/, `sla_ms = ${sla} : i64`), name);
    });
    const voice = file.startsWith('voice');
    const r = await new GraphRunner(agents.client, { timeoutMs: 60_000 }).run(
      d,
      `${name}-1`,
      voice ? { audio: speech, caller: '+44 20 7946 0958' } : TOOL_AGENT_REQUEST,
    );
    const answer = r.answer as {
      llmText?: string;
      transcript?: string;
      speech?: Uint8Array;
      calc?: { value: number };
    };
    assert.equal(Object.keys(r.ops).length, d.ops.length, 'every op ran');
    if (voice) {
      assert.match(answer.transcript ?? '', /solar panels/);
      assert.ok(answer.speech instanceof Uint8Array && answer.speech.byteLength > 16_000);
    } else assert.equal(answer.calc?.value, 4);
    assert.equal(typeof answer.llmText, 'string');
  });
}

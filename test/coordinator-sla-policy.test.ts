// A graph whose SLA no placement on the live nodes meets: a strict one is refused, a best-effort one
// is deployed as fast as the nodes allow, says so in its record and the coordinator's log, and serves.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { AgentsError, GraphRunner, loadDeployment } from '@stitch/agents';
import { startAgentCluster, TOOL_AGENT_REQUEST } from './fixtures/operator-nodes.js';

const sample = readFileSync(
  new URL('../packages/ir/samples/tool-agent.tiny-llama.mlir', import.meta.url),
  'utf8',
);
/** The tool agent with a 10 ms SLA (its tool call alone is modelled slower) under `policy`. */
const tight = (policy: string) => sample.replace('sla_ms = 5000 : i64,', `sla_ms = 10 : i64,${policy}`);

test('a strict graph over its SLA is refused; a best-effort one deploys, logs the miss and serves', {
  timeout: 120_000,
}, async () => {
  const log: string[] = [];
  const agents = await startAgentCluster(
    'slapolicy',
    [
      ['node-cpu', []],
      ['node-h100', ['h100']],
    ],
    { log: (line) => log.push(line) },
  );
  try {
    await assert.rejects(
      agents.coordinator.deploy(tight(''), 'strict'),
      (e) => e instanceof AgentsError && e.code === 'DEPLOY_INFEASIBLE' && /10 ms/.test(e.message),
    );
    assert.deepEqual(agents.coordinator.deployments, []);
    const d = await agents.coordinator.deploy(tight(' sla_policy = "best_effort",'), 'best');
    assert.equal(d.slaMs, 10);
    assert.ok(d.latencyMs > 10, `${d.latencyMs}`);
    const note = d.notes.find((n) => n.startsWith('SLA 10 ms not met'));
    assert.ok(note, d.notes.join('; '));
    assert.ok(log.includes(`best: ${note}`), log.join('\n'));
    assert.deepEqual((await loadDeployment(agents.client, 'best'))?.notes, d.notes);
    const result = await new GraphRunner(agents.client).run(d, 'r1', TOOL_AGENT_REQUEST);
    assert.ok(result.latencyMs > 0);
  } finally {
    await agents.close();
  }
});

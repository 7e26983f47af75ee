// The short variant of `pnpm chaos`: one scenario (a node killed with SIGKILL under durable asks, then
// restarted) with a few hundred requests on three namespace hosts. Every request succeeds, none is
// lost or applied twice, and no process or namespace of the run is left.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runScenario } from './chaos/scenario.js';
import { SCENARIOS } from './chaos/scenarios.js';
import { skipWithoutHosts } from './fixtures/hosts/available.js';
import { alive } from './fixtures/pids.js';

test('chaos, short: kill -9 of a node under durable asks loses and duplicates nothing', {
  skip: skipWithoutHosts(),
}, async () => {
  const scenario = SCENARIOS.find((s) => s.name === 'node-kill')!;
  const r = await runScenario(scenario, {
    requests: 300,
    rate: 50,
    actors: 8,
    faultAfterMs: 1500,
    holdMs: 2000,
    timeoutMs: 2000,
    giveUpMs: 120_000,
  });
  assert.deepEqual(
    { sent: r.sent, succeeded: r.succeeded, failed: r.failed, lost: r.lost, duplicated: r.duplicated },
    { sent: 300, succeeded: 300, failed: 0, lost: 0, duplicated: 0 },
    JSON.stringify(r),
  );
  assert.deepEqual(r.left.names, [], 'no namespace or link of the run is left');
  assert.ok(r.left.pids.length >= 7, `servers, nodes, the restarted node and the client: ${r.left.pids}`);
  assert.deepEqual(r.left.pids.filter(alive), [], 'no process of the run is left');
});

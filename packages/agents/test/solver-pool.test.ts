// The solver pool runs analyses and plans on worker threads: results and typed errors come back as
// the same values and classes a direct call gives, and an aborted solve is dropped.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { IrError } from '@stitch/ir';
import { AgentsError, analyseGraph } from '../src/index.js';
import { SolverPool } from '../src/solver-pool.js';

const sample = readFileSync(new URL('../../ir/samples/tool-agent.tiny-llama.mlir', import.meta.url), 'utf8');
const pool = new SolverPool();
after(() => pool.close());

const cpuNode = { nodeId: 'a', classId: 'cpu', modelled: false, load: 0, slots: 1 };

test('an analysis on a worker equals the direct one', async () => {
  assert.deepEqual(await pool.analyse(sample), analyseGraph(sample));
});

test('a plan comes back with every op placed on the live node', async () => {
  const analysed = await pool.analyse(sample);
  const plan = await pool.plan({ deployment: 'd', analysed, nodes: [cpuNode] });
  assert.equal(plan.ops.length, analysed.rows.length);
  for (const op of plan.ops) assert.equal(op.node, 'a');
});

test('errors cross the thread boundary with their class, code and source location', async () => {
  const bad = await pool
    .analyse('"agent.graph"() ({\n  %a = "x.y"(%nope) : (i32) -> i32\n}) : () -> ()')
    .catch((e) => e);
  assert.ok(bad instanceof IrError, String(bad));
  assert.match(bad.message, /:2:\d+: error:/);
  const analysed = await pool.analyse(sample);
  const none = await pool.plan({ deployment: 'd', analysed, nodes: [] }).catch((e) => e);
  assert.ok(none instanceof AgentsError);
  assert.equal(none.code, 'DEPLOY_NO_NODES');
});

test('a solve whose signal has fired is dropped with an AbortError', async () => {
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(pool.analyse(sample, { signal: ac.signal }), (e: Error) => e.name === 'AbortError');
  // The pool still serves.
  assert.equal((await pool.analyse(sample)).name, analyseGraph(sample).name);
});

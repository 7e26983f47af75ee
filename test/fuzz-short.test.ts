// The short variant of `pnpm fuzz`: 300 cases per target (deploys stop at placement: the fuzz node hosts no operators, so nothing compiles) with the fixed seed, in-process. Every target
// must leave the node process alive (same pid) and the checked Counter counting exactly.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SEED, main } from '../fuzz/run.js';
import { TARGETS } from '../fuzz/targets.js';

test('fuzzing every inbound edge (300 cases each) crashes nothing and the node keeps serving', async () => {
  const results = await main({ cases: 300, seed: DEFAULT_SEED, settleMs: 3000 });
  assert.deepEqual(
    results.map((r) => r.target),
    [...TARGETS],
  );
  for (const r of results) {
    assert.equal(r.crashes, 0, `${r.target}: ${JSON.stringify(r)}`);
    assert.equal(r.still_serving, true, `${r.target}: ${JSON.stringify(r)}`);
    assert.ok(r.max_rss_mb < 1024, `${r.target}: ${JSON.stringify(r)}`);
    assert.ok(r.reached_handler > 0, `${r.target}: no case reached a handler: ${JSON.stringify(r)}`);
  }
});

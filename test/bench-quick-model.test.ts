// The quick variants of the planner and simulation benchmarks, and the check that every benchmark
// `pnpm bench` offers runs in one of the bench-quick test files.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allBenches, quickBenchTests } from './fixtures/bench-quick.js';

const MODEL_BENCHES = ['planner', 'simulate', 'fleets', 'solve-lag'];
// Listed here, not imported: importing a test file would run its tests in this process too.
const OTHERS = [
  'actors',
  'failover',
  'migration',
  'serial-gap',
  'spike',
  'kernels',
  'llm',
  'vector',
  'ir',
  'serve',
  'tensor-parallel',
];

test('every benchmark has its quick variant run by a bench-quick test file', () => {
  assert.deepEqual([...MODEL_BENCHES, ...OTHERS].sort(), allBenches());
});

quickBenchTests(MODEL_BENCHES);

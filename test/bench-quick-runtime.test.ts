// The quick variants of the runtime benchmarks (see test/fixtures/bench-quick.ts); bench-quick-model
// checks that every benchmark is in one of these files.
import { quickBenchTests } from './fixtures/bench-quick.js';

const RUNTIME_BENCHES = ['actors', 'failover', 'migration', 'serial-gap', 'spike'];
quickBenchTests(RUNTIME_BENCHES);

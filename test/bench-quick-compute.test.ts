// The quick variants of the kernel, LLM, vector and IR benchmarks (see test/fixtures/bench-quick.ts).
import { quickBenchTests } from './fixtures/bench-quick.js';

const COMPUTE_BENCHES = ['kernels', 'llm', 'vector', 'ir'];
quickBenchTests(COMPUTE_BENCHES);

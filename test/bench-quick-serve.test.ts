// The quick variants of the LLM serving and tensor-parallel benchmarks (their own file: they start local clusters).
import { quickBenchTests } from './fixtures/bench-quick.js';

quickBenchTests(['serve', 'tensor-parallel']);

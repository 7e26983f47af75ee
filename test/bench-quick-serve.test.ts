// The quick variant of the LLM serving benchmark (its own file: it starts two local clusters).
import { quickBenchTests } from './fixtures/bench-quick.js';

quickBenchTests(['serve']);

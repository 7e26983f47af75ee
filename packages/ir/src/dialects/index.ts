import { Registry } from '../registry.js';
import { agentDialect } from './agent.js';
import { llmDialect } from './llm.js';
import { kvDialect, memoryDialect, textDialect, toolDialect } from './misc.js';
import { fusedOp, nnDialect, nnYield } from './nn.js';

/** A fresh registry holding every stitch dialect: agent, llm, kv, tool, memory, text, nn. */
export function defaultRegistry(): Registry {
  return new Registry().register(
    ...agentDialect,
    ...llmDialect,
    ...kvDialect,
    ...toolDialect,
    ...memoryDialect,
    ...textDialect,
    ...nnDialect,
    fusedOp,
    nnYield,
  );
}

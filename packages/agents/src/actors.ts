// The module `stitch node --actors` loads: every export is an operator actor definition.
export {
  agentOperator,
  kvOperator,
  llmOperator,
  memoryOperator,
  nnOperator,
  textOperator,
  toolOperator,
} from './operator.js';
export { vectorOperator } from './vector-operator.js';

// Building blocks for sibling packages and tests; users import from the package root.
export {
  bytesPerParam,
  decodeFlopsPerToken,
  decodeStepTime,
  maxBatchInMemory,
  parallelismOptions,
  prefillFlops,
  prefillTime,
} from './llm.js';
export { allReduceMs } from './roofline.js';
export { STUDY_SCENARIOS } from './study.js';
export { annuity, HOURS_PER_YEAR, resolveTco, servingEconomics } from './tco.js';

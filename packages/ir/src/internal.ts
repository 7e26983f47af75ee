// Building blocks for sibling packages and tests; not part of the user-facing API.
export { attrEquals, toAttr } from './attrs.js';
export { annotateDemand } from './demand.js';
export { walkOps } from './graph.js';
export { allreduceDemand, decodeDemand, prefillDemand } from './llm-cost.js';
export { decompose } from './passes/decompose.js';
export { fuse } from './passes/fuse.js';
export { PASS_NAMES } from './passes/pass-manager.js';
export { unrollLoops } from './passes/unroll.js';
export { valueBytes } from './sizes.js';
export { printType } from './types.js';
export { verifyGraph } from './verify.js';

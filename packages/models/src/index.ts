// The public surface of @stitch/models: the one table of model facts that ir and cost share.
export type { ModelFacts } from './models.js';
export { findModel, kvBytesPerToken, MODELS, modelIds, weightBytes } from './models.js';

export type { ArrivalSpec, GeneratorSpec, TraceSpec } from './arrivals.js';
export { MAX_REQUESTS } from './arrivals.js';
export { SimError, SimErrorCode } from './errors.js';
export type { Decision, Policy, ReplanOptions, Snapshot } from './policy.js';
export { replanOnUtilisation, staticPolicy } from './policy.js';
export type { ClassReport, ShapeSpec, SimOptions, SimResult } from './simulate.js';
export { simulate } from './simulate.js';
export type { Window } from './stats.js';

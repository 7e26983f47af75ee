// The public surface of @stitch/ir. Sibling packages that need building blocks use './internal.js'.

export type { ModelFacts as ModelConfig } from '@stitch/models';
export { findModel, modelIds } from '@stitch/models';
export type { Attr, Attrs, Element, ElementsAttr } from './attrs.js';
export type { ExtraAttrs, LlmOptions } from './builder.js';
export { AgentGraphBuilder } from './builder.js';
export type { DemandRow } from './demand.js';
export { demandTable } from './demand.js';
export { defaultRegistry } from './dialects/index.js';
export type { Diagnostic, SourceLoc } from './errors.js';
export { IrError, IrErrorCode } from './errors.js';
export type { Block, Graph, Op, Region, Value } from './graph.js';
export { graphsEqual, makeOp } from './graph.js';
export type { ParseLimits, ParseOptions } from './limits.js';
export { PARSE_LIMITS } from './limits.js';
export { parseGraph } from './parser.js';
export type { PassManagerOptions, PassName, PassOptions } from './passes/pass-manager.js';
export { PassManager } from './passes/pass-manager.js';
export type { UnrollOptions } from './passes/unroll.js';
export { UNROLL_LIMITS } from './passes/unroll.js';
export { printGraph } from './printer.js';
export type { DecomposeOptions, OpDemand, OpKind, OpSchema, TypeConstraint } from './registry.js';
export { Registry } from './registry.js';
export type { TensorType, Type } from './types.js';
export { tensorType } from './types.js';
export { verify } from './verify.js';

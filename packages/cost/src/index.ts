export type { ModelFacts as LlmModel } from '@stitch/models';
export type {
  Catalog,
  DeviceClass,
  Dtype,
  LinkFacts,
  MeasuredPeaks,
  PaperFacts,
  PeakBasis,
  Peaks,
  SpecFacts,
} from './catalog.js';
export { applyMeasuredPeaks, devicePeaks, findDevice, PAPER_CATALOG, PAPER_DEVICE_IDS } from './catalog.js';
export type { CorrectedOp, CorrectionEntry, CorrectionOptions, CorrectionRecord } from './correction.js';
export { CorrectionTable } from './correction.js';
export { CostError, CostErrorCode } from './errors.js';
export type { LlmSetting, Parallelism, StepTime } from './llm.js';
export { findModel } from './llm.js';
export type { Demand, EstimateOptions, OpEstimate } from './roofline.js';
export { estimateOp } from './roofline.js';
export type { InstanceChoice, Shape, SizeResult } from './serving.js';
export { sizeDecode, sizePrefill } from './serving.js';
export type { PairResult, Scenario, ScenarioResult, StudyOptions, StudyResult } from './study.js';
export { runTcoStudy, scenarioLabel } from './study.js';
export type {
  SweepKind,
  SweepOptions,
  SweepParameter,
  SweepRanges,
  SweepResult,
  SweepSeries,
  SweepWinner,
} from './sweep.js';
export { DEFAULT_SWEEP_RANGES, resolveSweepRanges, sweepTco } from './sweep.js';
export type { HourlyCost, ResolvedTco, ServingEconomics, TcoOptions } from './tco.js';
export { deviceHourlyCost } from './tco.js';
export { parseCatalog } from './user-catalog.js';

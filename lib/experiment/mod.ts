/**
 * What experiment modules import: `defineExperiment` and the config types.
 *
 * @module
 */
export { defineExperiment, isExperiment } from "./define.ts";
export type {
  ConfigPatch,
  Experiment,
  ExperimentSpec,
  InitFrom,
  ReportContext,
  SummaryMetric,
  VariantPatch,
} from "./define.ts";
export type {
  BackendName,
  ConcreteBackend,
  DataConfig,
  DeepPartial,
  FfnConfig,
  ModelConfig,
  RunConfig,
  TrainConfig,
} from "./config.ts";
export { DEFAULT_DATA, DEFAULT_MODEL, DEFAULT_TRAIN } from "./config.ts";

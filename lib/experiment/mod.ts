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
  FfnKind,
  ModelConfig,
  RunConfig,
  TrainConfig,
} from "../core/config.ts";
export type { DenseOptions } from "../models/ffn/dense.ts";
export type { FinedeepOptions } from "../models/ffn/finedeep.ts";
export type { DsmoeOptions } from "../models/ffn/dsmoe.ts";
export type { FinermoeOptions } from "../models/ffn/finermoe.ts";
export type { TopkMoeOptions } from "../models/ffn/topk_moe.ts";
export { DEFAULT_DATA, DEFAULT_MODEL, DEFAULT_TRAIN } from "../core/config.ts";

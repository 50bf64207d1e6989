/**
 * `defineExperiment`: the typed declaration an experiment module exports.
 *
 * An experiment declares a base config (data, model, train), named variants, an
 * optional grid, seeds and scale presets. {@link expandRuns} turns it into the list of
 * fully resolved runs. Precedence, lowest first: defaults < experiment base < scale
 * preset < variant < grid point < `--config` file < `--set` overrides.
 *
 * @example
 * ```ts
 * export default defineExperiment({
 *   id: "dense-baseline",
 *   description: "Dense SwiGLU LM on the default corpus",
 *   seeds: [0, 1],
 *   variants: { dense: {} },
 *   scales: { tiny: { model: { d_model: 32 }, train: { steps: 4 } } },
 * });
 * ```
 *
 * @module
 */
import type { BackendName, DataConfig, DeepPartial, ModelConfig, TrainConfig } from "./config.ts";

/** A partial config: what variants, scales, grid points and overrides may set. */
export interface ConfigPatch {
  data?: DeepPartial<DataConfig>;
  model?: DeepPartial<ModelConfig>;
  train?: DeepPartial<TrainConfig>;
}

/** Summary statistic an experiment reports per variant (mean +- std over seeds). */
export type SummaryMetric = "val_loss" | "val_ppl" | "final_train_loss" | "tokens_per_sec" | "params" | string;

/** What an experiment module declares. */
export interface ExperimentSpec extends ConfigPatch {
  /** Kebab-case id; must equal the module's file name (`experiments/<id>.ts`). */
  id: string;
  /** One or two sentences: what question the experiment answers. */
  description: string;
  /** Seeds; each variant and grid point runs once per seed. */
  seeds: number[];
  /** Named variants (default: one variant named `base` with no changes). */
  variants?: Record<string, ConfigPatch>;
  /** Cartesian grid over dotted config paths, e.g. `{ "train.lr": [1e-3, 3e-3] }`. */
  grid?: Record<string, unknown[]>;
  /** Scale presets; `default` is used unless `--scale` names another. `tiny` is what tests use. */
  scales?: Record<string, ConfigPatch & { seeds?: number[] }>;
  /** Backend unless `--backend` says otherwise (default `auto`). */
  backend?: BackendName;
  /** Metrics shown in the printed summary (default: val_loss, val_ppl). */
  metrics?: SummaryMetric[];
}

/** A validated experiment definition (what `defineExperiment` returns). */
export interface Experiment extends ExperimentSpec {
  readonly kind: "finelab.experiment";
}

/**
 * Declares an experiment. Shape errors are caught by `deno check`; values are
 * validated when the runner expands the experiment (see `expandRuns`).
 */
export function defineExperiment(spec: ExperimentSpec): Experiment {
  return Object.freeze({ ...spec, kind: "finelab.experiment" as const });
}

/** True when `x` is what `defineExperiment` returns. */
export function isExperiment(x: unknown): x is Experiment {
  return typeof x === "object" && x !== null && (x as { kind?: unknown }).kind === "finelab.experiment";
}

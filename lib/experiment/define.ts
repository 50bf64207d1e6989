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
import type { BackendName, DataConfig, DeepPartial, ModelConfig, TrainConfig } from "../core/config.ts";

/** A partial config: what variants, scales, grid points and overrides may set. */
export interface ConfigPatch {
  data?: DeepPartial<DataConfig>;
  model?: DeepPartial<ModelConfig>;
  train?: DeepPartial<TrainConfig>;
}

/**
 * Where a variant's runs start from: the final weights of another run (upcycling or continued
 * training, lib/models/upcycle.ts). The parent is planned like any run, trained first when it is not
 * cached, and its hash is part of the child's hash.
 */
export interface InitFrom {
  /** Experiment of the parent run (default: this experiment). */
  experiment?: string;
  /** Variant of the parent run. */
  variant: string;
  /** Seed of the parent run (default: the child's seed). */
  seed?: number;
}

/** A variant: a config patch, optionally started from a parent run. */
export interface VariantPatch extends ConfigPatch {
  init_from?: InitFrom;
  /**
   * Run this variant on the first seed of the experiment's seed list only (e.g. one shared parent that
   * the children of every seed start from). A child whose `init_from` names such a variant of this
   * experiment without a `seed` starts from that one run.
   */
  single_seed?: boolean;
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
  variants?: Record<string, VariantPatch>;
  /** Cartesian grid over dotted config paths, e.g. `{ "train.lr": [1e-3, 3e-3] }`. */
  grid?: Record<string, unknown[]>;
  /** Scale presets; `default` is used unless `--scale` names another. `tiny` is what tests use. */
  scales?: Record<string, ConfigPatch & { seeds?: number[] }>;
  /** Backend unless `--backend` says otherwise (default `auto`). */
  backend?: BackendName;
  /** Metrics shown in the printed summary (default: val_loss, val_ppl). */
  metrics?: SummaryMetric[];
  /**
   * Budget matching, checked by the runner before anything trains (lib/models/budget.ts
   * `budgetProblems`): within each model size, every variant's parameters and FLOPs per token must
   * be within `tolerance` (e.g. 0.01 = 1%) of the `reference` variant (or of each other), with the
   * same train and data sections. A mismatched grid is refused with a ConfigError.
   */
  budget?: { tolerance: number; reference?: string };
  /**
   * Slurm settings of `--executor slurm` (partition, gres, time, mem, max_parallel, cpus_per_task,
   * signal_s, sbatch_args: see lib/executor/slurm/settings.ts); `--config` files and the command line win.
   */
  slurm?: Record<string, unknown>;
  /**
   * Experiment-specific report, run by `exp` after the standard summary and by `plot`: prints its
   * table and verdict (from SQL over the results database) and writes extra plots. Returns the
   * plot files written.
   */
  report?: (ctx: ReportContext) => Promise<string[]>;
}

/** What an experiment's `report` gets: read access to the results database and where to write. */
export interface ReportContext {
  /** The experiment id. */
  experiment: string;
  /** The experiment's variants as declared (key order = declaration order, the order of tables and plots). */
  variants: Readonly<Record<string, VariantPatch>>;
  /** SQL over the results database (tables runs, current_runs, metrics, run_metrics, views variant_stats). */
  query(
    sql: string,
    params?: Record<string, string | number | boolean | null>,
  ): Promise<{ columns: { name: string; type: string }[]; rows: Record<string, unknown>[] }>;
  /** Folder for plots (results/plots/<id>), or null when plots are off (`--no-plot`). */
  plotDir: string | null;
  /** Prints a line of the report (stdout for `exp`; silent for `plot`). */
  print(text: string): void;
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

/**
 * finelab as a library: reproducible experiments on fine-grained expert architectures in LLMs
 * (Finedeep, DSMoE, FineRMoE). The same pipeline as `deno task exp|query|plot|db|runs`, for scripts,
 * notebooks (Deno's Jupyter kernel) and cluster tasks:
 *
 * - {@link plan}: expand an experiment into hashed runs (trains nothing);
 * - {@link run}: train what is not cached, store, plot, report;
 * - {@link runOne}: train exactly one planned run by its hash (a cluster array task);
 * - {@link verify}: retrain a plan from scratch and compare every number bit for bit;
 * - {@link query}: SQL over every result (DuckDB);
 * - {@link report}: redraw an experiment's plots and rerun its report;
 * - {@link rebuild}, {@link runs}: rebuild the database from the run cache; list cached runs;
 * - {@link submit}: submit a plan to Slurm as job arrays (lib/executor/slurm);
 * - {@link preview}, {@link rerun}: what `exp --dry-run` shows; a no-op rerun answered from its memo;
 * - {@link isDeclared}, {@link experiment}: whether a plan is the experiment's declared one; a definition.
 * - {@link claims}: the claims ledger (each paper claim's effect, CI and verdict at every measured scale).
 *
 * Results go to `results/` (or `FINELAB_RESULTS`); pass `paths` to choose another place.
 *
 * @example
 * ```ts
 * import * as finelab from "./mod.ts";
 *
 * const { plan, outcomes } = await finelab.run("dense-baseline", { scale: "tiny" });
 * console.log(`${plan.runs.length} runs: ${outcomes.map((o) => o.action).join(", ")}`);
 * const r = await finelab.query("SELECT variant, seed, val_loss FROM current_runs WHERE experiment = 'dense-baseline'");
 * console.table(r.rows);
 * ```
 *
 * @module
 */
export * from "./lib/api/mod.ts";
export { defineExperiment } from "./lib/experiment/mod.ts";
export type { ExperimentSpec, ReportContext, VariantPatch } from "./lib/experiment/mod.ts";
export { type ProjectPaths, projectPaths } from "./lib/util/paths.ts";

/**
 * The sweep of bench/store.ts: an experiment module with a grid of `points` learning rates times `seeds`
 * seeds, at a tiny model (so that `--concurrency` can train it), and, run as a script, the in-process
 * cost of planning it (load, expand + validate + hash) as JSON.
 *
 *   deno run -A bench/store_sweep.ts <experiments-dir> <results-dir>
 *
 * @module
 */
import { projectPaths, REPO_ROOT, toFileUrl } from "../lib/util/paths.ts";
import { loadExperiment, makePlan } from "../lib/runner/plan.ts";

/** Seeds and grid points of a sweep of about `runs` runs (seeds = min(10, runs); runs rounded up to points x seeds). */
export function sweepShape(runs: number): { seeds: number; points: number; runs: number } {
  const seeds = Math.min(10, runs), points = Math.ceil(runs / seeds);
  return { seeds, points, runs: seeds * points };
}

/** Source of `experiments/sweep.ts`: {@link sweepShape}`(runs).runs` runs. */
export function sweepModule(runs: number, opts: { id?: string; steps?: number } = {}): string {
  const { seeds, points } = sweepShape(runs);
  const lrs = Array.from({ length: points }, (_, i) => +(1e-4 * (1 + i)).toPrecision(6));
  const mod = toFileUrl(`${REPO_ROOT}/lib/experiment/mod.ts`).href;
  return `import { defineExperiment } from "${mod}";

export default defineExperiment({
  id: "${opts.id ?? "sweep"}",
  description: "bench/store.ts: a ${runs}-run learning-rate sweep of a tiny model",
  seeds: [${Array.from({ length: seeds }, (_, i) => i).join(", ")}],
  data: { dataset: "gutenberg", max_tokens: 200000 },
  model: { d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32, seq_len: 16, ffn: { kind: "dense" } },
  train: { steps: ${
    opts.steps ?? 4
  }, batch_size: 2, warmup_steps: 1, eval_every: 2, eval_batches: 1, checkpoint_every: 2 },
  grid: { "train.lr": ${JSON.stringify(lrs)} },
  scales: { tiny: {} },
  backend: "cpu",
});
`;
}

if (import.meta.main) {
  const [experiments, results] = Deno.args;
  Deno.env.set("FINELAB_EXPERIMENTS", experiments);
  const paths = projectPaths(REPO_ROOT, results);
  const t0 = performance.now();
  const loaded = await loadExperiment("sweep", paths);
  const t1 = performance.now();
  const plan = await makePlan(loaded, { paths });
  const t2 = performance.now();
  const unique = new Set(plan.runs.map((r) => r.hash)).size;
  console.log(JSON.stringify({
    runs: plan.runs.length,
    unique_hashes: unique,
    load_s: +((t1 - t0) / 1000).toFixed(3),
    plan_s: +((t2 - t1) / 1000).toFixed(3),
  }));
}

/**
 * The papers' ablation experiments (dsmoe-soft, finermoe-routers, finermoe-granularity, finedeep-arms):
 * every scale plans (budget checks included); each tiny scale trains end to end through the CLI on the cpu
 * backend, stores its metrics (dsmoe-soft: the re-thresholded `eval_tau_*` evaluations) and prints its
 * verdict lines, computed from the numbers, and plots.
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "../lib/util/paths.ts";
import { cli, ok, repoPlans } from "../lib/cli/faults/helpers.ts";

/** Runs per scale, the verdict heads the tiny run must print, and the plots it must draw. */
const EXPERIMENTS: Record<string, { runs: Record<string, number>; verdicts: string[]; plots: string[] }> = {
  "dsmoe-soft": {
    runs: { tiny: 4, default: 12, gpu: 12 },
    verdicts: ["dsmoe-soft, Figure 2", 'dsmoe-soft, τ sweep at inference on "threshold"'],
    plots: ["ppl_vs_blocks_active_tau_sweep", "val_loss_curves"],
  },
  "finermoe-routers": {
    runs: { tiny: 4, default: 12, gpu: 12 },
    verdicts: ["finermoe-routers, Table 3"],
    plots: ["val_loss_curves"],
  },
  "finermoe-granularity": {
    runs: { tiny: 6, default: 12, gpu: 18 },
    verdicts: ["finermoe-granularity, Table 4", "finermoe-granularity, Table 4"],
    plots: ["ppl_vs_active_params", "val_loss_curves"],
  },
  "finedeep-arms": {
    runs: { tiny: 12, default: 12, gpu: 12 },
    verdicts: [...new Array(6).fill("finedeep-arms")],
    plots: ["val_loss_curves"],
  },
};

const EXPS = `${REPO_ROOT}/experiments`;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

Deno.test({
  name: "paper ablation experiments: every scale plans (budgets checked)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    for (const [id, want] of Object.entries(EXPERIMENTS)) {
      const { plans } = await repoPlans(id, Object.keys(want.runs));
      for (const [scale, runs] of Object.entries(want.runs)) {
        assert.equal(plans[scale].runs.length, runs, `${id} --scale ${scale}`);
      }
    }
  },
});

Deno.test({
  name: "paper ablation experiments --scale tiny: train, store, print verdicts computed from the numbers, plot",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const results = await Deno.makeTempDir({ prefix: "finelab-paperexp-" });
    for (const [id, want] of Object.entries(EXPERIMENTS)) {
      const out = ok(
        await cli(results, ["exp", id, "--scale", "tiny", "--backend", "cpu", "--plain"], { experiments: EXPS }),
        id,
      ).stdout;
      assert.match(out, new RegExp(`${want.runs.tiny} runs: ${want.runs.tiny} trained`), out);
      const verdicts = out.split("\n").filter((l) => l.startsWith("verdict ("));
      assert.equal(verdicts.length, want.verdicts.length, out);
      want.verdicts.forEach((head, i) =>
        assert.match(
          verdicts[i],
          // The claim's word comes from the ledger: with its scale, or why there is none.
          new RegExp(
            `^verdict \\(${esc(head)}; scale tiny, \\d seeds?, cpu\\): .*(claim [a-z-]+: .*(` +
              `(supported|inconclusive) at [\\d.]+k? tokens, d=\\d+|no ledger row)|early lag)`,
          ),
        )
      );
      for (const f of want.plots) assert.ok(Deno.statSync(`${results}/plots/${id}/${f}.png`).size > 1000, `${id}/${f}`);
    }
    // dsmoe-soft: both DSMoE children carry the 12 re-thresholded evaluations (3 metrics each); the one at the
    // training τ equals the run's own validation loss.
    const q = JSON.parse(
      ok(
        await cli(results, [
          "query",
          `SELECT r.variant, count(*) AS n, max(r.val_loss) AS val_loss,
             max(x.value) FILTER (WHERE x.name = 'eval_tau_0.5_val_loss') AS at_tau
           FROM current_runs r JOIN run_metrics x USING (hash)
           WHERE r.experiment = 'dsmoe-soft' AND starts_with(x.name, 'eval_tau_') GROUP BY ALL ORDER BY ALL`,
          "--format",
          "json",
        ], { experiments: EXPS }),
        "query",
      ).stdout,
    ) as { variant: string; n: number; val_loss: number; at_tau: number }[];
    assert.deepEqual(q.map((r) => [r.variant, Number(r.n)]), [["soft", 36], ["threshold", 36]]);
    for (const r of q) assert.ok(Math.abs(r.at_tau - r.val_loss) < 1e-6, JSON.stringify(r));
    await Deno.remove(results, { recursive: true });
  },
});

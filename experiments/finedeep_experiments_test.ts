/**
 * The Finedeep experiments (ablation-mk, finedeep-vs-dense, routing, nsar): every scale plans and
 * passes its budget check; a mismatched grid is refused before anything trains; a Finedeep option
 * changes the run hash; and nsar's tiny scale runs end to end through the CLI (train -> DuckDB ->
 * report -> plots).
 */
import assert from "node:assert/strict";
import { fromFileUrl, projectPaths, REPO_ROOT } from "../lib/util/paths.ts";
import { loadExperiment, makePlan } from "../lib/runner/plan.ts";
import { defineExperiment } from "../lib/experiment/mod.ts";
import { ConfigError } from "../lib/experiment/validate.ts";
import { cli as runCli, ok } from "../lib/cli/faults/helpers.ts";

const EXPERIMENTS: Record<string, { runs: Record<string, number> }> = {
  "ablation-mk": { runs: { tiny: 18, default: 27, gpu: 27 } },
  "finedeep-vs-dense": { runs: { tiny: 8, default: 12, gpu: 12 } },
  routing: { runs: { tiny: 12, default: 18, gpu: 18 } },
  nsar: { runs: { tiny: 4, default: 6, gpu: 6 } },
};

async function tempPaths() {
  return projectPaths(REPO_ROOT, await Deno.makeTempDir({ prefix: "finelab-fdexp-" }));
}

Deno.test({
  name: "Finedeep experiments: every scale plans and is budget-matched within 1%",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const paths = await tempPaths();
    for (const [id, want] of Object.entries(EXPERIMENTS)) {
      const loaded = await loadExperiment(id, paths);
      assert.deepEqual(loaded.exp.budget?.tolerance, 0.01, `${id} declares a 1% budget`);
      assert.equal(typeof loaded.exp.report, "function", `${id} has a report`);
      for (const [scale, n] of Object.entries(want.runs)) {
        const plan = await makePlan(loaded, { paths, overrides: { scale, backend: "cpu" } });
        assert.equal(plan.runs.length, n, `${id} --scale ${scale}`);
        const finedeep = plan.runs.filter((r) => r.config.model.ffn.kind === "finedeep");
        assert.ok(finedeep.length > 0);
        for (const r of finedeep) {
          for (const k of ["m", "k", "score", "norm_fn", "router", "rmsnorm"]) {
            assert.ok(k in r.config.model.ffn, `${id}/${r.run_id}: model.ffn.${k} is explicit`);
          }
        }
      }
    }
    await Deno.remove(paths.results, { recursive: true });
  },
});

Deno.test({
  name: "ablation-mk refuses a grid whose variants are not budget-matched (before anything trains)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const paths = await tempPaths();
    const loaded = await loadExperiment("ablation-mk", paths);
    const err = await makePlan(loaded, { paths, overrides: { sets: ["model.d_ff=256"], backend: "cpu" } }).then(
      () => null,
      (e) => e,
    );
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /Budget mismatch in experiment ablation-mk/);
    assert.match(err.message, /variant 1x16 has [\d,]+ parameters, \+1\.47% vs dense/);
    assert.doesNotMatch(err.message, /variant 2x2/, "the M·K = 4 line still matches at d_ff = 256");
    assert.match(err.message, /Nothing was trained/);
    assert.equal([...Deno.readDirSync(paths.results)].some((e) => e.name === "cache"), false);
    await Deno.remove(paths.results, { recursive: true });
  },
});

Deno.test({
  name:
    "a Finedeep option (score, norm_fn, router, rmsnorm, m, k) changes the run hash; its default written out does not",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const paths = await tempPaths();
    const exp = defineExperiment({
      id: "hash-probe",
      description: "finedeep only",
      seeds: [0],
      data: { max_tokens: 100_000 },
      model: { d_model: 32, n_layers: 1, n_heads: 2, d_ff: 64, seq_len: 16, ffn: { kind: "finedeep", m: 2, k: 2 } },
      train: { steps: 2, warmup_steps: 1 },
    });
    const loaded = { exp, modulePath: fromFileUrl(import.meta.url) };
    const hash = async (sets: string[]) =>
      (await makePlan(loaded, { paths, overrides: { sets, backend: "cpu" } })).runs[0].hash;
    const base = await hash([]);
    assert.equal(await hash([]), base, "same config, same hash");
    const seen = new Set([base]);
    for (
      const set of [
        "model.ffn.score=input",
        "model.ffn.norm_fn=softmax",
        "model.ffn.router=sublayer",
        "model.ffn.rmsnorm=both",
        "model.ffn.m=4",
        "model.ffn.k=4",
      ]
    ) {
      const h = await hash([set]);
      assert.ok(!seen.has(h), `--set ${set} changes the hash`);
      seen.add(h);
    }
    // The default written out is the same run: the hashed config is the resolved one (defaults filled in).
    assert.equal(
      await hash(["model.ffn.score=output"]),
      base,
      "--set model.ffn.score=output (the default) hashes as base",
    );
    await Deno.remove(paths.results, { recursive: true });
  },
});

Deno.test({
  name: "nsar --scale tiny: trains, stores NSAR/histogram/router metrics, prints table and verdict, plots",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const results = await Deno.makeTempDir({ prefix: "finelab-nsar-" });
    const cli = async (args: string[]) =>
      ok(await runCli(results, args, { experiments: `${REPO_ROOT}/experiments` }), args.join(" "));
    const run = await cli(["exp", "nsar", "--scale", "tiny", "--backend", "cpu", "--plain"]);
    assert.match(run.stdout, /4 runs: 4 trained/);
    assert.match(run.stdout, /nsar_gate_0\.1\s+[\d.]+ ± [\d.]+\s+[\d.]+ ± [\d.]+\s+[-+][\d.]+\s+[-+][\d.]+/);
    assert.match(
      run.stdout,
      /verdict \(nsar; scale tiny, 2 seeds, cpu\): NSAR of SiLU\(gate\), dense → Finedeep: τ=0\.01/,
    );
    const q = await cli([
      "query",
      `SELECT r.variant, count(*) AS n,
         count(*) FILTER (WHERE x.name LIKE 'nsar_gate_%') AS nsar,
         count(*) FILTER (WHERE x.name LIKE 'hist_gate_l1_b%') AS hist,
         count(*) FILTER (WHERE x.name LIKE 'router_mean_l%_m%_k%') AS router
       FROM run_metrics x JOIN runs r USING (hash) WHERE r.seed = 0 GROUP BY r.variant ORDER BY r.variant`,
      "--format",
      "json",
    ]);
    const rows = JSON.parse(q.stdout);
    // dense: 4 taus x (overall + 2 layers); finedeep (4x4) adds 4 taus x 2 layers x 4 sub-layers.
    assert.deepEqual(rows.map((r: Record<string, unknown>) => [r.variant, r.nsar, r.hist, r.router]), [
      ["dense", 12, 49, 0],
      ["finedeep", 44, 49, 2 * 4 * 4],
    ]);
    for (const f of ["activation_histograms", "nsar_per_layer", "nsar_per_sublayer", "nsar_vs_tau"]) {
      assert.ok(Deno.statSync(`${results}/plots/nsar/${f}.png`).size > 1000, f);
    }
    // `plot` redraws the report's plots too.
    await Deno.remove(`${results}/plots`, { recursive: true });
    const plot = await cli(["plot", "nsar"]);
    assert.match(plot.stdout, /activation_histograms\.png/);
    assert.ok(Deno.statSync(`${results}/plots/nsar/activation_histograms.png`).size > 1000);
    await Deno.remove(results, { recursive: true });
  },
});

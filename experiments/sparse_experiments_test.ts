/**
 * The sparse-model experiments (dsmoe-tau, dsmoe-ste, finermoe-upcycle, finermoe-dims): every scale
 * plans with each child hashed from the `dense_parent` of its seed (finermoe-upcycle: the one parent); each tiny scale runs end to end
 * through the CLI on the cpu backend (parents trained once, then reused from the cache; sparse
 * metrics stored; report table, verdict and plots); and the verdicts follow the numbers.
 */
import assert from "node:assert/strict";
import { projectPaths, REPO_ROOT } from "../lib/util/paths.ts";
import { loadExperiment, makePlan } from "../lib/runner/plan.ts";
import { readRecord } from "../lib/runner/cache.ts";
import { cli as run, ok, repoPlans } from "../lib/cli/faults/helpers.ts";

/** Runs per seed (variants), seeds per scale, and whether one dense parent serves every seed. */
const EXPERIMENTS: Record<string, { variants: number; seeds: Record<string, number>; oneParent?: boolean }> = {
  "dsmoe-tau": { variants: 12, seeds: { tiny: 1, default: 2, gpu: 3 } },
  "dsmoe-ste": { variants: 6, seeds: { tiny: 1, default: 3, gpu: 3 } },
  "finermoe-upcycle": { variants: 6, seeds: { tiny: 1, default: 3, gpu: 3 }, oneParent: true },
  "finermoe-dims": { variants: 6, seeds: { tiny: 1, default: 2, gpu: 3 } },
};

/** `finelab <args>` with the task's permissions on `results`; asserts exit 0 and returns stdout. */
const cli = async (results: string, args: string[]): Promise<string> =>
  ok(await run(results, args, { experiments: `${REPO_ROOT}/experiments` }), args.join(" ")).stdout;

Deno.test({
  name: "sparse experiments: every scale plans; each child is hashed from its dense_parent",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    for (const [id, want] of Object.entries(EXPERIMENTS)) {
      const { loaded, plans } = await repoPlans(id, Object.keys(want.seeds));
      assert.equal(typeof loaded.exp.report, "function", `${id} has a report`);
      for (const [scale, seeds] of Object.entries(want.seeds)) {
        const plan = plans[scale];
        // finermoe-upcycle: one dense run (first seed) is the parent of every seed's children.
        const runs = want.oneParent ? (want.variants - 1) * seeds + 1 : want.variants * seeds;
        assert.equal(plan.runs.length, runs, `${id} --scale ${scale}`);
        const first = plan.runs[0].seed;
        for (const r of plan.runs) {
          if (r.variant === "dense_parent") {
            assert.equal(r.parent, null);
            continue;
          }
          const ps = want.oneParent ? first : r.seed;
          const p = plan.runs.find((x) => x.variant === "dense_parent" && x.seed === ps)!;
          assert.equal(r.parent?.hash, p.hash, `${id}/${r.run_id} starts from dense_parent/s${ps}`);
          assert.deepEqual(r.hash_inputs.parent, { [`${id}/${p.run_id}`]: p.hash });
        }
      }
    }
  },
});

Deno.test({
  name: "sparse experiments --scale tiny: train (parents once), store sparse metrics, print table + verdict, plot",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const results = await Deno.makeTempDir({ prefix: "finelab-spexp-" });
    const paths = projectPaths(REPO_ROOT, results);
    for (const [id, want] of Object.entries(EXPERIMENTS)) {
      const n = want.variants;
      const out = await cli(results, ["exp", id, "--scale", "tiny", "--backend", "cpu", "--plain"]);
      // One parent: the plan trains each run exactly once, the parent before its children.
      assert.match(out, new RegExp(`${n} runs: ${n} trained`), out);
      assert.match(
        out,
        new RegExp(`^verdict \\(${id}; scale tiny, 1 seed, cpu\\): .*\\b(supported|not supported)\\b`, "m"),
        out,
      );
      const plan = await makePlan(await loadExperiment(id, paths), {
        paths,
        overrides: { scale: "tiny", backend: "cpu" },
      });
      for (const r of plan.runs) {
        const rec = await readRecord(r.paths);
        assert.equal(rec?.status.status, "completed", `${id}/${r.run_id}`);
        if (r.parent) {
          const parent = (await readRecord(r.parent.paths))!;
          assert.ok(parent.status.finished_at! <= rec!.status.started_at!, `${id}: parent finished before child`);
        }
      }
      const scatter = id === "dsmoe-ste"
        ? ["ppl_vs_blocks_active", "blocks_active_per_layer"]
        : ["ppl_vs_active_params"];
      for (const f of [...scatter, "val_loss_curves"]) {
        assert.ok(Deno.statSync(`${results}/plots/${id}/${f}.png`).size > 1000, `${id}/${f}`);
      }
    }
    // Sparse metrics are in DuckDB: routed variants activate fewer parameters than they hold.
    const q = JSON.parse(
      await cli(results, [
        "query",
        `SELECT r.experiment, r.variant, r.model_ffn_kind AS kind,
           max(x.value) FILTER (WHERE x.name = 'params_total') AS total,
           max(x.value) FILTER (WHERE x.name = 'params_active') AS active,
           count(*) FILTER (WHERE x.name LIKE 'expert_load_cv%') AS cv
         FROM current_runs r JOIN run_metrics x USING (hash) GROUP BY ALL ORDER BY ALL`,
        "--format",
        "json",
      ]),
    ) as { experiment: string; variant: string; kind: string; total: number; active: number; cv: number }[];
    assert.equal(q.length, Object.values(EXPERIMENTS).reduce((a, e) => a + e.variants, 0));
    for (const r of q) {
      if (r.kind === "dense") assert.equal(r.active, r.total, `${r.experiment}/${r.variant}`);
      else assert.ok(r.cv >= 2, `${r.experiment}/${r.variant} has expert_load_cv (overall + per layer)`);
    }
    const routed = q.filter((r) => ["topk_moe", "finermoe"].includes(r.kind));
    assert.ok(routed.length >= 8 && routed.every((r) => r.active < r.total), JSON.stringify(routed));
    // A second invocation reuses every cached run: the parent is not trained again.
    const parent = plan0(
      await makePlan(await loadExperiment("dsmoe-ste", paths), { paths, overrides: { scale: "tiny", backend: "cpu" } }),
    );
    const before = (await readRecord(parent.paths))!.status.finished_at;
    const again = await cli(results, [
      "exp",
      "dsmoe-ste",
      "--scale",
      "tiny",
      "--backend",
      "cpu",
      "--plain",
      "--no-plot",
    ]);
    assert.match(again, /6 runs: 6 cached/, again);
    assert.equal((await readRecord(parent.paths))!.status.finished_at, before);
    await Deno.remove(results, { recursive: true });
  },
});

function plan0<T extends { variant: string; seed: number }>(plan: { runs: T[] }): T {
  return plan.runs.find((r) => r.variant === "dense_parent" && r.seed === 0)!;
}

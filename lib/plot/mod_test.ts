import assert from "node:assert/strict";
import { openStore } from "../store/mod.ts";
import { syntheticRunRecord } from "../store/testing.ts";
import { plotExperiment } from "./mod.ts";

Deno.test("plotExperiment writes loss curves and final metric charts from the store", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finelab_plot_" });
  const store = await openStore(`${dir}/results.duckdb`);
  try {
    const recs = [];
    for (const variant of ["dense", "finedeep_k4"]) {
      for (const seed of [0, 1]) {
        recs.push(
          syntheticRunRecord({ experiment: "sweep", variant, seed, steps: 120, evalEvery: 30, extra: { nsar: seed } }),
        );
      }
    }
    recs.push(syntheticRunRecord({ experiment: "sweep", variant: "moe", seed: 0, status: "failed" }));
    recs.push(syntheticRunRecord({ experiment: "other", variant: "elsewhere" }));
    await store.ingest(recs);

    const out = `${dir}/plots/sweep`;
    const files = await plotExperiment(store, "sweep", out, { metrics: ["val_ppl", "nsar"] });
    assert.deepEqual(files, [
      `${out}/loss_curves.svg`,
      `${out}/loss_curves.png`,
      `${out}/final_val_ppl.svg`,
      `${out}/final_val_ppl.png`,
      `${out}/final_nsar.svg`,
      `${out}/final_nsar.png`,
    ]);
    for (const f of files) assert.ok((await Deno.stat(f)).size > 1000, f);

    const loss = await Deno.readTextFile(`${out}/loss_curves.svg`);
    assert.ok(loss.includes("sweep: training and validation loss"));
    for (const v of [">dense<", ">finedeep_k4<", ">moe<"]) assert.ok(loss.includes(v), v); // legend
    assert.ok(!loss.includes("elsewhere"));
    assert.ok(loss.includes("Red ×")); // the failed run is marked

    const ppl = await Deno.readTextFile(`${out}/final_val_ppl.svg`);
    const subtitle = [...ppl.matchAll(/<text [^>]*fill="#444">([^<]*)<\/text>/g)].map((m) => m[1]).join(" ");
    assert.ok(subtitle.endsWith("5 runs: 3 variants × 2 seeds; 4 completed, 1 failed."), subtitle);
    // the failed run has no val_ppl: two variants, two seeds each
    assert.equal((ppl.match(/\(n=2\)/g) ?? []).length, 2);
    const dense = recs.filter((r) => r.manifest.variant === "dense").map((r) => r.summary!.val_ppl!);
    assert.ok(ppl.includes(`${((dense[0] + dense[1]) / 2).toFixed(3)} ± `));

    const nsar = await Deno.readTextFile(`${out}/final_nsar.svg`);
    assert.ok(nsar.includes("0.500 ± 0.707  (n=2)")); // extra metric from run_metrics: seeds 0 and 1
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("plotExperiment rejects an experiment without runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finelab_plot_" });
  const store = await openStore(`${dir}/results.duckdb`);
  try {
    await assert.rejects(plotExperiment(store, "nope", `${dir}/plots`), /no runs of experiment "nope"/);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

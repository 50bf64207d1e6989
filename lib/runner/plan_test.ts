/** Planning: every run's config is the resolved one (FFN option defaults filled in before hashing). */
import assert from "node:assert/strict";
import { projectPaths, REPO_ROOT } from "../util/paths.ts";
import { loadExperiment, makePlan, resolvedFfn } from "./plan.ts";
import { availableFfnKinds, loadFfn } from "../models/mod.ts";
import { FINEDEEP_DEFAULTS } from "../models/ffn/finedeep.ts";
import { cli, dbRows, FIXTURES, ok, SUITE } from "../cli/faults/helpers.ts";
import { withTempDir } from "../util/testing.ts";
import type { FfnConfig } from "../core/config.ts";

const paths = { ...projectPaths(REPO_ROOT, "/nonexistent-results"), experiments: FIXTURES };

async function planWith(sets: string[]) {
  return makePlan(await loadExperiment("faults", paths), { paths, overrides: { sets } });
}

Deno.test("resolvedFfn: defaults fill the options not given, given ones win, kind stays first", () => {
  const got = resolvedFfn({ kind: "finedeep", k: 2 } as FfnConfig, { defaults: { m: 4, k: 4, expert_width: null } });
  assert.deepEqual(got, { kind: "finedeep", m: 4, k: 2, expert_width: null });
  assert.deepEqual(Object.keys(got)[0], "kind");
  assert.deepEqual(resolvedFfn({ kind: "dense" }, {}), { kind: "dense" });
});

Deno.test("every FFN variant's defaults name only its options and pass its own validation", async () => {
  for (const kind of availableFfnKinds()) {
    const v = await loadFfn(kind);
    const model = { ...(await planWith([])).runs[0].config.model, d_ff: 64 };
    const ffn = resolvedFfn({ kind } as FfnConfig, v);
    assert.deepEqual(v.validate({ ...model, ffn }), [], `${kind}: its filled-in defaults are valid`);
    if (kind !== "dense") assert.ok(Object.keys(v.defaults ?? {}).length > 0, `${kind} declares its defaults`);
  }
});

Deno.test({
  name: "plan: `--set model.ffn.kind=finedeep` stores every option; an explicit default hashes like the implicit one",
  ...SUITE,
  async fn() {
    const implicit = (await planWith(["model.ffn.kind=finedeep"])).runs[0];
    // Every option is stored: the variant's documented defaults, in one home (lib/models/ffn/finedeep.ts).
    assert.deepEqual(implicit.config.model.ffn, { kind: "finedeep", ...FINEDEEP_DEFAULTS });
    assert.deepEqual(implicit.hash_inputs.config.model.ffn, implicit.config.model.ffn, "the hashed config is resolved");
    const explicit = (await planWith(["model.ffn.kind=finedeep", "model.ffn.m=4", "model.ffn.rmsnorm=pre"])).runs[0];
    assert.equal(explicit.hash, implicit.hash);
    const other = (await planWith(["model.ffn.kind=finedeep", "model.ffn.m=2"])).runs[0];
    assert.notEqual(other.hash, implicit.hash);
    assert.equal(other.config.model.ffn.kind === "finedeep" && other.config.model.ffn.k, 4);
    // Dense has no options: its config (and so its hash) is what it always was.
    assert.deepEqual((await planWith([])).runs[0].config.model.ffn, { kind: "dense" });
  },
});

Deno.test({
  name: "exp: a run made with `--set model.ffn.kind=finedeep` has its m and k columns (WHERE model_ffn_m = 4 finds it)",
  ...SUITE,
  async fn() {
    await withTempDir("resolved", async (results) => {
      ok(await cli(results, ["exp", "faults", "--set", "model.ffn.kind=finedeep", "--set", "train.steps=2"]));
      const rows = await dbRows(
        results,
        "SELECT model_ffn_m AS m, model_ffn_k AS k, model_ffn_norm_fn AS n FROM runs WHERE model_ffn_m = 4",
      );
      assert.deepEqual(rows.map((r) => [Number(r.m), Number(r.k), r.n]), [[4, 4, "sigmoid"]]);
    });
  },
});

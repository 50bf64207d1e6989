import assert from "node:assert/strict";
import { plan } from "../lib/api/mod.ts";
import { claimsOf, SCALE_STUDY } from "../lib/report/scale_study.ts";

Deno.test("scale-study plan: 21 arms x 3 budgets x 2 sizes x 3 seeds, one run per arm, point and seed; claims read its arms", async () => {
  const p = await plan(SCALE_STUDY);
  assert.equal(p.runs.length, 378);
  const key = (r: (typeof p.runs)[number]) =>
    `${r.variant}|${r.config.train.steps}|${r.config.model.d_model}|${r.seed}`;
  // A baseline several claims read (fd_dense, sp_dense) is one cached run per point and seed.
  assert.equal(new Set(p.runs.map((r) => r.hash)).size, 378);
  assert.equal(new Set(p.runs.map(key)).size, 378);
  assert.deepEqual([...new Set(p.runs.map((r) => r.config.train.steps))].sort((a, b) => a - b), [50, 150, 300]);
  assert.deepEqual([...new Set(p.runs.map((r) => r.config.model.d_model))].sort((a, b) => a - b), [32, 64]);
  // Children start from the parent of their own point and seed.
  for (const r of p.runs.filter((x) => x.parent)) {
    assert.equal(key(r.parent!).replace(/^[^|]+/, ""), key(r).replace(/^[^|]+/, ""));
  }
  const arms = new Set(p.runs.map((r) => r.variant));
  for (const c of claimsOf(SCALE_STUDY)) {
    for (const t of c.tests) {
      for (const v of [t.variant, ...[t.baseline ?? []].flat()]) {
        assert.ok(arms.has(v), `${c.id}: ${v} is not an arm of the study`);
      }
    }
  }
});

Deno.test("scale-study: the arms added for dsmoe-soft, finermoe-dims, -routers and -granularity resolve to those experiments' variants", async () => {
  const [study, soft, dims, routers, grid] = await Promise.all(
    [SCALE_STUDY, "dsmoe-soft", "finermoe-dims", "finermoe-routers", "finermoe-granularity"].map((id) => plan(id)),
  );
  const ffn = (p: typeof study, variant: string) => {
    const r = p.runs.find((x) => x.variant === variant);
    assert.ok(r, variant);
    return r.config.model.ffn as unknown as Record<string, unknown>;
  };
  const same: [typeof study, string, string][] = [
    [soft, "threshold", "sp_dsmoe_eval"],
    [soft, "soft", "sp_dsmoe_soft"],
    [dims, "fg_none", "sp_fg_none"],
    [dims, "fg_inter", "sp_fg_inter"],
    [dims, "fg_out", "sp_fg_out"],
    [dims, "fg_both", "sp_finermoe"],
    [routers, "single", "sp_finermoe"],
    [routers, "separate", "sp_finermoe_separate"],
    [grid, "gi2_go1", "sp_gi2_go1"],
    [grid, "gi2_go4", "sp_gi2_go4"],
    [grid, "gi8_go1", "sp_fg_inter"],
    [grid, "gi8_go4", "sp_gi8_go4"],
  ];
  for (const [p, original, arm] of same) assert.deepEqual(ffn(study, arm), ffn(p, original), `${arm} vs ${original}`);
  // sp_dsmoe_eval trains exactly as sp_dsmoe (only the evaluation after training differs); the soft arm is the
  // soft-gated one, and every added arm starts from the point's and seed's dense parent.
  const { eval_taus, ...dsmoe } = ffn(study, "sp_dsmoe_eval");
  assert.deepEqual({ ...ffn(study, "sp_dsmoe"), eval_taus: [] }, { ...dsmoe, eval_taus: [] });
  assert.ok(Array.isArray(eval_taus) && eval_taus.includes(0.5) && eval_taus.length === 12);
  assert.equal(ffn(study, "sp_dsmoe_soft").train_gates, "soft");
  for (const r of study.runs.filter((x) => /^sp_(dsmoe_|fg_|gi|finermoe_)/.test(x.variant))) {
    assert.equal(r.parent?.variant, "sp_parent", r.variant);
  }
});

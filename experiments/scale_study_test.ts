import assert from "node:assert/strict";
import { plan } from "../lib/api/mod.ts";
import { claimsOf, SCALE_STUDY } from "../lib/report/scale_study.ts";

Deno.test("scale-study plan: 12 arms x 3 budgets x 2 sizes x 3 seeds, one run per arm, point and seed; claims read its arms", async () => {
  const p = await plan(SCALE_STUDY);
  assert.equal(p.runs.length, 216);
  const key = (r: (typeof p.runs)[number]) =>
    `${r.variant}|${r.config.train.steps}|${r.config.model.d_model}|${r.seed}`;
  // A baseline several claims read (fd_dense, sp_dense) is one cached run per point and seed.
  assert.equal(new Set(p.runs.map((r) => r.hash)).size, 216);
  assert.equal(new Set(p.runs.map(key)).size, 216);
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

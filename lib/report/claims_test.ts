import assert from "node:assert/strict";
import { type Claim, claimsWriteSql, fmtTokens, judgeEffect, ledgerRows, verdictText } from "./claims.ts";
import { CLAIMS } from "./claims_declared.ts";
import { scaleTable } from "./scale_study.ts";
import { tInterval, tQuantile95 } from "./stats.ts";

/** Synthetic completed runs: `values[i]` is seed i's metric. */
function runs(variant: string, values: number[], p: { tokens?: number; d?: number; metric?: string } = {}) {
  return values.map((v, seed) => ({
    experiment: "x",
    variant,
    seed,
    scale: "default",
    d_model: p.d ?? 64,
    tokens: p.tokens ?? 153_600,
    params: 1000 + seed,
    [p.metric ?? "val_ppl"]: v,
  }));
}

const LOWER: Claim = {
  id: "c",
  paper: "Finedeep",
  statement: "a beats b",
  supports: "lower",
  tests: [{ experiment: "x", variant: "a", baseline: "b" }],
};

Deno.test("tInterval: mean ± t(0.975, n-1)·s/√n; one value has no interval", () => {
  const ci = tInterval([1, 2, 3]);
  assert.equal(ci.mean, 2);
  assert.ok(Math.abs(ci.high! - (2 + 4.303 / Math.sqrt(3))) < 1e-12);
  assert.ok(Math.abs(ci.low! - (2 - 4.303 / Math.sqrt(3))) < 1e-12);
  assert.deepEqual(tInterval([5]), { mean: 5, low: null, high: null, n: 1 });
  assert.equal(tQuantile95(1), 12.706);
  assert.throws(() => tQuantile95(0), RangeError);
});

Deno.test("ledger: per-seed paired relative effect, its t-interval, params, tokens and the verdict with its scale", () => {
  const rows = ledgerRows([LOWER], [...runs("a", [9, 9.9, 8.8]), ...runs("b", [10, 11, 10])]);
  assert.equal(rows.length, 1);
  const r = rows[0];
  const per = [-10, -10, -12]; // 100·(a/b - 1) per seed
  const ci = tInterval(per);
  assert.ok(Math.abs(r.effect - ci.mean!) < 1e-9, `${r.effect}`);
  assert.ok(Math.abs(r.ci_low! - ci.low!) < 1e-9 && Math.abs(r.ci_high! - ci.high!) < 1e-9);
  assert.equal(r.n_seeds, 3);
  assert.equal(r.params, 1001);
  assert.equal(r.tokens, 153_600);
  assert.equal(r.status, "supported");
  assert.equal(r.verdict, "supported at 154k tokens, d=64");
  assert.equal(r.effect_unit, "%");
});

Deno.test("ledger: the verdict flips with the numbers (supported, not supported, inconclusive)", () => {
  const status = (a: number[]) => ledgerRows([LOWER], [...runs("a", a), ...runs("b", [10, 11, 10])])[0].status;
  assert.equal(status([9, 10, 9]), "supported");
  assert.equal(status([11, 12.1, 11]), "not supported");
  assert.equal(status([9.5, 11.5, 10.1]), "inconclusive"); // -5%, +4.5%, +1%: the interval spans 0
  const one = ledgerRows([LOWER], [...runs("a", [11]), ...runs("b", [10])])[0];
  assert.equal(one.verdict, "not supported at 154k tokens, d=64, 1 seed");
});

Deno.test("ledger: not_worse, higher-is-better difference metrics, the strongest of several baselines", () => {
  const notWorse = { ...LOWER, rule: "not_worse" as const };
  // Non-inferiority with the 2% margin: the whole interval within it, all of it past it, or neither.
  assert.equal(judgeEffect({ mean: 0.5, low: -1, high: 1.9 }, notWorse), "supported");
  assert.equal(judgeEffect({ mean: 1, low: -1, high: 3 }, notWorse), "inconclusive");
  assert.equal(judgeEffect({ mean: 4, low: 2.5, high: 6 }, notWorse), "not supported");
  assert.equal(judgeEffect({ mean: 4, low: 1.8, high: 6 }, notWorse), "inconclusive");
  assert.equal(judgeEffect({ mean: 12, low: -28, high: 53 }, notWorse), "inconclusive"); // wide: never supported
  assert.equal(judgeEffect({ mean: 1.5, low: null, high: null }, notWorse), "supported"); // within the 2% margin
  assert.equal(judgeEffect({ mean: 2.5, low: null, high: null }, notWorse), "not supported");
  const nsar: Claim = { ...LOWER, metric: "nsar", supports: "higher" };
  const n = ledgerRows([nsar], [
    ...runs("a", [0.7, 0.72, 0.71], { metric: "nsar" }),
    ...runs("b", [0.6, 0.6, 0.6], { metric: "nsar" }),
  ])[0];
  assert.equal(n.effect_unit, "abs");
  assert.ok(Math.abs(n.effect - 0.11) < 1e-9);
  assert.equal(n.status, "supported");
  const several: Claim = { ...LOWER, tests: [{ experiment: "x", variant: "a", baseline: ["b", "c"] }] };
  const s = ledgerRows([several], [...runs("a", [9, 9, 9]), ...runs("b", [10, 10, 10]), ...runs("c", [8, 8.1, 8])])[0];
  assert.equal(s.baseline, "c"); // the strongest (lowest ppl) baseline
  assert.equal(s.status, "not supported");
});

Deno.test("ledger: one row per scale point; a point without the baseline gives none", () => {
  const rows = ledgerRows([LOWER], [
    ...runs("a", [9, 9, 9.1], { tokens: 51_200 }),
    ...runs("b", [10, 10, 10], { tokens: 51_200 }),
    ...runs("a", [9, 9, 9.1], { tokens: 307_200, d: 32 }),
    ...runs("b", [10, 10, 10], { tokens: 307_200, d: 32 }),
    ...runs("a", [9], { tokens: 1e6 }),
  ]);
  assert.deepEqual(rows.map((r) => [r.d_model, r.tokens]), [[32, 307_200], [64, 51_200]]);
  assert.equal(
    verdictText("inconclusive", { tokens: 1_228_800, d_model: 32, n_seeds: 3 }),
    "inconclusive at 1.2M tokens, d=32",
  );
  assert.equal(fmtTokens(384), "384");
  assert.deepEqual([2_500, 204_800, 3.5e6, 1.2e9, 4e12, 7.2e13, 3e21].map(fmtTokens), [
    "2.5k",
    "205k",
    "3.5M",
    "1.2B",
    "4.0T",
    "72T",
    "3.0e21",
  ]);
});

Deno.test("claims table SQL: rows of the experiments replaced, values quoted", () => {
  const rows = ledgerRows([LOWER], [...runs("a", [9, 9, 9.1]), ...runs("b", [10, 10, 10])]);
  const [del, ins] = claimsWriteSql(["x", "it's"], rows);
  assert.equal(del, "DELETE FROM claims WHERE experiment IN ('x', 'it''s')");
  assert.match(ins, /^INSERT INTO claims \(claim, paper, experiment, .*\) VALUES \('c', 'Finedeep', 'x', 'a', 'b', /);
  assert.equal(claimsWriteSql(["x"], []).length, 1);
});

Deno.test("declared claims: unique ids, each tested by an experiment besides the scale study and by the study", () => {
  assert.equal(new Set(CLAIMS.map((c) => c.id)).size, CLAIMS.length);
  for (const c of CLAIMS) assert.ok(c.tests.some((t) => t.experiment !== "scale-study"), c.id);
  for (const c of CLAIMS) assert.ok(c.tests.some((t) => t.experiment === "scale-study"), c.id);
});

Deno.test("scaleTable: one row per claim and size, a column per budget, the trend and where it crosses 0", () => {
  const pts = [[51_200, [12, 12.5, 12.2]], [153_600, [8, 8.3, 8.1]], [460_800, [4, 4.1, 4.3]]] as const;
  const rows = ledgerRows(
    [LOWER],
    pts.flatMap(([tokens, a]) => [...runs("a", [...a], { tokens }), ...runs("b", [10, 10, 10], { tokens })]),
  );
  const t = scaleTable(rows, [LOWER]);
  assert.deepEqual(t.header.slice(5, 8), ["51k tokens", "154k tokens", "461k tokens"]);
  assert.equal(t.rows.length, 1);
  assert.equal(t.rows[0]["variant vs baseline"], "a vs b");
  assert.match(t.rows[0]["51k tokens"], /^\+22\.33% \[.*\] NOT supported$/);
  assert.match(t.rows[0]["461k tokens"], /supported$/);
  assert.equal(t.rows[0]["toward paper"], "yes");
  assert.match(t.rows[0]["trend /10x tokens"], /^-\d+\.\d\d%$/);
  assert.match(t.rows[0]["fit = 0 at"], /^\d+k$/); // crosses inside the measured range
});

Deno.test("ledger: dsmoe-soft claims read the re-thresholded τ curves (custom effect, `zero` rule)", () => {
  const claims = CLAIMS.filter((c) => c.id === "dsmoe-soft-worse" || c.id === "dsmoe-tau-monotone");
  // One run per variant and seed; curve points (τ, blocks, ppl) as eval_tau_* columns.
  const run = (variant: string, seed: number, pts: [number, number, number][]) => ({
    experiment: "dsmoe-soft",
    variant,
    seed,
    scale: "default",
    d_model: 64,
    tokens: 204800,
    params: 1000,
    val_ppl: 10,
    ...Object.fromEntries(pts.flatMap(([tau, a, p]) => [
      [`eval_tau_${tau}_val_loss`, Math.log(p)],
      [`eval_tau_${tau}_experts_active`, a],
    ])),
  });
  const rows = (softAt4: number[], bump: number) =>
    ledgerRows(
      claims,
      [0, 1, 2].flatMap((s) => [
        run("threshold", s, [[0.3, 6, 9.5], [0.5, 4, 10], [0.7, 2, s < bump ? 9 : 11]]),
        run("soft", s, [[0.3, 5, softAt4[s] - 1], [0.5, 3, softAt4[s] + 1]]),
      ]),
    );
  // Soft at 4 blocks (midpoint of 5 and 3) = softAt4: +10% [..] in every seed -> supported; the sweep is monotone.
  const [worse, mono] = rows([11, 11.1, 10.9], 0);
  assert.equal(worse.claim, "dsmoe-soft-worse");
  assert.ok(Math.abs(worse.effect - 10) < 1e-9, String(worse.effect));
  assert.equal(worse.status, "supported");
  assert.equal(mono.baseline, "-");
  assert.equal(mono.effect, 0);
  assert.equal(mono.verdict, "supported at 205k tokens, d=64");
  // Soft better than threshold -> not supported; ppl falls at τ 0.7 in every seed -> not supported; in one -> inconclusive.
  const [better, bumpy] = rows([9, 9.1, 8.9], 3);
  assert.equal(better.status, "not supported");
  assert.equal(bumpy.effect, 1);
  assert.equal(bumpy.status, "not supported");
  assert.equal(rows([11, 11.1, 10.9], 1)[1].status, "inconclusive");
});

import assert from "node:assert/strict";
import { DEFAULT_DATA, DEFAULT_MODEL, DEFAULT_TRAIN, type ModelConfig } from "../core/config.ts";
import { budgetOf, budgetProblems, type BudgetRun, budgetTable, compareToDense, denseTwin } from "./budget.ts";
import { flopsPerToken, loadFfn, paramCount } from "./variants.ts";

/** The ablation-mk default model (d_ff = 16·16 + 4). */
const BASE: ModelConfig = { ...DEFAULT_MODEL, d_model: 64, n_layers: 4, n_heads: 4, d_ff: 260, seq_len: 64 };
const fd = (m: number, k: number, extra: Record<string, unknown> = {}): ModelConfig => ({
  ...BASE,
  ffn: { kind: "finedeep", m, k, ...extra },
});
const LINES = [[1, 16], [2, 8], [4, 4], [8, 2], [16, 1], [1, 4], [2, 2], [4, 1]];

function run(variant: string, model: ModelConfig, seed = 0, train = DEFAULT_TRAIN): BudgetRun {
  return { run_id: `${variant}/s${seed}`, variant, config: { model, train, data: DEFAULT_DATA } };
}

Deno.test("budgetOf: params and FLOPs per token of any variant, equal to the trainer's numbers", async () => {
  for (const cfg of [BASE, fd(4, 4), fd(2, 8, { score: "input" })]) {
    const ffn = await loadFfn(cfg.ffn.kind);
    const b = await budgetOf(cfg);
    assert.equal(b.params, paramCount(cfg, ffn));
    assert.equal(b.flops_per_token, flopsPerToken(cfg, ffn));
    assert.equal(b.ffn_params, 4 * ffn.paramCount(cfg));
  }
  const d = await budgetOf(BASE);
  assert.equal(d.ffn_params, 4 * 3 * 64 * 260);
  assert.equal(d.ffn_flops_per_token, 4 * 6 * 64 * 260);
  await assert.rejects(budgetOf(fd(8, 8, { norm_fn: "softmax", k: 1 })), /normalises over a single expert/);
});

Deno.test("every Finedeep variant of the M·K = 16 and 4 lines is within 1% of its dense twin (params and FLOPs)", async () => {
  for (const [m, k] of LINES) {
    const c = await compareToDense(fd(m, k));
    assert.ok(c.within, `${m}x${k}: params ${c.params_rel}, flops ${c.flops_rel}`);
    assert.ok(Math.abs(c.params_rel) < 0.004 && c.params_rel > 0, `${m}x${k} params ${c.params_rel}`);
    assert.equal(c.reference.params, (await budgetOf(denseTwin(fd(m, k)))).params);
  }
  // Without the +4 in d_ff (256 = 16·16), the 16-expert line carries its 16·d router params on top: 1.47%.
  const off = await compareToDense({ ...fd(4, 4), d_ff: 256 });
  assert.equal(off.within, false);
  assert.ok(Math.abs(off.params_rel - 0.0147) < 0.0005, `${off.params_rel}`);
  const rows = await budgetTable({ dense: BASE, "4x4": fd(4, 4) }, "dense");
  assert.deepEqual(rows.map((r) => r.variant), ["dense", "4x4"]);
  assert.equal(rows[0].params_rel, 0);
});

Deno.test("budgetProblems: accepts a matched grid, refuses a mismatched one naming variant, numbers and fix", async () => {
  const grid = [run("dense", BASE), ...LINES.map(([m, k]) => run(`${m}x${k}`, fd(m, k)))];
  assert.deepEqual(await budgetProblems(grid, { tolerance: 0.01, reference: "dense" }), []);
  assert.deepEqual(await budgetProblems(grid, { tolerance: 0.01 }), []);

  const bad = [...grid, run("4x4-wide", fd(4, 4, { expert_width: 17 }))];
  const p = await budgetProblems(bad, { tolerance: 0.01, reference: "dense" });
  assert.equal(p.length, 2, p.join("\n"));
  assert.match(p[0], /variant 4x4-wide has 295,488 parameters, \+4\.72% vs dense \(282,176\)/);
  assert.match(p[1], /variant 4x4-wide has 649,344 FLOPs per token, \+3\.28% vs dense \(628,736\)/);
  assert.match(p[0], /allows ±1%\. Match the budgets/);
  const spread = await budgetProblems([run("a", fd(4, 4)), run("b", { ...fd(4, 4), d_ff: 240 })], { tolerance: 0.01 });
  assert.match(spread[0], /parameters differ by \+\d\.\d\d% between variants a .* and b/);

  // Different model sizes are separate groups; a different optimizer setting in a group is refused.
  const sizes = [run("dense-L2", { ...BASE, n_layers: 2 }), run("fd-L2", { ...fd(4, 4), n_layers: 2 }), ...grid];
  assert.deepEqual(await budgetProblems(sizes, { tolerance: 0.01 }), []);
  const lr = [run("dense", BASE), run("4x4", fd(4, 4), 0, { ...DEFAULT_TRAIN, lr: 5e-3 })];
  assert.match((await budgetProblems(lr, { tolerance: 0.01 }))[0], /run 4x4\/s0 has a different train section/);

  assert.match((await budgetProblems(grid, { tolerance: 2 }))[0], /budget\.tolerance = 2 must be a number in \[0, 1\)/);
  assert.match(
    (await budgetProblems(grid, { tolerance: 0.01, reference: "dns" }))[0],
    /budget\.reference = "dns" is not a variant of the experiment \(variants: dense, 1x16/,
  );
});

import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backends/mod.ts";
import { DEFAULT_MODEL, type ModelConfig } from "../core/config.ts";
import { evalBatches } from "../data/batches.ts";
import { train } from "../train/mod.ts";
import { syntheticDataset, tinyRunConfig } from "../train/test_util.ts";
import { createModel } from "./transformer.ts";
import { flopsPerToken, loadFfn, paramCount } from "./variants.ts";
import { activeCost, isRouted, measureInferenceSpeed, RoutingStats, sparseMetrics } from "./sparse_metrics.ts";

const CFG: ModelConfig = {
  ...DEFAULT_MODEL,
  vocab_size: 256,
  d_model: 8,
  n_layers: 2,
  n_heads: 2,
  d_ff: 24,
  seq_len: 8,
  init_std: 0.3,
};
const withFfn = (ffn: Record<string, unknown>): ModelConfig => ({ ...CFG, ffn: ffn as unknown as ModelConfig["ffn"] });

Deno.test("RoutingStats on a hand-made routing: loads, CV, max/mean, dead experts, tokens without expert", () => {
  const s = new RoutingStats();
  // Layer 0, 4 experts, 5 tokens: counts [3, 2, 1, 0] over 6 assignments; tokens 3 and 4 run no expert.
  s.add(0, [1, 1, 0, 0, 0.5, 0, 0.2, 0, 0.3, 0.7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 4);
  s.add(1, [1, 0, 1, 0, 0, 1, 0, 1], 4); // layer 1: counts [1, 1, 1, 1], balanced
  const m = s.metrics();
  assert.deepEqual([0, 1, 2, 3].map((e) => m[`expert_load_l0_e${e}`]), [3 / 6, 2 / 6, 1 / 6, 0]);
  const mean = 1.5, std = Math.sqrt(((1.5) ** 2 + 0.5 ** 2 + 0.5 ** 2 + 1.5 ** 2) / 4);
  assert.equal(m.expert_load_cv_l0, std / mean);
  assert.equal(m.expert_load_max_l0, 3 / 1.5);
  assert.equal(m.experts_dead_l0, 1);
  assert.equal(m.tokens_no_expert_l0, 2 / 5);
  assert.equal(m.experts_active_l0, 6 / 5);
  assert.equal(m.expert_load_cv_l1, 0);
  assert.equal(m.expert_load_max_l1, 1);
  assert.equal(m.experts_active_l1, 2);
  assert.equal(m.expert_load_cv, std / mean / 2);
  assert.equal(m.experts_dead, 1);
  assert.equal(m.experts_active, (6 / 5 + 2) / 2);
  assert.equal(m.tokens_no_expert, 0.2);
  assert.throws(() => s.add(1, [1, 0], 2), /2 experts, earlier 4/);
});

Deno.test("activeCost: dense is fully active; a routed layer counts fixed parts plus active experts", async () => {
  const dense = withFfn({ kind: "dense" }), dv = await loadFfn("dense");
  assert.equal(isRouted(dv), false);
  assert.deepEqual(activeCost(dense, dv), {
    params_total: paramCount(dense, dv),
    params_active: paramCount(dense, dv),
    flops_per_token_active: flopsPerToken(dense, dv),
  });
  const moe = withFfn({ kind: "topk_moe", experts: 4, top_k: 1 }), mv = await loadFfn("topk_moe");
  assert.ok(isRouted(mv));
  const c = activeCost(moe, mv, [1, 1]);
  const expert = 3 * 8 * 6;
  assert.equal(c.params_active, paramCount(moe, mv) - 2 * 3 * expert); // 3 of 4 experts idle in 2 layers
  assert.equal(c.flops_per_token_active, flopsPerToken(moe, mv)); // the variant's analytic count is the active one
  assert.equal(c.ffn_params_active_l1, 8 * 4 + expert);
});

Deno.test("sparseMetrics measures the routing of a model on batches (top-k: exactly k; DSMoE: from the gates)", async () => {
  await initBackend("cpu");
  const data = syntheticDataset(2), batches = evalBatches(data.val, 2, { batchSize: 2, seqLen: 8 });
  const moe = await createModel(withFfn({ kind: "topk_moe", experts: 4, top_k: 2 }), 1);
  const m = await sparseMetrics(moe, batches);
  assert.equal(m.experts_active_l0, 2);
  assert.equal(m.experts_active_l1, 2);
  assert.equal(m.params_total, paramCount(moe.cfg, moe.ffn));
  assert.equal(m.params_active, paramCount(moe.cfg, moe.ffn) - 2 * 2 * 3 * 8 * 6);
  assert.equal(m.flops_per_token_active, flopsPerToken(moe.cfg, moe.ffn));
  const loads = [0, 1, 2, 3].map((e) => m[`expert_load_l0_e${e}`]);
  assert.ok(Math.abs(loads.reduce((a, b) => a + b) - 1) < 1e-12);
  assert.ok(m.expert_load_cv_l0 >= 0 && Number.isFinite(m.expert_load_cv));
  moe.dispose();

  const ds = await createModel(withFfn({ kind: "dsmoe", experts: 4 }), 1);
  const dm = await sparseMetrics(ds, batches);
  const expert = 3 * 8 * 6, fixed = 8 * 4;
  for (const l of [0, 1]) {
    const a = dm[`experts_active_l${l}`];
    assert.ok(a > 0 && a < 4, `layer ${l}: ${a} active blocks per token`);
    assert.equal(dm[`ffn_params_active_l${l}`], fixed + a * expert);
  }
  assert.ok(dm.params_active < dm.params_total && dm.flops_per_token_active < flopsPerToken(ds.cfg, ds.ffn));
  // Deterministic: a second pass gives the same numbers bit for bit.
  assert.deepEqual(await sparseMetrics(ds, batches), dm);
  ds.dispose();

  const dense = await createModel(withFfn({ kind: "dense" }), 1);
  assert.deepEqual(Object.keys(await sparseMetrics(dense, batches)).sort(), [
    "flops_per_token_active",
    "params_active",
    "params_total",
  ]);
  dense.dispose();
});

Deno.test("measureInferenceSpeed reports prefill and decode tokens/s at batch 1", async () => {
  await initBackend("cpu");
  const model = await createModel(withFfn({ kind: "finermoe", g_i: 2, g_o: 2, r_o: 2 }), 1);
  const r = await measureInferenceSpeed(model, { decodeTokens: 3, reps: 1, warmup: 0 });
  assert.ok(r.prefill_tokens_per_sec > 0 && Number.isFinite(r.prefill_tokens_per_sec));
  assert.ok(r.decode_tokens_per_sec > 0 && Number.isFinite(r.decode_tokens_per_sec));
  assert.deepEqual([r.prompt_len, r.decode_tokens, r.reps, r.backend, r.kv_cache], [8, 3, 1, "cpu", false]);
  // Sub-millisecond passes are timed in batches lasting at least minRepMs (a tiny cpu prefill is far below 100 ms).
  const batched = await measureInferenceSpeed(model, { decodeTokens: 2, reps: 1, minRepMs: 200 });
  assert.ok(batched.prefill_runs_per_rep >= 2, `prefill runs per rep: ${batched.prefill_runs_per_rep}`);
  const single = await measureInferenceSpeed(model, { decodeTokens: 2, reps: 1, minRepMs: 0 });
  assert.deepEqual([single.prefill_runs_per_rep, single.decode_runs_per_rep], [1, 1]);
  await assert.rejects(measureInferenceSpeed(model, { promptLen: 9 }), /promptLen = 9 must be an integer in \[1, 8\]/);
  await assert.rejects(
    measureInferenceSpeed(model, { decodeTokens: 8 }),
    /decodeTokens = 8 must be an integer in \[1, 7\]/,
  );
  model.dispose();
  assert.equal(tf.getBackend(), "cpu");
});

Deno.test("train() puts the sparse metrics of a routed model into summary.extra", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finelab-sparse-" });
  try {
    const config = tinyRunConfig("cpu", { steps: 4, eval_every: 4, checkpoint_every: 0 });
    config.model = { ...config.model, ffn: { kind: "finermoe", g_i: 4, g_o: 2, r_o: 2, balance_coef: 0.01 } };
    const { summary, metrics } = await train({ config, dataset: syntheticDataset(), dir });
    assert.equal(summary.status, "completed");
    const x = summary.extra;
    assert.equal(x.experts_active_l0, 2); // G_O · T_I
    assert.equal(x.params_total, summary.params);
    assert.ok(x.params_active < x.params_total);
    assert.equal(x.flops_per_token_active, summary.flops_per_token);
    assert.ok(Number.isFinite(x.expert_load_cv_l1) && "expert_load_l1_e15" in x);
    assert.ok(metrics.some((r) => r.name === "ffn.balance_loss" && r.split === "train"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

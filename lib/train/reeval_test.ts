import assert from "node:assert/strict";
import { initBackend } from "../backends/mod.ts";
import type { ModelConfig } from "../core/config.ts";
import { TINY_MODEL } from "../models/moe_test_util.ts";
import { createModel } from "../models/transformer.ts";
import { sparseMetrics } from "../models/sparse_metrics.ts";
import { Rng } from "../util/rng.ts";
import type { Batch } from "../data/batches.ts";
import { reevaluate } from "./reeval.ts";
import { evaluate } from "./step.ts";

function batches(cfg: ModelConfig, n: number): Batch[] {
  const r = new Rng(4), B = 2, T = cfg.seq_len;
  return Array.from({ length: n }, () => {
    const ids = Int32Array.from({ length: B * (T + 1) }, () => Math.floor(r.next() * cfg.vocab_size));
    const x = new Int32Array(B * T), y = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      x.set(ids.subarray(b * (T + 1), b * (T + 1) + T), b * T);
      y.set(ids.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
    }
    return { x, y, batchSize: B, seqLen: T } as Batch;
  });
}

Deno.test("reevaluate: DSMoE eval_taus re-threshold the same weights; the config's own τ reproduces its metrics", async () => {
  await initBackend("cpu");
  const cfg: ModelConfig = {
    ...TINY_MODEL,
    ffn: { kind: "dsmoe", experts: 4, tau: 0.5, gate_bias: 0.2, eval_taus: [0.3, 0.5, 0.7] },
  };
  const model = await createModel(cfg, 3), evalSet = batches(cfg, 2);
  const out = await reevaluate(model, evalSet);
  assert.deepEqual(
    Object.keys(out).sort(),
    [0.3, 0.5, 0.7].flatMap((t) => ["val_loss", "experts_active", "params_active"].map((m) => `eval_tau_${t}_${m}`))
      .sort(),
  );
  const own = await sparseMetrics(model, evalSet);
  assert.equal(out["eval_tau_0.5_val_loss"], await evaluate(model, evalSet));
  assert.equal(out["eval_tau_0.5_experts_active"], own.experts_active);
  // A higher threshold switches blocks off: activation does not rise with τ.
  assert.ok(out["eval_tau_0.3_experts_active"] >= out["eval_tau_0.5_experts_active"]);
  assert.ok(out["eval_tau_0.5_experts_active"] >= out["eval_tau_0.7_experts_active"]);
  assert.ok(out["eval_tau_0.3_experts_active"] > out["eval_tau_0.7_experts_active"], JSON.stringify(out));
  model.dispose();
  // Variants without evalConfigs (dense) add nothing.
  const dense = await createModel({ ...TINY_MODEL, ffn: { kind: "dense" } }, 3);
  assert.deepEqual(await reevaluate(dense, evalSet), {});
  dense.dispose();
});

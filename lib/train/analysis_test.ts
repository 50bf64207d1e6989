import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backends/mod.ts";
import { evalBatches } from "../data/batches.ts";
import { DEFAULT_MODEL, type FfnConfig, type ModelConfig } from "../core/config.ts";
import { createModel } from "../models/transformer.ts";
import { ActivationStats, analyzeModel, nsar } from "./analysis.ts";
import { HIST_SIZE, histBin, histBinLower, NSAR_TAUS } from "../core/analysis.ts";
import { train } from "./mod.ts";
import { syntheticDataset, tinyRunConfig } from "./test_util.ts";

const close = (a: number, b: number, msg?: string) => assert.ok(Math.abs(a - b) < 1e-12, `${msg ?? ""} ${a} vs ${b}`);

Deno.test("nsar: fraction of |a| > tau on a hand-made tensor", () => {
  const a = [-0.3, -0.05, 0, 0.005, 0.02, 0.1, 0.15, 0.5];
  assert.deepEqual(NSAR_TAUS.map((t) => nsar(a, t)), [6 / 8, 4 / 8, 3 / 8, 2 / 8]);
  assert.equal(nsar(new Float32Array([0.01, -0.01]), 0.01), 0, "strictly greater than tau");
});

Deno.test("histogram bins: fixed edges, overflow bin, clamping", () => {
  assert.equal(HIST_SIZE, 49);
  assert.equal(histBin(-0.3), 0);
  assert.equal(histBin(-0.2751), 0);
  assert.equal(histBin(-0.27), 1);
  assert.equal(histBin(0), 12);
  assert.equal(histBin(0.0249), 12);
  assert.equal(histBin(0.025), 13);
  assert.equal(histBin(0.9), 48);
  assert.equal(histBin(1e6), 48);
  assert.equal(histBin(-5), 0);
  close(histBinLower(12), 0);
});

Deno.test("ActivationStats: pooled and per-sub-layer NSAR, histograms, router mean/std (known answers)", () => {
  const s = new ActivationStats();
  // Layer 0 has two sub-layers of 2 units each (4 tokens); layer 1 one sub-layer of 4 units (2 tokens).
  s.add(0, "act", 0, [0, 0.5, 0, 0.5, 0, 0.5, 0, 0.5], 2); // NSAR_0.1 = 1/2
  s.add(0, "act", 1, [0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.02], 2); // NSAR_0.1 = 7/8, NSAR_0.01 = 1
  s.add(1, "act", 0, [-0.21, 0, 0, 0, 0.06, 0, 0, 0], 4); // NSAR_0.05 = 2/8, NSAR_0.1 = 1/8
  s.add(0, "prod", 0, [1, 0, 1, 0], 2);
  s.add(0, "gate", 0, [0.2, 0.6, 0.4, 0.6], 2); // expert 0: 0.2, 0.4; expert 1: 0.6, 0.6
  const m = s.metrics();
  close(m["nsar_gate_0.1_l0"], 11 / 16);
  close(m["nsar_gate_0.1_l0_m0"], 1 / 2);
  close(m["nsar_gate_0.1_l0_m1"], 7 / 8);
  close(m["nsar_gate_0.01_l0_m1"], 1);
  close(m["nsar_gate_0.1_l1"], 1 / 8);
  close(m["nsar_gate_0.05_l1"], 2 / 8);
  close(m["nsar_gate_0.1"], 12 / 24, "pooled over layers by values, not averaged per layer");
  assert.equal(m["nsar_gate_0.1_l1_m0"], undefined, "no per-sub-layer metrics for a single sub-layer");
  close(m["nsar_prod_0.2_l0"], 1 / 2);
  close(m["nsar_prod_0.2"], 1 / 2);
  // Histogram of layer 1: six zeros (bin 12), -0.21 (bin 3), 0.06 (bin 14).
  close(m.hist_gate_l1_b12, 6 / 8);
  close(m.hist_gate_l1_b3, 1 / 8);
  close(m.hist_gate_l1_b14, 1 / 8);
  close(Array.from({ length: HIST_SIZE }, (_, j) => m[`hist_gate_b${j}`]).reduce((a, b) => a + b, 0), 1);
  close(m.router_mean_l0_m0_k0, 0.3);
  close(m.router_std_l0_m0_k0, 0.1);
  close(m.router_mean_l0_m0_k1, 0.6);
  close(m.router_std_l0_m0_k1, 0);
  close(m.router_mean_l0_m0, 0.45);
  close(m.router_mean, 0.45);
});

const MODEL: ModelConfig = {
  ...DEFAULT_MODEL,
  d_model: 16,
  n_layers: 2,
  n_heads: 2,
  d_ff: 24,
  seq_len: 8,
};

Deno.test("analyzeModel: Finedeep pools its M·K experts (unit count d_ff), equal to NSAR of the concatenation", async () => {
  await initBackend("cpu");
  const ds = syntheticDataset();
  const batches = evalBatches(ds.val, 2, { batchSize: 3, seqLen: 8 });
  for (
    const ffn of [{ kind: "dense" }, { kind: "finedeep", m: 2, k: 3 }, {
      kind: "finedeep",
      m: 3,
      k: 2,
      norm_fn: "none",
    }] as FfnConfig[]
  ) {
    const cfg = { ...MODEL, ffn, init_std: 0.2 };
    const model = await createModel(cfg, 1);
    const before = tf.memory().numTensors;
    const m = await analyzeModel(model, batches);
    assert.equal(tf.memory().numTensors, before, "captured tensors are disposed");
    // Reference: concatenate each layer's captured SiLU(gate) over sub-layers and batches.
    const perLayer: number[][] = [[], []];
    for (const b of batches) {
      const kept: { l: number; t: tf.Tensor2D }[] = [];
      tf.tidy(() => {
        model.forward(tf.tensor2d(b.x, [3, 8], "int32"), {
          capture: (l, name, t) => name === "act" && kept.push({ l, t: tf.keep(t) }),
        });
      });
      for (const k of kept) {
        assert.equal(k.t.shape[0], 24, "tokens");
        perLayer[k.l].push(...await k.t.data());
        k.t.dispose();
      }
    }
    for (const l of [0, 1]) {
      assert.equal(perLayer[l].length, 2 * 24 * 24, `${JSON.stringify(ffn)}: pooled units = d_ff`);
      for (const tau of NSAR_TAUS) close(m[`nsar_gate_${tau}_l${l}`], nsar(perLayer[l], tau));
    }
    close(m["nsar_gate_0.1"], nsar([...perLayer[0], ...perLayer[1]], 0.1));
    for (const l of [0, 1]) assert.ok(m[`nsar_prod_0.1_l${l}`] >= 0 && m[`nsar_prod_0.1_l${l}`] <= 1);
    const hasRouter = ffn.kind === "finedeep" && !("norm_fn" in ffn);
    assert.equal("router_mean" in m, hasRouter);
    if (hasRouter) {
      // Zero-initialised routers: every sigmoid gate is exactly 0.5.
      assert.equal(m.router_mean_l1_m1_k2, 0.5);
      assert.equal(m.router_std_l1_m1_k2, 0);
      assert.ok("nsar_gate_0.1_l1_m1" in m);
    }
    model.dispose();
  }
});

Deno.test("train: a completed run's summary.extra holds the analysis; deterministic across runs", async () => {
  const ds = syntheticDataset();
  const config = tinyRunConfig("cpu", { steps: 4, eval_every: 4, checkpoint_every: 0 });
  config.model = { ...config.model, ffn: { kind: "finedeep", m: 2, k: 2 } };
  const extras = [];
  for (let i = 0; i < 2; i++) {
    const dir = await Deno.makeTempDir();
    const out = await train({ config, dataset: ds, dir });
    assert.equal(out.summary.status, "completed");
    extras.push(out.summary.extra);
    await Deno.remove(dir, { recursive: true });
  }
  assert.deepEqual(extras[0], extras[1]);
  const e = extras[0];
  for (const tau of NSAR_TAUS) assert.ok(e[`nsar_gate_${tau}`] > 0 && e[`nsar_gate_${tau}`] <= 1);
  assert.ok(e["nsar_gate_0.01"] >= e["nsar_gate_0.2"]);
  assert.ok("router_mean_l1_m1_k1" in e && "hist_gate_l1_b48" in e && "nsar_gate_0.1_l0_m1" in e);
  assert.ok(Object.values(e).every(Number.isFinite));
});

import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../backends/mod.ts";
import { DEFAULT_MODEL } from "../../core/config.ts";
import { Rng } from "../../util/rng.ts";
import type { FfnContext } from "./types.ts";
import { variant } from "./dense.ts";

const cfg = { ...DEFAULT_MODEL, d_model: 4, d_ff: 3, n_layers: 2 };

Deno.test("dense FFN computes w2(silu(x w1) * (x w3)) (checked in float64)", async () => {
  await initBackend("cpu");
  const r = new Rng(1);
  const x = r.normal(new Float32Array(2 * 4), 1), w13 = r.normal(new Float32Array(4 * 6), 1);
  const w2 = r.normal(new Float32Array(3 * 4), 1);
  const ctx = { cfg, layer: 0, training: false, rng: null, addAuxLoss() {}, addStat() {} } as FfnContext;
  const out = tf.tidy(() =>
    variant.apply(tf.tensor2d(x, [2, 4]), { w13: tf.tensor2d(w13, [4, 6]), w2: tf.tensor2d(w2, [3, 4]) }, ctx)
  );
  assert.deepEqual(out.shape, [2, 4]);
  const got = await out.data();
  for (let n = 0; n < 2; n++) {
    const up = Array.from({ length: 6 }, (_, j) => [0, 1, 2, 3].reduce((s, k) => s + x[n * 4 + k] * w13[k * 6 + j], 0));
    const h = [0, 1, 2].map((j) => (up[j] / (1 + Math.exp(-up[j]))) * up[3 + j]);
    for (let c = 0; c < 4; c++) {
      const want = h.reduce((s, hj, j) => s + hj * w2[j * 4 + c], 0);
      assert.ok(
        Math.abs(got[n * 4 + c] - want) < 1e-5 * (1 + Math.abs(want)),
        `out[${n},${c}] ${got[n * 4 + c]} vs ${want}`,
      );
    }
  }
  out.dispose();
});

Deno.test("dense params, counts and FLOPs are consistent", () => {
  const specs = variant.params(cfg);
  assert.deepEqual(specs.map((s) => [s.name, s.shape]), [["w13", [4, 6]], ["w2", [3, 4]]]);
  assert.equal(variant.paramCount(cfg), specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0));
  assert.equal(variant.flopsPerToken(cfg), 2 * 4 * 6 + 2 * 3 * 4);
  assert.equal(specs[1].std, cfg.init_std / 2); // init_std / sqrt(2 * n_layers)
  assert.deepEqual(variant.validate(cfg), []);
});

import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./mod.ts";
import { expertGate } from "./fused.ts";
import { Rng } from "../util/rng.ts";

Deno.test("wasm fused expert gate (JS over the heap) matches the composite ops on cpu, values and gradients", async () => {
  for (const [n, k, e] of [[1, 1, 1], [7, 3, 5], [130, 4, 24]]) {
    const rng = new Rng(n + k + e);
    const prod = rng.normal(new Float32Array(n * k * e), 1), u = rng.normal(new Float32Array(k * e), 1);
    const w = rng.normal(new Float32Array(n * k * e), 1);
    const run = async (backend: "cpu" | "wasm") => {
      await initBackend(backend);
      assert.equal(tf.getKernel("FlExpertGate", backend) !== undefined, backend === "wasm");
      const outs = tf.tidy(() => {
        const p = tf.tensor2d(prod, [n, k * e]), uu = tf.tensor2d(u, [k, e]), ww = tf.tensor2d(w, [n, k * e]);
        const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(expertGate(a as tf.Tensor2D, b, k), ww));
        return [expertGate(p, uu, k), ...tf.grads(f)([p, uu])];
      });
      const vals = [];
      for (const t of outs) vals.push(Float32Array.from(await t.data()));
      tf.dispose(outs);
      return vals;
    };
    const ref = await run("cpu"), got = await run("wasm");
    for (const [i, what] of ["gated", "d prod", "d u"].entries()) {
      let worst = 0, scale = 0;
      for (let j = 0; j < ref[i].length; j++) {
        worst = Math.max(worst, Math.abs(got[i][j] - ref[i][j]));
        scale = Math.max(scale, Math.abs(ref[i][j]));
      }
      assert.ok(
        worst <= 1e-5 * Math.max(scale, 1),
        `N=${n} K=${k} E=${e} ${what}: max |diff| ${worst} (scale ${scale})`,
      );
    }
  }
});

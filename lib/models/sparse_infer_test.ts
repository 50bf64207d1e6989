import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backends/mod.ts";
import { nativeAvailability } from "../backends/native/mod.ts";
import { Rng } from "../util/rng.ts";
import { expertRunner, maskedMixture, sparseMixture } from "./moe.ts";
import { expertRows, sparseMixtureInfer } from "./sparse_infer.ts";

const avail = nativeAvailability();
if (!avail.ok) console.log(`sparse inference tests skipped: ${avail.why}. To run them: ${avail.fix}`);

function rand(r: Rng, n: number, std: number): Float32Array {
  return r.normal(new Float32Array(n), std);
}

/** coef [N, E] with `active` experts per row, expert `empty` never chosen (0 tokens), weights in (0, 1). */
function routing(r: Rng, N: number, E: number, active: number, empty: number): Float32Array {
  const c = new Float32Array(N * E);
  for (let t = 0; t < N; t++) {
    const pool = Array.from({ length: E }, (_, e) => e).filter((e) => e !== empty);
    for (let k = 0; k < active && pool.length; k++) {
      const e = pool.splice(r.int(pool.length), 1)[0];
      c[t * E + e] = 0.05 + 0.9 * r.next();
    }
  }
  return c;
}

Deno.test("expertRows: each expert's rows in token order, none for an unused expert", () => {
  const c = Float32Array.from([1, 0, 0, 0.5, 0, 0, 0, 2, 0]);
  assert.deepEqual(expertRows(c, 3, 3).map((g) => [...g]), [[0, 1], [2], []]);
});

Deno.test({
  name: "sparseMixtureInfer: bit-identical to the tfjs sparse form, close to the masked form (odd sizes, empty expert)",
  ignore: !avail.ok,
  async fn() {
    await initBackend("native");
    const r = new Rng(7);
    for (
      const [N, D, E, W, O, k] of [[9, 13, 5, 7, 11, 2], [33, 24, 8, 6, 24, 3], [1, 17, 4, 9, 17, 1], [
        0,
        8,
        3,
        4,
        8,
        1,
      ]]
    ) {
      const x = tf.tensor2d(rand(r, N * D, 1), [N, D]), coef = tf.tensor2d(routing(r, N, E, k, 1), [N, E]);
      const w13 = tf.tensor2d(rand(r, D * 2 * E * W, 0.3), [D, 2 * E * W]),
        w2 = tf.tensor2d(rand(r, E * W * O, 0.3), [E * W, O]);
      const ours = sparseMixtureInfer(x, coef, w13, w2).dataSync();
      const tfjs = sparseMixture(x, coef, coef.dataSync(), expertRunner(w13, w2, E), { outDim: O }).dataSync();
      assert.equal(ours.length, N * O);
      assert.deepEqual(ours, tfjs, `[${N}, ${D}] E ${E} W ${W}: the same bits as sparseMixture + expertRunner`);
      const masked = maskedMixture(x, w13, w2, coef).dataSync();
      let worst = 0, scale = 0;
      for (let i = 0; i < ours.length; i++) {
        worst = Math.max(worst, Math.abs(ours[i] - masked[i]));
        scale = Math.max(scale, Math.abs(masked[i]));
      }
      assert.ok(worst <= 1e-5 * Math.max(scale, 1), `[${N}, ${D}]: max |sparse - masked| ${worst} (scale ${scale})`);
      tf.dispose([x, coef, w13, w2]);
    }
  },
});

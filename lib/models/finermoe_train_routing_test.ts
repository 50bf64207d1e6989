import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backends/mod.ts";
import { nativeAvailability } from "../backends/native/mod.ts";
import { DEFAULT_MODEL, type ModelConfig } from "../core/config.ts";
import { Rng } from "../util/rng.ts";
import { finermoeShape } from "./ffn/finermoe.ts";
import { finermoeRouting } from "./finermoe_routing.ts";
import { finermoeTrainRouting, trainRoutingActive } from "./finermoe_train_routing.ts";
import { balanceLoss } from "./moe.ts";
import { matmul } from "../backends/ops.ts";
import { assertSameBits } from "../util/testing.ts";

const avail = nativeAvailability();

/** The same float32 bits (the first difference reported). */
Deno.test({
  name: "finermoeTrainRouting: coef, balance loss and the gradients of x and the router bit-identical to the tfjs ops",
  ignore: !avail.ok,
  async fn() {
    await initBackend("native");
    const r = new Rng(17);
    const cases: [Record<string, unknown>, number, number][] = [
      [{}, 256, 4], // the bench layer: 32 experts, 4 sequences of 256
      [{ t_i: 2, g_i: 4 }, 96, 3],
      [{ g_o: 4, r_o: 1, balance_coef: 0.5 }, 50, 50], // one group: seqLen = all tokens
      [{ g_o: 1, r_o: 3, g_i: 2, r_i: 2, t_i: 3 }, 40, 2],
    ];
    for (const [opts, T, B] of cases) {
      const cfg = { ...DEFAULT_MODEL, d_model: 64, d_ff: 96, ffn: { kind: "finermoe", ...opts } } as ModelConfig;
      const s = finermoeShape(cfg), N = T * B, D = cfg.d_model, E = s.experts;
      assert.ok(trainRoutingActive(s));
      const x = tf.tensor2d(r.normal(new Float32Array(N * D), 1), [N, D]);
      const router = tf.tensor2d(r.normal(new Float32Array(D * E), 0.3), [D, E]);
      const w = tf.tensor2d(r.normal(new Float32Array(N * E), 1), [N, E]);
      // A loss of coef and the balance loss, x and the router also used elsewhere (their gradients are sums).
      const loss = (fused: boolean) => (xs: tf.Tensor, rt: tf.Tensor) => {
        const before = tf.sum(tf.square(matmul(xs as tf.Tensor2D, rt)));
        let coef: tf.Tensor, lb: tf.Scalar;
        if (fused) ({ coef, lb } = finermoeTrainRouting(xs as tf.Tensor2D, rt, s, T));
        else {
          const q = finermoeRouting(xs as tf.Tensor2D, rt, s);
          coef = q.coef;
          lb = balanceLoss(q.probs, q.mask, s.active, T);
        }
        const after = tf.sum(tf.sin(xs));
        return tf.addN([tf.sum(tf.mul(coef, w)), tf.mul(lb, s.balance_coef), before, after]) as tf.Scalar;
      };
      const what = JSON.stringify(opts);
      const ref = finermoeRouting(x, router, s), got = finermoeTrainRouting(x, router, s, T);
      assertSameBits(got.coef.dataSync(), ref.coef.dataSync(), `${what} coef`);
      assertSameBits(
        got.lb.dataSync(),
        balanceLoss(ref.probs, ref.mask, s.active, T).dataSync(),
        `${what} balance loss`,
      );
      const want = tf.grads(loss(false))([x, router]), have = tf.grads(loss(true))([x, router]);
      assertSameBits(have[0].dataSync(), want[0].dataSync(), `${what} dx`);
      assertSameBits(have[1].dataSync(), want[1].dataSync(), `${what} drouter`);
    }
  },
});

import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backends/mod.ts";
import { nativeAvailability } from "../backends/native/mod.ts";
import type { ModelConfig } from "../core/config.ts";
import { Rng } from "../util/rng.ts";
import { finermoeShape } from "./ffn/finermoe.ts";
import { finermoeMask, maskValues } from "./finermoe_routing.ts";
import { TINY_MODEL } from "./moe_test_util.ts";

const avail = nativeAvailability();

/** Logits: normal, or rounded to a few values so that ties (within groups and of group sums) are common. */
function logits(r: Rng, n: number, ties: boolean): Float32Array {
  const z = r.normal(new Float32Array(n), 1);
  return ties ? z.map((v) => Math.round(v * 2) / 2) : z;
}

const SHAPES: Record<string, unknown>[] = [
  {},
  { t_i: 2 },
  { g_i: 4, t_i: 4 },
  { g_o: 4, r_o: 1 },
  { g_o: 1, r_o: 3, g_i: 2, r_i: 2, t_i: 3 },
  { routers: "separate" },
];
const cfgOf = (opts: Record<string, unknown>) =>
  ({ ...TINY_MODEL, d_ff: 64, ffn: { kind: "finermoe", ...opts } }) as ModelConfig;

Deno.test("finermoe maskValues: the mask of the routing kernels (cpu), bit for bit, ties included", async () => {
  await initBackend("cpu");
  const r = new Rng(31);
  for (const opts of SHAPES) {
    const s = finermoeShape(cfgOf(opts)), T = 67, groups = s.g_o * s.r_o;
    for (const ties of [false, true]) {
      const z = logits(r, T * s.experts, ties);
      const gs = s.routers === "separate" ? logits(r, T * groups, ties) : undefined;
      const want = tf.tidy(() =>
        finermoeMask(tf.tensor2d(z, [T, s.experts]), s, gs && tf.tensor2d(gs, [T, groups])).dataSync()
      );
      const got = maskValues(z, gs, s);
      assert.ok(got, `${JSON.stringify(opts)}: finite logits give a mask`);
      assert.deepEqual([...got], [...want], `${JSON.stringify(opts)} ties=${ties}`);
    }
  }
  const s = finermoeShape(cfgOf({}));
  assert.equal(maskValues(new Float32Array(s.experts).fill(NaN), undefined, s), null, "non-finite: the kernels decide");
});

Deno.test({
  name: "finermoe mask on native (from the values) equals the cpu kernels' mask",
  ignore: !avail.ok,
  async fn() {
    const s = finermoeShape(cfgOf({ t_i: 2 })), T = 33, z = logits(new Rng(5), T * s.experts, true);
    const run = async (b: "cpu" | "native") => {
      await initBackend(b);
      return tf.tidy(() => [...finermoeMask(tf.tensor2d(z, [T, s.experts]), s).dataSync()]);
    };
    assert.deepEqual(await run("native"), await run("cpu"));
  },
});

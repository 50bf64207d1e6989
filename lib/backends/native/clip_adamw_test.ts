/**
 * The gradient-norm sums (FlSumSquares), AdamW with the clip's scale inside (FlAdamW + scale), full-row sums
 * and large element-wise ops give the bits of the tfjs-backend-cpu ops they replace, for 1 and 2 threads.
 */
import * as tf from "@tensorflow/tfjs-core";
import { adamwUpdate, sumSquares } from "../fused.ts";
import { Rng } from "../../util/rng.ts";
import { nativeAvailability, setNativeThreads } from "./mod.ts";
import { assertSameBits } from "../../util/testing.ts";
import { valuesOn } from "../testing.ts";

const avail = nativeAvailability();
const ignore = !avail.ok;

// Sizes around the thread and vector boundaries, one large enough that rounding in the double sums shows;
// with the ties and the extra arrays of MANY the sums run in bundles of 4 side by side (fl_sumsq_many), full and
// partial, equal and unequal lengths.
const SIZES = [1, 3, 17, 1031, 65537, 400_003];
const MANY = [...SIZES, 65537, 400_003, 17, 5, 65537, 2];

Deno.test({
  name: "native sumSquares: the bits of sum(square(x)) on cpu, for 1 and 2 threads",
  ignore,
  async fn() {
    const r = new Rng(21), xs = SIZES.map((n, i) => r.normal(new Float32Array(n), 10 ** (i - 3)));
    const make = () => xs.map((x, i) => tf.tensor(x, i % 2 ? [x.length] : [1, x.length]));
    const ref = await valuesOn("cpu", () => make().map((x) => tf.sum(tf.square(x))));
    for (const threads of [1, 2]) {
      setNativeThreads(threads);
      const got = await valuesOn("native", () => sumSquares(make()));
      got.forEach((g, i) => assertSameBits(g, ref[i], `sumSquares n=${SIZES[i]} ${threads} thread(s)`));
      // The native Sum kernel (whole-row sums in a register) too.
      const sums = await valuesOn("native", () => make().map((x) => tf.sum(tf.square(x))));
      sums.forEach((g, i) => assertSameBits(g, ref[i], `Sum n=${SIZES[i]} ${threads} thread(s)`));
      const many = MANY.map((n, i) => r.normal(new Float32Array(n), 10 ** ((i % 7) - 3)));
      const manyRef = await valuesOn("cpu", () => many.map((x) => tf.sum(tf.square(tf.tensor(x)))));
      const manyGot = await valuesOn("native", () => sumSquares(many.map((x) => tf.tensor(x))));
      manyGot.forEach((g, i) => assertSameBits(g, manyRef[i], `sumSquares of ${MANY.length}: n=${MANY[i]} (${i})`));
      const rows = await valuesOn("native", () => [tf.sum(tf.tensor(xs[4].subarray(0, 65536), [16, 4096]), 1)]);
      const rowsRef = await valuesOn("cpu", () => [tf.sum(tf.tensor(xs[4].subarray(0, 65536), [16, 4096]), 1)]);
      assertSameBits(rows[0], rowsRef[0], `row sums ${threads} thread(s)`);
    }
    setNativeThreads(1);
  },
});

Deno.test({
  name: "native AdamW with gradScale: the bits of the composite ops on g * scale (cpu)",
  ignore,
  async fn() {
    const rng = new Rng(23);
    for (const n of [1031, 200_001]) {
      const p = rng.normal(new Float32Array(n), 1), m = rng.normal(new Float32Array(n), 0.01);
      const g = rng.normal(new Float32Array(n), 0.1);
      const v = Float32Array.from(rng.normal(new Float32Array(n), 0.01), (x) => x * x);
      for (const scale of [0.37454012, 1]) {
        const s = {
          beta1: 0.9,
          beta2: 0.95,
          eps: 1e-8,
          lr: 3e-4,
          weightDecay: 0.1,
          bc1: 1 - 0.9 ** 3,
          bc2: 1 - 0.95 ** 3,
        };
        const f = () => {
          const sc = tf.div(tf.scalar(scale), tf.scalar(1.5)); // a computed float32 scalar, as the clip's
          const u = adamwUpdate(tf.tensor(p), tf.tensor(m), tf.tensor(v), tf.tensor(g), { ...s, gradScale: sc });
          return [u.p, u.m, u.v];
        };
        const ref = await valuesOn("cpu", f);
        for (const threads of [1, 2]) {
          setNativeThreads(threads);
          const nat = await valuesOn("native", f);
          ["p", "m", "v"].forEach((name, i) => assertSameBits(nat[i], ref[i], `adamw ${name} n=${n} scale=${scale}`));
        }
      }
    }
    setNativeThreads(1);
  },
});

Deno.test({
  name: "native element-wise ops on large broadcast shapes: the bits of cpu, for 1 and 2 threads",
  ignore,
  async fn() {
    const r = new Rng(29), x = r.normal(new Float32Array(300_003), 1), y = r.normal(new Float32Array(300_003), 1);
    const t = (v: Float32Array, s: number[]) => tf.tensor(v.subarray(0, s.reduce((a, b) => a * b, 1)), s);
    const ops = () => [
      tf.add(t(x, [300, 1000]), t(y, [300, 1000])),
      tf.mul(t(x, [300, 1000]), t(y, [300, 1])),
      tf.sub(t(x, [7, 300, 100]), t(y, [300, 1])),
      tf.div(t(x, [1, 200_003]), t(y, [1])),
      tf.add(t(x, [200_003]), t(y, [200_003])),
      tf.mul(t(x, [5000, 3, 20]), t(y, [1, 3, 1])),
      tf.sub(t(x, [20, 9000]), t(y, [9000])),
    ];
    const ref = await valuesOn("cpu", ops);
    for (const threads of [1, 2]) {
      setNativeThreads(threads);
      const got = await valuesOn("native", ops);
      got.forEach((g, i) => assertSameBits(g, ref[i], `op ${i}, ${threads} thread(s)`));
    }
    setNativeThreads(1);
  },
});

/**
 * The native backend against tfjs's reference kernels (the `cpu` backend running the composite
 * ops of lib/backends/fused.ts), on random shapes including odd sizes, forward and gradients.
 * Skipped (with the reason printed) where no CBLAS or C compiler is available. Fallbacks, errors
 * and whole training runs in subprocesses are in native_process_test.ts.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../mod.ts";
import {
  adamwUpdate,
  causalSelfAttention,
  crossEntropy,
  expertGate,
  finedeepBlock,
  gatedMul,
  rmsnorm,
  swiglu,
} from "../fused.ts";
import { Rng } from "../../util/rng.ts";
import { loadKernels, nativeAvailability, setNativeThreads } from "./mod.ts";
import { findCompiler } from "./build.ts";
import { FD_ROWS } from "./backend.ts";
import { valuesOn } from "../testing.ts";
import { assertSameBits } from "../../util/testing.ts";

const avail = nativeAvailability();
const ignore = !avail.ok;
if (ignore) console.log(`native backend tests skipped: ${avail.why}. To run them: ${avail.fix}`);

Deno.test({
  // Every native test skips when the backend is unavailable; a C error in kernels/*.c must not pass as a skip.
  name: "native kernels compile and load wherever a C compiler runs (a compile error fails here, not as skips)",
  ignore: findCompiler() === null,
  fn() {
    const kern = loadKernels(); // throws NativeBuildError with the compiler's first lines
    assert.ok(
      kern.build.path.endsWith(".so") || kern.build.path.endsWith(".dylib") || kern.build.path.endsWith(".dll"),
    );
    assert.equal(typeof kern.k.fl_sumsq_many, "function");
  },
});

type Backend = "cpu" | "native";

function randn(rng: Rng, n: number, scale = 1): Float32Array {
  return rng.normal(new Float32Array(n), scale);
}

/** |a - b| <= atol + rtol * |b| elementwise; the message names the first failing index. */
function assertClose(a: Float32Array, b: Float32Array, what: string, rtol = 1e-4, atol = 1e-6): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  let worst = -1, worstErr = 0;
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i] - b[i]) - (atol + rtol * Math.abs(b[i]));
    if (!(err <= 0) && (worst < 0 || err > worstErr || Number.isNaN(err))) {
      worst = i;
      worstErr = err;
    }
  }
  if (worst >= 0) assert.fail(`${what}: index ${worst}: native ${a[worst]} vs reference ${b[worst]}`);
}

function assertBitEqual(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what}: index ${i}: ${a[i]} vs ${b[i]}`);
  }
}

/** Values and gradients of sum(f(inputs) * w) with respect to all inputs, on both backends. */
async function compareWithGrads(
  what: string,
  shapes: number[][],
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  opts: { seed?: number; rtol?: number; atol?: number; gradRtol?: number; gradAtol?: number } = {},
): Promise<void> {
  const rng = new Rng(opts.seed ?? 1);
  const inputs = shapes.map((s) => randn(rng, s.reduce((a, b) => a * b, 1)));
  let wVals: Float32Array | null = null;
  const run = (backend: Backend) =>
    valuesOn(backend, () => {
      const xs = inputs.map((v, i) => tf.tensor(v, shapes[i]));
      const y = f(...xs);
      wVals ??= randn(new Rng(99), y.size);
      const w = tf.tensor(wVals, y.shape);
      const grads = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), w)))(xs);
      return [y, ...grads];
    });
  const ref = await run("cpu"), nat = await run("native");
  assertClose(nat[0], ref[0], `${what} forward`, opts.rtol, opts.atol);
  for (let i = 1; i < ref.length; i++) {
    assertClose(nat[i], ref[i], `${what} gradient of input ${i - 1}`, opts.gradRtol ?? 1e-3, opts.gradAtol ?? 1e-5);
  }
}

Deno.test({
  name: "native BatchMatMul equals the reference on odd, transposed and batched shapes",
  ignore,
  async fn() {
    const rng = new Rng(3);
    const cases: [number[], number[], boolean, boolean][] = [
      [[1, 1], [1, 1], false, false],
      [[7, 5], [5, 3], false, false],
      [[5, 7], [5, 3], true, false],
      [[7, 5], [3, 5], false, true],
      [[5, 7], [3, 5], true, true],
      [[2, 3, 9, 4], [2, 3, 4, 6], false, false],
      [[2, 3, 4, 9], [2, 3, 6, 4], true, true],
      [[4, 9, 5], [5, 11], false, false], // batch folded into rows
      [[4, 5, 9], [5, 11], true, false],
      [[9, 5], [3, 5, 2], false, false], // batch-1 left operand
      [[130, 67], [67, 33], false, false],
    ];
    for (const [sa, sb, tA, tB] of cases) {
      const a = randn(rng, sa.reduce((x, y) => x * y, 1)), b = randn(rng, sb.reduce((x, y) => x * y, 1));
      const f = () => [tf.matMul(tf.tensor(a, sa), tf.tensor(b, sb), tA, tB)];
      const [ref] = await valuesOn("cpu", f), [nat] = await valuesOn("native", f);
      assertClose(nat, ref, `matmul [${sa}]${tA ? "ᵀ" : ""} x [${sb}]${tB ? "ᵀ" : ""}`, 1e-5, 1e-5);
    }
  },
});

Deno.test({
  name: "native RMSNorm forward and gradients match the composite ops",
  ignore,
  async fn() {
    for (const [n, d] of [[1, 1], [7, 5], [3, 33], [130, 128]]) {
      await compareWithGrads(`rmsnorm [${n},${d}]`, [[n, d], [d]], (x, g) => rmsnorm(x, g, 1e-5));
      await compareWithGrads(`rmsnorm without gain [${n},${d}]`, [[n, d]], (x) => rmsnorm(x, null, 1e-5));
    }
  },
});

Deno.test({
  name: "native causal attention forward and gradient match the composite ops (RoPE, mask, softmax)",
  ignore,
  async fn() {
    const cases = [[1, 1, 1, 2], [2, 5, 3, 6], [1, 17, 2, 18], [2, 33, 1, 32], [1, 40, 4, 10]];
    for (const [B, T, H, hd] of cases) {
      const half = hd / 2, cos = new Float32Array(T * half), sin = new Float32Array(T * half);
      for (let t = 0; t < T; t++) {
        for (let j = 0; j < half; j++) {
          const ang = t * Math.pow(10000, -(2 * j) / hd);
          cos[t * half + j] = Math.cos(ang);
          sin[t * half + j] = Math.sin(ang);
        }
      }
      const mask = new Float32Array(T * T);
      for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -1e9;
      await compareWithGrads(
        `attention B=${B} T=${T} H=${H} hd=${hd}`,
        [[B * T, 3 * H * hd]],
        (qkv) =>
          causalSelfAttention(qkv as tf.Tensor2D, {
            batch: B,
            seqLen: T,
            heads: H,
            cos: tf.tensor2d(cos, [T, half]),
            sin: tf.tensor2d(sin, [T, half]),
            mask: tf.tensor2d(mask, [T, T]),
          }),
        { seed: B * 1000 + T },
      );
    }
  },
});

Deno.test({
  name: "native SwiGLU forward and gradient match silu(a) * b",
  ignore,
  async fn() {
    for (const [n, h] of [[1, 1], [5, 7], [9, 33], [64, 384]]) {
      await compareWithGrads(`swiglu [${n},${2 * h}]`, [[n, 2 * h]], (ab) => swiglu(ab as tf.Tensor2D), {
        seed: n + h,
      });
    }
  },
});

Deno.test({
  name: "native expert gates forward and gradients match the composite ops",
  ignore,
  async fn() {
    for (const [n, k, e] of [[1, 1, 1], [5, 3, 7], [70, 4, 24], [130, 2, 33]]) {
      await compareWithGrads(
        `expert gate N=${n} K=${k} E=${e}`,
        [[n, k * e], [k, e]],
        (prod, u) => expertGate(prod as tf.Tensor2D, u, k),
        { seed: n * 31 + k },
      );
    }
  },
});

Deno.test({
  name: "native cross-entropy matches one-hot x logSoftmax, including out-of-range targets",
  ignore,
  async fn() {
    const rng = new Rng(7);
    for (const [n, v] of [[1, 2], [6, 3], [13, 17], [300, 256]]) { // tf.oneHot (the reference) needs depth >= 2
      const ids = Int32Array.from({ length: n }, () => rng.int(v));
      if (n > 5) ids[2] = v + 3; // out of range: contributes 0, like an all-zero one-hot row
      await compareWithGrads(
        `cross-entropy [${n},${v}]`,
        [[n, v]],
        (logits) => crossEntropy(logits as tf.Tensor2D, tf.tensor1d(ids, "int32")),
        { seed: n, rtol: 1e-5, atol: 1e-6 },
      );
    }
  },
});

Deno.test({
  name: "native AdamW update is bit-identical to the composite tfjs ops",
  ignore,
  async fn() {
    const rng = new Rng(11), n = 1031;
    const p = randn(rng, n), m = randn(rng, n, 0.01), g = randn(rng, n, 0.1);
    const v = Float32Array.from(randn(rng, n, 0.01), (x) => x * x);
    for (const weightDecay of [0.1, 0]) {
      const s = { beta1: 0.9, beta2: 0.95, eps: 1e-8, lr: 3e-4, weightDecay, bc1: 1 - 0.9 ** 3, bc2: 1 - 0.95 ** 3 };
      const f = () => {
        const u = adamwUpdate(tf.tensor(p), tf.tensor(m), tf.tensor(v), tf.tensor(g), s);
        return [u.p, u.m, u.v];
      };
      const ref = await valuesOn("cpu", f), nat = await valuesOn("native", f);
      for (const [i, name] of ["p", "m", "v"].entries()) {
        assertBitEqual(nat[i], ref[i], `adamw ${name} wd=${weightDecay}`);
      }
    }
  },
});

Deno.test({
  name: "native data-movement and element-wise kernels equal the cpu kernels exactly",
  ignore,
  async fn() {
    const rng = new Rng(13);
    const x = randn(rng, 3 * 5 * 7), y = randn(rng, 3 * 5 * 7);
    const ids = Int32Array.from([4, 0, 2, 2, 9, 1, 4]);
    const cases: [string, () => tf.Tensor[]][] = [
      ["add", () => [tf.add(tf.tensor(x, [3, 5, 7]), tf.tensor(y, [3, 5, 7]))]],
      ["addN", () => [tf.addN([tf.tensor(x, [105]), tf.tensor(y, [105]), tf.tensor(x, [105])])]],
      ["mul", () => [tf.mul(tf.tensor(x, [3, 35]), tf.tensor(y, [3, 35]))]],
      ["mul scalar", () => [tf.mul(tf.tensor(x, [3, 35]), tf.scalar(0.37)), tf.mul(tf.scalar(-2.5), tf.tensor(y))]],
      ["broadcast mul", () => [tf.mul(tf.tensor(x, [3, 5, 7]), tf.tensor(y.subarray(0, 7), [1, 1, 7]))]],
      ["broadcast mul (inner 1)", () => [tf.mul(tf.tensor(x, [3, 5, 7]), tf.tensor(y.subarray(0, 15), [3, 5, 1]))]],
      ["broadcast add", () => [tf.add(tf.tensor(x.subarray(0, 5), [5, 1]), tf.tensor(y.subarray(0, 7), [7]))]],
      ["broadcast sub", () => [tf.sub(tf.tensor(x, [3, 5, 7]), tf.tensor(y.subarray(0, 35), [5, 7]))]],
      ["broadcast div", () => [tf.div(tf.tensor(x, [3, 5, 7]), tf.tensor(y.subarray(0, 3), [3, 1, 1]))]],
      ["scalar div", () => [tf.div(tf.scalar(2.5), tf.tensor(y, [105]))]],
      [
        "sum",
        () => [tf.sum(tf.tensor(x, [3, 5, 7]), -1), tf.sum(tf.tensor(x, [3, 5, 7]), 0, true), tf.sum(tf.tensor(x))],
      ],
      ["sum of middle axes", () => [tf.sum(tf.tensor(x, [3, 5, 7]), [1, 2]), tf.sum(tf.tensor(x, [3, 5, 7]), 1)]],
      ["mean", () => [tf.mean(tf.tensor(x, [3, 5, 7]), -1, true), tf.mean(tf.tensor(x, [3, 5, 7]), [0, 1])]],
      ["sum of non-adjacent axes (cpu fallback)", () => [tf.sum(tf.tensor(x, [3, 5, 7]), [0, 2])]],
      ["unary", () => {
        const t = tf.tensor(x, [105]), pos = tf.abs(t);
        return [tf.square(t), tf.neg(t), tf.sigmoid(t), tf.rsqrt(pos), tf.sqrt(pos)];
      }],
      [
        "transpose",
        () => [tf.transpose(tf.tensor(x, [3, 5, 7]), [2, 0, 1]), tf.transpose(tf.tensor(x, [3, 5, 7]), [1, 0, 2])],
      ],
      ["slice", () => [tf.slice(tf.tensor(x, [3, 5, 7]), [1, 2, 3], [2, 2, 4])]],
      ["split", () => tf.split(tf.tensor(x, [3, 5, 7]), [2, 5], 2)],
      ["concat", () => {
        const a = tf.tensor(x, [3, 5, 7]);
        return [tf.concat([a, tf.tensor(y.subarray(0, 30), [3, 5, 2])], 2), tf.concat([a, a], 0), tf.concat([a, a], 1)];
      }],
      [
        "concat int32",
        () => [tf.cast(tf.concat([tf.tensor1d(ids, "int32"), tf.tensor1d(ids, "int32")], 0), "float32")],
      ],
      ["topk non-finite (cpu fallback)", () => {
        const { values, indices } = tf.topk(tf.tensor([1, Infinity, -Infinity, 2, Infinity, 0], [2, 3]), 2);
        return [values, tf.cast(indices, "float32")];
      }],
      ["topk", () => {
        // Rounded values: many ties, which must go to the lower index as on cpu; and -0 next to 0.
        const r = tf.tensor(x.map((v) => Math.round(v * 2) / 2 || (v < 0 ? -0 : 0)), [15, 7]);
        return [1, 2, 3, 7].flatMap((k) => {
          const { values, indices } = tf.topk(r, k);
          return [values, tf.cast(indices, "float32")];
        });
      }],
      ["gather", () => [tf.gather(tf.tensor(x, [15, 7]), tf.tensor1d(ids.map((i) => i % 15), "int32"))]],
      ["segment sum", () => [tf.unsortedSegmentSum(tf.tensor(x, [7, 15]), tf.tensor1d(ids, "int32"), 6)]],
    ];
    for (const [what, f] of cases) {
      const ref = await valuesOn("cpu", f), nat = await valuesOn("native", f);
      assert.equal(nat.length, ref.length);
      for (let i = 0; i < ref.length; i++) assertBitEqual(nat[i], ref[i], what);
    }
  },
});

Deno.test({
  name: "native Softmax (last axis) matches the cpu kernel on odd shapes, values and gradients",
  ignore,
  async fn() {
    for (const shape of [[1], [5, 1], [7, 3], [2, 3, 33], [64, 300]]) {
      await compareWithGrads(`softmax [${shape}]`, [shape], (x) => tf.softmax(x), { rtol: 1e-5, atol: 1e-7 });
    }
  },
});

Deno.test({
  name: "native Softmax gives exact zeros for masked (-1e9) logits, never subnormals",
  ignore,
  async fn() {
    const logits = Float32Array.from([0, -1e9, 3, -1e9, -90, -200, 1, 2]);
    const [p] = await valuesOn("native", () => [tf.softmax(tf.tensor2d(logits, [2, 4]))]);
    for (const i of [1, 3]) assert.equal(p[i], 0, `masked probability ${i}`);
    for (const v of p) assert.ok(v === 0 || Math.abs(v) >= 1.1754943508222875e-38, `subnormal ${v}`);
    const [ref] = await valuesOn("cpu", () => [tf.softmax(tf.tensor2d(logits, [2, 4]))]);
    assertClose(p, ref, "softmax with masked logits", 1e-6, 1e-30);
  },
});

Deno.test({
  name: "native fused kernels give the same bits with 1 and 2 threads",
  ignore,
  async fn() {
    const rng = new Rng(17), B = 2, T = 33, H = 2, hd = 16;
    const qkv = randn(rng, B * T * 3 * H * hd), cos = randn(rng, T * hd / 2), sin = randn(rng, T * hd / 2);
    const x = randn(rng, 200 * 64), g = randn(rng, 64);
    const f = () => {
      const q = tf.tensor2d(qkv, [B * T, 3 * H * hd]);
      const att = (t: tf.Tensor) =>
        causalSelfAttention(t as tf.Tensor2D, {
          batch: B,
          seqLen: T,
          heads: H,
          cos: tf.tensor2d(cos, [T, hd / 2]),
          sin: tf.tensor2d(sin, [T, hd / 2]),
          mask: tf.zeros([T, T]),
        });
      const xs = tf.tensor2d(x, [200, 64]);
      // A Finedeep block of 3 sub-layers x 3 experts of width 7.
      const fd = (r: Rng) => ({
        w13: tf.tensor2d(randn(r, 64 * 42), [64, 42]),
        w2: tf.tensor2d(randn(r, 21 * 64), [21, 64]),
        router: tf.tensor2d(randn(r, 3 * 64), [3, 64]),
      });
      // Three row blocks of the fused kernels (FD_ROWS; the last one short): block sums are covered,
      // and with 2 threads one thread takes two blocks.
      const fr = new Rng(5), subs = [fd(fr), fd(fr), fd(fr)], R = 2 * FD_ROWS + 88;
      const h = tf.tensor2d(randn(fr, R * 64), [R, 64]), xf = tf.tensor2d(randn(fr, R * 64), [R, 64]);
      const block = (a: tf.Tensor, b: tf.Tensor) =>
        finedeepBlock(a as tf.Tensor2D, b as tf.Tensor2D, subs, { k: 3, eps: 1e-5 })!;
      return [
        block(xf, h),
        ...tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(block(a, b))))([xf, h]),
        ...tf.grads((w: tf.Tensor, r: tf.Tensor) =>
          tf.sum(
            tf.square(finedeepBlock(xf, h, [subs[0], { ...subs[1], w2: w, router: r }, subs[2]], { k: 3, eps: 1e-5 })!),
          )
        )([subs[1].w2, subs[1].router]),
        att(q),
        tf.grad((t: tf.Tensor) => tf.sum(tf.square(att(t))))(q),
        ...tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(rmsnorm(a, b, 1e-5))))([xs, tf.tensor(g)]),
      ];
    };
    try {
      await initBackend("native");
      setNativeThreads(1);
      const one = await valuesOn("native", f);
      setNativeThreads(2);
      const two = await valuesOn("native", f);
      for (let i = 0; i < one.length; i++) assertBitEqual(two[i], one[i], `output ${i}`);
    } finally {
      setNativeThreads(1);
    }
  },
});

Deno.test({
  name: "native gatedMul: y·sigmoid(z) and the gradients of y and z bit-identical to mul(y, sigmoid(z)) on cpu",
  ignore,
  async fn() {
    const r = new Rng(31);
    // 300 x 1000 takes the kernels' parallel path (> 262144 elements)
    for (const [N, D] of [[1, 1], [37, 19], [64, 256], [300, 1000]]) {
      const yv = randn(r, N * D), zv = randn(r, N, 4), dv = randn(r, N * D);
      zv[0] = 30, zv[N - 1] = -30; // saturated gates
      const f = () => {
        const y = tf.tensor2d(yv, [N, D]), z = tf.tensor2d(zv, [N, 1]), dy = tf.tensor2d(dv, [N, D]);
        const g = (a: tf.Tensor, b: tf.Tensor) => gatedMul(a as tf.Tensor2D, b as tf.Tensor2D);
        return [g(y, z), ...tf.grads(g)([y, z], dy)];
      };
      const ref = await valuesOn("cpu", f);
      for (const threads of [1, 2]) {
        setNativeThreads(threads);
        const got = await valuesOn("native", f);
        ["value", "dy", "dz"].forEach((what, i) => assertSameBits(got[i], ref[i], `${what} [${N}, ${D}] ${threads}t`));
      }
    }
    setNativeThreads(1);
  },
});

Deno.test({
  name:
    "native Sigmoid: the 8-lane sigmoid (fl.h sigmoid_exact) gives the scalar formula's bits, near float midpoints too",
  ignore,
  async fn() {
    await initBackend("native");
    const k = loadKernels().k, r = new Rng(41);
    const xs: number[] = [
      0,
      -0,
      1e-45,
      -1e-45,
      1e-30,
      17,
      36.7,
      37.5,
      80,
      -80,
      80.01,
      -80.01,
      88,
      -88,
      90,
      -90,
      104,
      -104,
    ];
    xs.push(700, -700, 3e38, -3e38, Infinity, -Infinity, NaN);
    for (let i = 0; i < 400_000; i++) xs.push((r.next() - 0.5) * 200);
    for (let i = 0; i < 100_000; i++) xs.push(r.normal(new Float32Array(1), 4)[0]);
    // Inputs whose sigmoid (as a double) lies within 2^20 double ulps of a midpoint between two floats: both sides
    // of the kernel's 4096-ulp test (the exact scalar fallback inside, the 8-lane result outside).
    const d = new Float64Array(1), bits = new BigUint64Array(d.buffer), mid = 1n << 28n, low = (1n << 29n) - 1n;
    let near = 0;
    for (let i = 0; i < 2_000_000 && near < 3000; i++) {
      const a = Math.fround((r.next() - 0.5) * 60);
      d[0] = 1 / (1 + Math.exp(-a));
      const e = (bits[0] & low) - mid;
      if (e > -(1n << 20n) && e < 1n << 20n) xs.push(a), near++;
    }
    assert.ok(near >= 1000, `only ${near} inputs near a midpoint`);
    const x = Float32Array.from(xs), n = x.length, ref = new Float32Array(n);
    // The rounding test's premise: the 8-lane double is within a few ulps of the scalar one (it allows 4096).
    const ulps = k.fl_sigmoid_max_ulps(x, n - (n % 8)) as number;
    assert.ok(ulps <= 16, `8-lane sigmoid ${ulps} ulps from the scalar formula`);
    k.fl_sigmoid_scalar(x, ref, n);
    for (const threads of [1, 2]) {
      setNativeThreads(threads);
      const got = new Float32Array(n);
      k.fl_unary(2, x, got, n);
      assertSameBits(got, ref, `sigmoid of ${n} values, ${threads} thread(s)`);
    }
    setNativeThreads(1);
  },
});

/**
 * Fused model ops: one kernel call forward and one backward on backends that register the fused
 * kernel (`native`: lib/backends/native/; `wasm`: wasm_fused.ts; `webgpu`: webgpu_fused.ts, the
 * Finedeep block only), and otherwise exactly the composite tfjs
 * ops the model used before, in the same order (so results on wasm/cpu/webgpu do not change).
 *
 * | op | fused kernels | composite |
 * |---|---|---|
 * | {@link rmsnorm} | FlRmsNorm / FlRmsNormGrad | `x * rsqrt(mean(x²) + eps) * g` |
 * | {@link causalSelfAttention} | FlAttention / FlAttentionGrad | heads, RoPE, scale, QKᵀ + mask, softmax, PV |
 * | {@link swiglu} | FlSwiglu / FlSwigluGrad | `silu(a) * b` of `[a | b]` |
 * | {@link expertGate} | FlExpertGate / FlExpertGateGrad | per-expert `sigmoid(prod · u)` gates applied to prod |
 * | {@link gatedMul} | FlGatedMul / FlGatedMulGrad | `y · sigmoid(z)`, z one column (bit-identical to the composite) |
 * | {@link finedeepBlock} | FlFinedeep / FlFinedeepGrad | none: returns null, the caller runs lib/models/ffn/finedeep.ts's ops |
 * | {@link crossEntropy} | FlCrossEntropy / FlCrossEntropyGrad | `mean(-sum(onehot * logSoftmax))` |
 * | {@link adamwUpdate} | FlAdamW | the AdamW formula of lib/train/optim.ts (native: with the clip's `g * scale`) |
 * | {@link sumSquares} | FlSumSquares (native) | `sum(square(x))` per tensor |
 *
 * Gradients of the fused forms are `tf.customGrad` functions calling the fused backward kernels.
 * Call inside `tf.tidy`, as the model does.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { batchMatmul, silu, splitLast } from "./ops.ts";

/** Whether the active backend has kernel `name` (fused forms are used only then). */
export function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

const run = (name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}) =>
  tf.engine().runKernel(name, inputs, attrs) as tf.Tensor | tf.Tensor[];

/** Options of {@link fusedOp}. */
interface FusedOpOptions {
  /** Attributes of both kernels. */
  attrs?: tf.NamedAttrMap;
  /** Names, as inputs of the backward kernel, of the forward kernel's outputs after the value. */
  outputs?: readonly string[];
  /** Inputs of both kernels that get no gradient (tables, integer targets). */
  consts?: tf.NamedTensorMap;
}

/**
 * Fused kernel `fwd` and its backward kernel `<fwd>Grad` as one differentiable op of `inputs` (in
 * their order). The forward kernel runs on the inputs and `consts` and returns the value, then the
 * `outputs`; the backward kernel gets `dy`, the inputs, the outputs and the consts by name and returns
 * the inputs' gradients in order. Everything the backward reads is saved: tensors merely captured may
 * be disposed by then.
 */
function fusedOp(fwd: string, inputs: tf.NamedTensorMap, opts: FusedOpOptions = {}): tf.Tensor {
  const names = Object.keys(inputs), outputs = opts.outputs ?? [], consts = opts.consts ?? {};
  const constNames = Object.keys(consts), attrs = opts.attrs ?? {};
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc, xs = args as tf.Tensor[];
    const r = run(fwd, { ...Object.fromEntries(names.map((n, i) => [n, xs[i]])), ...consts }, attrs);
    const [value, ...more] = Array.isArray(r) ? r : [r];
    save([...xs, ...more, ...constNames.map((n) => consts[n])]);
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const all = [...names, ...outputs, ...constNames];
        return run(
          `${fwd}Grad`,
          { dy: dy as tf.Tensor, ...Object.fromEntries(all.map((n, i) => [n, saved[i]])) },
          attrs,
        );
      },
    };
  });
  return f(...names.map((n) => inputs[n]));
}

// ---- RMSNorm -------------------------------------------------------------------------------------

/**
 * `x * rsqrt(mean(x², last axis) + eps) * gain` over the last axis of x; `gain = null` for a
 * norm without gain (`x * rsqrt(mean(x²) + eps)`).
 */
export function rmsnorm<T extends tf.Tensor>(x: T, gain: tf.Tensor | null, eps: number): T {
  if (!hasKernel("FlRmsNorm") || x.dtype !== "float32") {
    const ms = tf.mean(tf.square(x), -1, true);
    const normed = tf.mul(x, tf.rsqrt(tf.add(ms, eps)));
    return (gain ? tf.mul(normed, gain) : normed) as T;
  }
  return fusedOp("FlRmsNorm", gain ? { x, g: gain } : { x }, { attrs: { eps }, outputs: ["rstd"] }) as T;
}

// ---- attention -----------------------------------------------------------------------------------

/** Shapes and tables of {@link causalSelfAttention}. */
export interface AttentionOptions {
  /** Sequences in the batch (B). */
  batch: number;
  /** Tokens per sequence (T). */
  seqLen: number;
  /** Attention heads (H); head_dim = d / H. */
  heads: number;
  /** RoPE cos table [T, head_dim/2]. */
  cos: tf.Tensor2D;
  /** RoPE sin table [T, head_dim/2]. */
  sin: tf.Tensor2D;
  /** Additive causal mask [T, T] (0 on and below the diagonal, -1e9 above). Used by the composite form. */
  mask: tf.Tensor2D;
}

/** Rotate-half RoPE on x [B, heads, T, head_dim] with tables [T, head_dim/2]. */
export function rope(x: tf.Tensor4D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor4D {
  const half = x.shape[3] / 2;
  const [x1, x2] = splitLast(x, [half, half]);
  return tf.concat([tf.sub(tf.mul(x1, cos), tf.mul(x2, sin)), tf.add(tf.mul(x1, sin), tf.mul(x2, cos))], -1);
}

/**
 * Causal multi-head self-attention from the packed projection `qkv = x @ [wq | wk | wv]`
 * ([B*T, 3d]; head h of q is columns h*hd..(h+1)*hd, likewise k after d and v after 2d) to the
 * heads' outputs concatenated, [B*T, d] (before the output projection). q and k get RoPE, q is
 * scaled by 1/sqrt(head_dim), and position i attends to positions <= i.
 */
export function causalSelfAttention(qkv: tf.Tensor2D, o: AttentionOptions): tf.Tensor2D {
  const { batch: B, seqLen: T, heads: nh } = o;
  const d = qkv.shape[1] / 3, hd = d / nh;
  if (!Number.isInteger(d) || !Number.isInteger(hd) || qkv.shape[0] !== B * T) {
    throw new Error(`causalSelfAttention: qkv [${qkv.shape}] does not fit batch ${B} x seq ${T}, ${nh} heads`);
  }
  const scale = 1 / Math.sqrt(hd);
  if (!hasKernel("FlAttention") || qkv.dtype !== "float32") {
    const heads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [B, T, nh, hd]), [0, 2, 1, 3]) as tf.Tensor4D;
    const [q0, k0, v0] = splitLast(qkv, [d, d, d]).map(heads);
    const q = tf.mul(rope(q0, o.cos, o.sin), scale) as tf.Tensor4D, k = rope(k0, o.cos, o.sin);
    const att = tf.softmax(tf.add(batchMatmul(q, k, false, true), o.mask)); // [B, nh, T, T]
    const out = batchMatmul(att, v0); // [B, nh, T, hd]
    return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [B * T, d]);
  }
  const attrs = { batch: B, seqLen: T, heads: nh, scale };
  return fusedOp("FlAttention", { qkv }, { attrs, outputs: ["P"], consts: { cos: o.cos, sin: o.sin } }) as tf.Tensor2D;
}

// ---- SwiGLU ----------------------------------------------------------------------------------------

/** `silu(a) * b` where `[a | b] = ab` splits the last axis of ab [N, 2H] in halves. */
export function swiglu(ab: tf.Tensor2D): tf.Tensor2D {
  const h = ab.shape[1] / 2;
  if (!Number.isInteger(h)) throw new Error(`swiglu: the last axis of [${ab.shape}] must be even`);
  if (!hasKernel("FlSwiglu") || ab.dtype !== "float32") {
    const [a, b] = splitLast(ab, [h, h]); // gate, up
    return tf.mul(silu(a), b);
  }
  return fusedOp("FlSwiglu", { ab }) as tf.Tensor2D;
}

// ---- fine-grained expert gates ----------------------------------------------------------------------

/**
 * Output-guided sigmoid gates of K fine-grained experts (Finedeep, compute.md §5): with `prod`
 * [N, K*E] the experts' hidden activations (expert k owns columns k*E..(k+1)*E) and `u` [K*E]
 * (u_k = W2_k r_k, any shape with K*E elements), the gate of expert k is
 * `g = sigmoid(sum_e prod[:, k*E+e] * u[k*E+e])` and the result is `prod` with each expert's block
 * scaled by its gate ([N, K*E]); `gated @ W2` is then the gate-weighted sum of the experts'
 * outputs. Composite: `mul(prod, u)`, sum per block, sigmoid, broadcast multiply.
 */
export function expertGate(prod: tf.Tensor2D, u: tf.Tensor, k: number): tf.Tensor2D {
  const [N, H] = prod.shape, E = H / k;
  if (!Number.isInteger(E) || u.size !== H) {
    throw new Error(`expertGate: prod [${prod.shape}] and u [${u.shape}] do not fit ${k} experts`);
  }
  if (!hasKernel("FlExpertGate") || prod.dtype !== "float32" || u.dtype !== "float32") {
    const pu = tf.mul(prod, tf.reshape(u, [1, H]));
    const g = tf.sigmoid(tf.sum(tf.reshape(pu, [N, k, E]), -1));
    return tf.reshape(tf.mul(tf.reshape(prod, [N, k, E]), tf.reshape(g, [N, k, 1])), [N, H]);
  }
  return fusedOp("FlExpertGate", { prod, u }, { attrs: { k }, outputs: ["g"] }) as tf.Tensor2D;
}

/**
 * `y · sigmoid(z)` for y [N, D] and one gate column z [N, 1] (FineRMoE's gated shared expert): the composite
 * `mul(y, sigmoid(z))`, or where the backend has FlGatedMul one kernel each way with the SAME bits as the
 * composite and its tape gradient (tested), instead of ~10 small kernels.
 */
export function gatedMul(y: tf.Tensor2D, z: tf.Tensor2D): tf.Tensor2D {
  if (z.shape[0] !== y.shape[0] || z.shape[1] !== 1) {
    throw new Error(`gatedMul: z [${z.shape}] must be one column for y [${y.shape}]`);
  }
  if (!hasKernel("FlGatedMul") || y.dtype !== "float32" || z.dtype !== "float32") return tf.mul(y, tf.sigmoid(z));
  return fusedOp("FlGatedMul", { y, z }, { outputs: ["g"] }) as tf.Tensor2D;
}

// ---- Finedeep block ---------------------------------------------------------------------------------

/** One Finedeep sub-layer's parameters for {@link finedeepBlock}. */
export interface FinedeepSubLayer {
  /** [d, 2H]: the K experts' gate columns, then their up columns (H = K*E). */
  w13: tf.Tensor;
  /** [H, d]: the experts' down-projections, expert k owns rows k*E..(k+1)*E. */
  w2: tf.Tensor;
  /** [K, d]: one router vector per expert. */
  router: tf.Tensor;
}

/**
 * The default Finedeep FFN block (lib/models/ffn/finedeep.ts: output-guided sigmoid gates, one
 * router per expert, gainless RMSNorm before each inner sub-layer) as ONE fused kernel forward and
 * one backward, where the backend has them (`FlFinedeep`: native, wasm): for m = 0..M-1,
 * `x_m = m ? rmsnorm(h + y_0 + .. + y_{m-1}) : x`, `y_m = expertGate(swiglu(x_m W13_m), W2_m r_m) W2_m`;
 * returns `Σ y_m` [N, d]. The sub-layers' small element-wise passes and the stream's gradient
 * accumulation are fused, and the block costs the engine one call each way instead of ~15 per
 * sub-layer. `residual` (h) is needed when there is more than one sub-layer.
 *
 * Returns null where the backend has no fused form: the caller then runs its composite ops.
 */
export function finedeepBlock(
  x: tf.Tensor2D,
  residual: tf.Tensor2D | null,
  subs: readonly FinedeepSubLayer[],
  opts: { k: number; eps: number },
): tf.Tensor2D | null {
  if (!hasKernel("FlFinedeep") || x.dtype !== "float32") return null;
  const M = subs.length, K = opts.k, [N, d] = x.shape;
  const H = subs[0]?.w2.shape[0];
  if (M < 1 || (M > 1 && !residual) || H === undefined || H % K !== 0) {
    throw new Error(`finedeepBlock: ${M} sub-layers, k = ${K}, residual ${residual ? "given" : "missing"}`);
  }
  for (const [i, s] of subs.entries()) {
    const ok = s.w13.shape.join() === `${d},${2 * H}` && s.w2.shape.join() === `${H},${d}` &&
      s.router.shape.join() === `${K},${d}`;
    if (!ok) {
      throw new Error(
        `finedeepBlock: sub-layer ${i} has w13 [${s.w13.shape}], w2 [${s.w2.shape}], router [${s.router.shape}]; ` +
          `expected [${d},${2 * H}], [${H},${d}], [${K},${d}]`,
      );
    }
  }
  if (residual && residual.shape.join() !== `${N},${d}`) {
    throw new Error(`finedeepBlock: residual [${residual.shape}] does not match x [${x.shape}]`);
  }
  const useH = M > 1;
  const inputs: tf.NamedTensorMap = { x, ...(useH ? { h: residual! } : {}) };
  subs.forEach((s, i) => Object.assign(inputs, { [`w13_${i}`]: s.w13, [`w2_${i}`]: s.w2, [`r_${i}`]: s.router }));
  const outputs = [
    ...["ab", "gated", "g", "u"].flatMap((p) => subs.map((_, i) => `${p}_${i}`)),
    ...["xm", "rstd"].flatMap((p) => subs.slice(1).map((_, i) => `${p}_${i + 1}`)),
  ];
  return fusedOp("FlFinedeep", inputs, { attrs: { m: M, k: K, eps: opts.eps }, outputs }) as tf.Tensor2D;
}

// ---- cross-entropy -----------------------------------------------------------------------------------

/**
 * Mean next-token cross-entropy (nats) of logits [N, V] against target ids [N] (or any shape with
 * N elements). A target outside [0, V) contributes 0 (its one-hot row is all zeros).
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor): tf.Scalar {
  const V = logits.shape[1];
  const ids = tf.reshape(targets.dtype === "int32" ? targets : tf.cast(targets, "int32"), [-1]);
  if (ids.shape[0] !== logits.shape[0]) {
    throw new Error(`crossEntropy: ${ids.shape[0]} targets for ${logits.shape[0]} rows of logits`);
  }
  if (!hasKernel("FlCrossEntropy") || logits.dtype !== "float32") {
    const onehot = tf.oneHot(ids, V, 1, 0, "float32");
    const nll = tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), -1));
    return tf.mean(nll);
  }
  return fusedOp("FlCrossEntropy", { logits }, { outputs: ["lse"], consts: { targets: ids } }) as tf.Scalar;
}

// ---- AdamW ---------------------------------------------------------------------------------------------

/** Scalars of one AdamW update of one parameter. */
export interface AdamWScalars {
  beta1: number;
  beta2: number;
  eps: number;
  /** Learning rate of this step. */
  lr: number;
  /** Weight decay applied to this parameter (0 for none). */
  weightDecay: number;
  /** 1 - beta1^t. */
  bc1: number;
  /** 1 - beta2^t. */
  bc2: number;
  /** A scalar tensor multiplying g first (global-norm clipping: `g * scale`); none: g as it is. */
  gradScale?: tf.Tensor | null;
}

/**
 * One AdamW update (the formula in lib/train/optim.ts): returns the new parameter and moments;
 * the caller assigns them. Fused into one kernel where available.
 */
export function adamwUpdate(
  p: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  g: tf.Tensor,
  s: AdamWScalars,
): { p: tf.Tensor; m: tf.Tensor; v: tf.Tensor } {
  const { beta1: b1, beta2: b2, eps, lr, weightDecay: wd, bc1, bc2 } = s;
  // The scale inside the kernel on native (its float32 product is the Multiply's); elsewhere the Multiply first.
  const fuseScale = tf.getBackend() === "native" && hasKernel("FlAdamW") && s.gradScale?.dtype === "float32";
  if (s.gradScale && !fuseScale) g = tf.mul(g, s.gradScale);
  if (!hasKernel("FlAdamW") || [p, m, v, g].some((t) => t.dtype !== "float32")) {
    const m1 = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1));
    const v1 = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2));
    const denom = tf.add(tf.div(tf.sqrt(v1), Math.sqrt(bc2)), eps);
    const decayed = wd !== 0 ? tf.mul(p, 1 - lr * wd) : p;
    return { p: tf.sub(decayed, tf.mul(tf.div(m1, denom), lr / bc1)), m: m1, v: v1 };
  }
  // Scalars rounded to float32 from the same double expressions tfjs would make scalar tensors of.
  const attrs = {
    b1,
    c1: 1 - b1,
    b2,
    c2: 1 - b2,
    sqrtBc2: Math.sqrt(bc2),
    eps,
    decay: wd !== 0 ? 1 - lr * wd : 1,
    step: lr / bc1,
  };
  const inputs: tf.NamedTensorMap = fuseScale ? { p, m, v, g, scale: s.gradScale! } : { p, m, v, g };
  const [p1, m1, v1] = run("FlAdamW", inputs, attrs) as tf.Tensor[];
  return { p: p1, m: m1, v: v1 };
}

/**
 * `sum(square(x))` of each tensor (float32 scalars, the bits of those tfjs ops): one kernel for all of them
 * on native (the sums shared among the threads, no squared copies), the tfjs ops elsewhere.
 */
export function sumSquares(xs: readonly tf.Tensor[]): tf.Scalar[] {
  if (!xs.length) return [];
  if (!hasKernel("FlSumSquares") || xs.some((x) => x.dtype !== "float32" || x.size === 0)) {
    return xs.map((x) => tf.sum(tf.square(x)));
  }
  return run("FlSumSquares", Object.fromEntries(xs.map((x, i) => [`x${i}`, x]))) as tf.Scalar[];
}

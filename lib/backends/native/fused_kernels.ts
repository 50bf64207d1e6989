/**
 * The native backend's model-specific fused ops (`Fl*` kernels: RMSNorm, attention with RoPE, SwiGLU,
 * Finedeep's expert gates and whole block, cross-entropy, AdamW), each a call into kernels/*.c. They
 * exist only on this backend; lib/backends/fused.ts uses them where the active backend has them.
 *
 * @module
 */
import type { TensorInfo } from "@tensorflow/tfjs-core";
import type { KernelSymbols } from "./kernels.ts";
import { type Args, f32, f32s, i32, out, pool, size } from "./tensors.ts";

/**
 * Rows per block of the fused Finedeep kernels (kernels/finedeep.c fl_fd_fwd / fl_fd_bwd): a multiple of the
 * C kernels' 64-row chunks, small enough that a block's activations (~10 arrays of FD_ROWS x width
 * floats) stay in a core's L2 cache between the sub-layers' steps. The blocks are also the units
 * the threads share, and the sums over rows (weight gradients, du) run block by block in order, so
 * the bits do not depend on the thread count.
 */
export const FD_ROWS = 512;

/** Fields of kernels/finedeep.c's `fl_fd_sub`, in order: one pointer each. */
const FD_SUB_FIELDS = [
  "w13",
  "w2",
  "r",
  "u",
  "ab",
  "gated",
  "g",
  "xm",
  "rstd",
  "dw13",
  "dw2",
  "dr",
  "du",
  "dup",
  "dab",
  "dy",
] as const;
type FdSub = Partial<Record<(typeof FD_SUB_FIELDS)[number], Float32Array | null>>;

/** An array of kernels/finedeep.c `fl_fd_sub` structs (the arrays' addresses; 0 for a missing one). */
function fdSubs(subs: FdSub[]): BigUint64Array<ArrayBuffer> {
  const t = new BigUint64Array(subs.length * FD_SUB_FIELDS.length);
  subs.forEach((s, m) =>
    FD_SUB_FIELDS.forEach((f, i) => {
      const a = s[f];
      t[m * FD_SUB_FIELDS.length + i] = a ? BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(a))) : 0n;
    })
  );
  return t;
}

/** Throws when fl_fd_fwd / fl_fd_bwd returned -1 (no sgemm: registerNativeBackend sets it first). */
function fdCheck(rc: number, what: string): void {
  if (rc !== 0) throw new Error(`${what}: the kernels library has no sgemm (fl_set_sgemm failed)`);
}

/** Kernels this module adds (names as lib/backends/fused.ts runs them). */
export const FUSED_KERNELS = [
  "FlRmsNorm",
  "FlRmsNormGrad",
  "FlAttention",
  "FlAttentionGrad",
  "FlExpertGate",
  "FlExpertGateGrad",
  "FlGatedMul",
  "FlGatedMulGrad",
  "FlFinedeep",
  "FlFinedeepGrad",
  "FlSwiglu",
  "FlSwigluGrad",
  "FlCrossEntropy",
  "FlCrossEntropyGrad",
  "FlAdamW",
  "FlSumSquares",
] as const;

/** Creates the fused kernel functions over the loaded kernels library. */
export function fusedKernels(k: KernelSymbols) {
  /** Inputs x (and gain g, optional: without it no gain). */
  function rmsnorm(args: Args): TensorInfo[] {
    const { inputs: { x, g }, attrs, backend } = args;
    const D = x.shape[x.shape.length - 1], N = size(x.shape) / D;
    const y = pool.alloc(N * D), rstd = pool.alloc(N);
    const gv = g ? f32(backend, g, "FlRmsNorm") : null;
    k.fl_rmsnorm_fwd(f32(backend, x, "FlRmsNorm"), gv, y, rstd, N, D, attrs.eps as number);
    return [out(backend, [...x.shape], y), out(backend, [N], rstd)];
  }

  /** Returns [dx, dg] with a gain, [dx] without. */
  function rmsnormGrad(args: Args): TensorInfo[] {
    const { inputs: { dy, x, g, rstd }, backend } = args;
    const D = x.shape[x.shape.length - 1], N = size(x.shape) / D;
    const dx = pool.alloc(N * D), dg = g ? pool.alloc(D) : null;
    const w = "FlRmsNormGrad";
    const gv = g ? f32(backend, g, w) : null;
    k.fl_rmsnorm_bwd(f32(backend, dy, w), f32(backend, x, w), gv, f32(backend, rstd, w), dx, dg, N, D);
    return dg ? [out(backend, [...x.shape], dx), out(backend, [D], dg)] : [out(backend, [...x.shape], dx)];
  }

  /** prod [N, K*E], u [K*E] -> [gated [N, K*E], g [N, K]]. */
  function expertGate(args: Args): TensorInfo[] {
    const { inputs: { prod, u }, attrs, backend } = args;
    const K = attrs.k as number, N = prod.shape[0], E = prod.shape[1] / K;
    const gated = pool.alloc(N * K * E), g = pool.alloc(N * K);
    k.fl_expert_gate_fwd(f32(backend, prod, "FlExpertGate"), f32(backend, u, "FlExpertGate"), gated, g, N, K, E);
    return [out(backend, [N, K * E], gated), out(backend, [N, K], g)];
  }

  /** -> [dprod, du]. */
  function expertGateGrad(args: Args): TensorInfo[] {
    const { inputs: { dy, prod, u, g }, attrs, backend } = args;
    const K = attrs.k as number, N = prod.shape[0], E = prod.shape[1] / K, w = "FlExpertGateGrad";
    const dprod = pool.alloc(N * K * E), du = pool.alloc(K * E);
    k.fl_expert_gate_bwd(...f32s(backend, [dy, prod, u, g], w), dprod, du, N, K, E);
    return [out(backend, [N, K * E], dprod), out(backend, [...u.shape], du)];
  }

  /** y [N, D], z [N, 1] -> [y · sigmoid(z), g = sigmoid(z) [N, 1]]. */
  function gatedMul(args: Args): TensorInfo[] {
    const { inputs: { y, z }, backend } = args;
    const D = y.shape[y.shape.length - 1], N = size(y.shape) / D;
    const res = pool.alloc(N * D), g = pool.alloc(N);
    k.fl_gated_mul_fwd(f32(backend, y, "FlGatedMul"), f32(backend, z, "FlGatedMul"), res, g, N, D);
    return [out(backend, [...y.shape], res), out(backend, [...z.shape], g)];
  }

  /** -> [dy, dz]. */
  function gatedMulGrad(args: Args): TensorInfo[] {
    const { inputs: { dy, y, z, g }, backend } = args;
    const D = y.shape[y.shape.length - 1], N = size(y.shape) / D, w = "FlGatedMulGrad";
    const dY = pool.alloc(N * D), dz = pool.alloc(N);
    k.fl_gated_mul_bwd(...f32s(backend, [dy, y, g], w), dY, dz, N, D);
    return [out(backend, [...y.shape], dY), out(backend, [...z.shape], dz)];
  }

  /**
   * The default Finedeep FFN block (lib/backends/fused.ts finedeepBlock): inputs x [N, D] (the layer's
   * normed input), h [N, D] (the residual stream; only for m > 1) and per sub-layer i w13_i [D, 2H],
   * w2_i [H, D], r_i [K, D]; attrs m, k, eps. Returns [Σ y_i, then what the backward reads: ab_i, gated_i,
   * g_i, u_i for every i, xm_i and rstd_i for i >= 1].
   *
   * One C call (kernels/finedeep.c fl_fd_fwd): the rows go {@link FD_ROWS} at a time through all M sub-layers
   * (one residual/norm pass, two sgemms and one SwiGLU + gate pass each), so a row block's
   * activations stay in the core's cache between the steps (measured: this, not the arithmetic, is
   * what the extra steps cost), and with more threads each thread takes whole row blocks in one
   * parallel region (every region wakes the sleeping OpenMP threads; one per step measured ~100 us).
   */
  function finedeep(args: Args): TensorInfo[] {
    const { inputs, attrs, backend } = args, w = "FlFinedeep";
    const M = attrs.m as number, K = attrs.k as number, eps = attrs.eps as number;
    const [N, D] = inputs.x.shape, H = inputs.w2_0.shape[0], E = H / K;
    const v = (name: string) => f32(backend, inputs[name], w);
    const x = v("x"), h = M > 1 ? v("h") : null, ysum = pool.alloc(N * D);
    const subs = Array.from({ length: M }, (_, m) => ({
      w13: v(`w13_${m}`),
      w2: v(`w2_${m}`),
      r: v(`r_${m}`),
      u: pool.alloc(H),
      ab: pool.alloc(N * 2 * H),
      gated: pool.alloc(N * H),
      g: pool.alloc(N * K),
      xm: m > 0 ? pool.alloc(N * D) : x,
      rstd: m > 0 ? pool.alloc(N) : null,
    }));
    const stream = M > 1 ? pool.alloc(N * D) : null, y = M > 2 ? pool.alloc(N * D) : null;
    fdCheck(k.fl_fd_fwd(fdSubs(subs), h, ysum, stream, y, N, D, K, E, M, FD_ROWS, eps), w);
    if (stream) pool.release(stream);
    if (y) pool.release(y);
    const rest = subs.slice(1);
    return [
      out(backend, [N, D], ysum),
      ...subs.map((s) => out(backend, [N, 2 * H], s.ab)),
      ...subs.map((s) => out(backend, [N, H], s.gated)),
      ...subs.map((s) => out(backend, [N, K], s.g)),
      ...subs.map((s) => out(backend, [H], s.u)),
      ...rest.map((s) => out(backend, [N, D], s.xm)),
      ...rest.map((s) => out(backend, [N], s.rstd!)),
    ];
  }

  /**
   * Backward of {@link finedeep}: inputs dy, x, h (m > 1), the weights and the forward's saved
   * tensors under the same names (ab_i, gated_i, g_i, u_i, xm_i, rstd_i). Returns the gradients of
   * the forward's inputs in order: dx, dh (m > 1), then dw13_i, dw2_i, dr_i per sub-layer. One C call
   * (kernels/finedeep.c fl_fd_bwd): the per-row steps in the forward's row blocks, then the 2M weight-gradient
   * products as parallel tasks, each summed over the row blocks in order (sgemm beta 1).
   */
  function finedeepGrad(args: Args): TensorInfo[] {
    const { inputs, attrs, backend } = args, w = "FlFinedeepGrad";
    const M = attrs.m as number, K = attrs.k as number;
    const [N, D] = inputs.x.shape, H = inputs.w2_0.shape[0], E = H / K, blocks = Math.ceil(N / FD_ROWS);
    const v = (name: string) => f32(backend, inputs[name], w);
    const subs = Array.from({ length: M }, (_, m) => ({
      w13: v(`w13_${m}`),
      w2: v(`w2_${m}`),
      r: v(`r_${m}`),
      u: v(`u_${m}`),
      ab: v(`ab_${m}`),
      gated: v(`gated_${m}`),
      g: v(`g_${m}`),
      xm: m > 0 ? v(`xm_${m}`) : v("x"),
      rstd: m > 0 ? v(`rstd_${m}`) : null,
      dw13: pool.alloc(D * 2 * H),
      dw2: pool.alloc(H * D),
      dr: pool.alloc(K * D),
      du: pool.alloc(H),
      dup: pool.alloc(blocks * H),
      dab: pool.alloc(N * 2 * H),
      dy: m < M - 1 ? pool.alloc(N * D) : null,
    }));
    const dx = pool.alloc(N * D), dh = M > 1 ? pool.alloc(N * D) : null;
    const dgated = pool.alloc(N * H), dxm = M > 1 ? pool.alloc(N * D) : null;
    fdCheck(k.fl_fd_bwd(fdSubs(subs), v("dy"), dx, dh, dgated, dxm, N, D, K, E, M, FD_ROWS), w);
    for (const a of [dgated, dxm, ...subs.flatMap((s) => [s.du, s.dup, s.dab, s.dy])]) if (a) pool.release(a);
    return [
      out(backend, [N, D], dx),
      ...(dh ? [out(backend, [N, D], dh)] : []),
      ...subs.flatMap((s) => [
        out(backend, [D, 2 * H], s.dw13),
        out(backend, [H, D], s.dw2),
        out(backend, [K, D], s.dr),
      ]),
    ];
  }

  function attention(args: Args): TensorInfo[] {
    const { inputs: { qkv, cos, sin }, attrs, backend } = args;
    const B = attrs.batch as number, T = attrs.seqLen as number, H = attrs.heads as number;
    const D = qkv.shape[1] / 3, hd = D / H;
    const o = pool.alloc(B * T * D), P = pool.alloc(B * H * T * T);
    const w = "FlAttention";
    k.fl_attention_fwd(...f32s(backend, [qkv, cos, sin], w), o, P, B, T, H, hd, attrs.scale as number);
    return [out(backend, [B * T, D], o), out(backend, [B * H, T, T], P)];
  }

  function attentionGrad(args: Args): TensorInfo {
    const { inputs: { dy, qkv, P, cos, sin }, attrs, backend } = args;
    const B = attrs.batch as number, T = attrs.seqLen as number, H = attrs.heads as number;
    const D = qkv.shape[1] / 3, hd = D / H;
    const dqkv = pool.alloc(B * T * 3 * D);
    const w = "FlAttentionGrad";
    k.fl_attention_bwd(...f32s(backend, [dy, qkv, P, cos, sin], w), dqkv, B, T, H, hd, attrs.scale as number);
    return out(backend, [B * T, 3 * D], dqkv);
  }

  function swiglu(args: Args): TensorInfo {
    const { inputs: { ab }, backend } = args;
    const N = ab.shape[0], Hf = ab.shape[1] / 2, h = pool.alloc(N * Hf);
    k.fl_swiglu_fwd(f32(backend, ab, "FlSwiglu"), h, N, Hf);
    return out(backend, [N, Hf], h);
  }

  function swigluGrad(args: Args): TensorInfo {
    const { inputs: { dy, ab }, backend } = args;
    const N = ab.shape[0], Hf = ab.shape[1] / 2, dab = pool.alloc(N * 2 * Hf);
    k.fl_swiglu_bwd(f32(backend, dy, "FlSwigluGrad"), f32(backend, ab, "FlSwigluGrad"), dab, N, Hf);
    return out(backend, [N, 2 * Hf], dab);
  }

  function crossEntropy(args: Args): TensorInfo[] {
    const { inputs: { logits, targets }, backend } = args;
    const [N, V] = logits.shape, lse = pool.alloc(N), loss = pool.alloc(1);
    const w = "FlCrossEntropy";
    k.fl_xent_fwd(f32(backend, logits, w), i32(backend, targets, w), lse, loss, N, V);
    return [out(backend, [], loss), out(backend, [N], lse)];
  }

  function crossEntropyGrad(args: Args): TensorInfo {
    const { inputs: { dy, logits, targets, lse }, backend } = args;
    const [N, V] = logits.shape, dl = pool.alloc(N * V);
    const w = "FlCrossEntropyGrad";
    const [dyv, lv, lsev] = f32s(backend, [dy, logits, lse], w);
    k.fl_xent_bwd(dyv, lv, i32(backend, targets, w), lsev, dl, N, V);
    return out(backend, [N, V], dl);
  }

  /** Inputs p, m, v, g and optionally `scale` (a scalar multiplying g first: the global-norm clip). */
  function adamw(args: Args): TensorInfo[] {
    const { inputs: { p, m, v, g, scale }, attrs, backend } = args;
    const n = size(p.shape), p1 = pool.alloc(n), m1 = pool.alloc(n), v1 = pool.alloc(n);
    const w = "FlAdamW", a = attrs as Record<string, number>;
    const [pv, mv, vv, gv] = f32s(backend, [p, m, v, g], w);
    const gs = scale ? f32(backend, scale, w)[0] : 1;
    k.fl_adamw(pv, mv, vv, gv, p1, m1, v1, n, a.b1, a.c1, a.b2, a.c2, a.sqrtBc2, a.eps, a.decay, a.step, gs);
    const s = [...p.shape];
    return [out(backend, s, p1), out(backend, s, m1), out(backend, s, v1)];
  }

  /** Inputs x0, x1, ... -> one scalar each: the bits of Sum(Square(x_i)) (kernels/xent_adamw.c fl_sumsq_many). */
  function sumSquares(args: Args): TensorInfo[] {
    const { inputs, backend } = args;
    const xs = Object.keys(inputs).map((_, i) => f32(backend, inputs[`x${i}`], "FlSumSquares"));
    // Largest first: the threads take them in this order (the sums do not depend on it).
    const order = xs.map((_, i) => i).sort((a, b) => xs[b].length - xs[a].length);
    const ptrs = new BigUint64Array(xs.length), lens = new Int32Array(xs.length), res = new Float32Array(xs.length);
    order.forEach((i, j) => {
      ptrs[j] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(xs[i])));
      lens[j] = xs[i].length;
    });
    k.fl_sumsq_many(ptrs, lens, res, xs.length);
    const sums = new Float32Array(xs.length);
    order.forEach((i, j) => sums[i] = res[j]);
    return xs.map((_, i) => out(backend, [], sums.slice(i, i + 1)));
  }

  return {
    FlRmsNorm: rmsnorm,
    FlRmsNormGrad: rmsnormGrad,
    FlAttention: attention,
    FlAttentionGrad: attentionGrad,
    FlExpertGate: expertGate,
    FlExpertGateGrad: expertGateGrad,
    FlGatedMul: gatedMul,
    FlGatedMulGrad: gatedMulGrad,
    FlFinedeep: finedeep,
    FlFinedeepGrad: finedeepGrad,
    FlSwiglu: swiglu,
    FlSwigluGrad: swigluGrad,
    FlCrossEntropy: crossEntropy,
    FlCrossEntropyGrad: crossEntropyGrad,
    FlAdamW: adamw,
    FlSumSquares: sumSquares,
  } satisfies Record<(typeof FUSED_KERNELS)[number], (a: Args) => TensorInfo | TensorInfo[]>;
}

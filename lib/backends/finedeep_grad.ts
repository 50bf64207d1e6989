/**
 * The backward of the fused Finedeep block (`FlFinedeepGrad`) for backends whose products are their
 * own BatchMatMul kernel and whose element-wise passes are separate calls: wasm (SIMD C on the heap,
 * lib/backends/wasm_fused.ts) and webgpu (WGSL, lib/backends/webgpu_fused.ts). The loop, the order of
 * the products and which buffers are freed when live here; each backend brings its passes. (native
 * runs row blocks through all sub-layers in one C call instead: lib/backends/native/kernels/finedeep.c fl_fd_bwd.)
 *
 * Every product operand is a fresh tensor, never written after the product: tfjs-wasm caches
 * XNNPACK's packed copy of a product's right operand under the tensor id (tfjs assumes immutable
 * tensors), so dy_m and dab are new for every sub-layer.
 *
 * @module
 */
import type { NamedAttrMap, TensorInfo } from "@tensorflow/tfjs-core";

/** What a backend brings to {@link finedeepGrad}; buffers are float32 tensors on that backend. */
export interface FinedeepGradPasses {
  /** op(a) @ op(b) through the backend's BatchMatMul. */
  matmul(a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): TensorInfo;
  /** A new float32 tensor. */
  make(shape: number[]): TensorInfo;
  /** Frees a tensor made here that is not returned (null: nothing). */
  free(t: TensorInfo | null): void;
  /** SwiGLU + gates backward: dab [N, 2H] and du [H] (summed over rows) from dgated [N, H]. */
  gateBwd(
    t: { dgated: TensorInfo; ab: TensorInfo; u: TensorInfo; g: TensorInfo; dab: TensorInfo; du: TensorInfo },
  ): void;
  /**
   * Residual + gainless norm backward of sub-layer m >= 1: dy (= dy_{m-1}) from dxm, and the residual
   * stream's gradient G accumulated in dh (`first`: the last sub-layer, which starts it).
   */
  residBwd(t: {
    dxm: TensorInfo;
    xm: TensorInfo;
    rstd: TensorInfo;
    dout: TensorInfo;
    dh: TensorInfo;
    dy: TensorInfo;
    first: boolean;
  }): void;
  /** du = W2·r's backward: adds du ⊗ r to dw2 (which holds the product's gradient) and writes dr. */
  uBwd(t: { du: TensorInfo; w2: TensorInfo; r: TensorInfo; dw2: TensorInfo; dr: TensorInfo }): void;
}

/**
 * FlFinedeepGrad: inputs dy, x, h (m > 1), the weights w13_i, w2_i, r_i and the forward's saved
 * ab_i, gated_i, g_i, u_i, xm_i, rstd_i; attrs m, k. Returns dx, dh (m > 1), then dw13_i, dw2_i, dr_i
 * per sub-layer (the native kernel's outputs).
 */
export function finedeepGrad(
  inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap,
  p: FinedeepGradPasses,
): TensorInfo[] {
  const M = attrs.m as number, K = attrs.k as number;
  const [N, D] = inputs.x.shape, H = inputs.w2_0.shape[0];
  const each = (name: string) => Array.from({ length: M }, (_, m) => inputs[`${name}_${m}`]);
  const w13 = each("w13"), w2 = each("w2"), ab = each("ab"), gated = each("gated"), g = each("g"), u = each("u");
  const xm = [inputs.x, ...Array.from({ length: M - 1 }, (_, i) => inputs[`xm_${i + 1}`])];
  const rstd = [null, ...Array.from({ length: M - 1 }, (_, i) => inputs[`rstd_${i + 1}`])];
  const dout = inputs.dy, dh = M > 1 ? p.make([N, D]) : null;
  const dw13: TensorInfo[] = [], dw2: TensorInfo[] = [], du: TensorInfo[] = [];
  let dx: TensorInfo | null = null, dyNext: TensorInfo | null = null;
  for (let m = M - 1; m >= 0; m--) {
    const dym = m === M - 1 ? dout : dyNext!; // dy_m = dout + G_{m+1}
    dw2[m] = p.matmul(gated[m], dym, true, false);
    const dgated = p.matmul(dym, w2[m], false, true), dab = p.make([N, 2 * H]);
    du[m] = p.make([H]);
    p.gateBwd({ dgated, ab: ab[m], u: u[m], g: g[m], dab, du: du[m] });
    p.free(dgated);
    if (dym !== dout) p.free(dym);
    dw13[m] = p.matmul(xm[m], dab, true, false);
    const dxm = p.matmul(dab, w13[m], false, true);
    p.free(dab);
    if (m === 0) dx = dxm;
    else {
      dyNext = p.make([N, D]);
      p.residBwd({ dxm, xm: xm[m], rstd: rstd[m]!, dout, dh: dh!, dy: dyNext, first: m === M - 1 });
      p.free(dxm);
    }
  }
  const grads: TensorInfo[] = [];
  for (let m = 0; m < M; m++) {
    const dr = p.make([K, D]);
    p.uBwd({ du: du[m], w2: w2[m], r: inputs[`r_${m}`], dw2: dw2[m], dr });
    p.free(du[m]);
    grads.push(dw13[m], dw2[m], dr);
  }
  return [dx!, ...(dh ? [dh] : []), ...grads];
}

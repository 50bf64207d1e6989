/**
 * Fused kernels of lib/backends/fused.ts for the webgpu backend: the default Finedeep block
 * (`FlFinedeep` / `FlFinedeepGrad`, the native and wasm kernels' interface) as the webgpu backend's
 * own matrix products with WGSL passes between them.
 *
 * Why (issue 6 part 4: Finedeep within 1.1x of its dense twin on every backend): the composite form
 * is ~15 tfjs ops per sub-layer forward and ~35 backward, each its own dispatch (on a GPU the
 * per-dispatch cost is expected to dominate at this model size; not measured, no GPU was lent); the
 * fused form is 4 dispatches per sub-layer forward (residual + norm, two products, SwiGLU + gates)
 * and 12 backward (four products plus an explicit transpose of B before two of them, the gates' and
 * SwiGLU's backward, two fixed-order sums for du, the residual's backward, two for u_k = W2_k r_k).
 * On llvmpipe the Finedeep/dense step-time ratio went from 1.29-1.41 to 1.04-1.07 (bench/README.md).
 *
 * tfjs-webgpu's programs write exactly one output; several of these passes write two to four (the
 * stream, the running sum, the normed input and its rstd), so they run as raw compute pipelines
 * recorded into the backend's own command encoder and compute pass (the same calls tfjs's
 * `recordAndSubmit` makes: bind the tensors' buffers, mark them queue-owned so disposal waits for
 * the submit, count the dispatch toward the submit batch). Each pass writes every element of its
 * outputs (buffers are recycled, not zeroed), and every sum runs in a fixed order (along a row: one
 * thread, in order; over rows: fixed 64-row chunks, then the chunks in order), so results are
 * deterministic on a given device. Row passes use one thread per row, not a workgroup per row with a
 * tree reduction: on llvmpipe the workgroup barriers made the two residual passes cost ~50 ms per
 * layer (forward + backward, [2048, 128]), against too little to measure with one thread per row; a
 * GPU may prefer the workgroup form (unmeasured).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelFunc, NamedAttrMap, TensorInfo } from "@tensorflow/tfjs-core";
import { finedeepGrad as finedeepGradLoop } from "./finedeep_grad.ts";
import { kernelOf, registerKernels } from "./register.ts";

/** Kernels added to the webgpu backend (recorded in backend details). */
export const WEBGPU_FUSED_KERNELS = ["FlFinedeep", "FlFinedeepGrad"] as const;

/** The parts of tfjs-backend-webgpu 4.22's backend class these kernels use. */
interface WebgpuBackend {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  computePassEncoder: GPUComputePassEncoder | null;
  dispatchCountInPass: number;
  commandQueueOwnedIds: WeakSet<object>;
  makeTensorInfo(shape: number[], dtype: "float32"): TensorInfo;
  uploadToGPU(dataId: object): void;
  tensorToBinding(t: TensorInfo): GPUBufferBinding;
  makeUniforms(u: { type: "int32" | "float32"; data: number[] }[]): GPUBufferBinding;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  disposeData(dataId: object): boolean;
}

interface Args {
  inputs: Record<string, TensorInfo>;
  attrs: NamedAttrMap;
  backend: WebgpuBackend;
}

/** Threads per workgroup of every pass. */
const WG = 64;
/** Rows per partial sum of the sums over rows (fixed, so results do not depend on the device). */
const CHUNK = 64;

/** One WGSL pass: its storage bindings in order (`w` = written), uniform fields, and body. */
interface Pass {
  name: string;
  bufs: [string, "r" | "w"][];
  params: [string, "i32" | "f32"][];
  /** Body of `main`; `gid` is the global thread index (flattened 2-D grid), `lid` the local one, `wid` the workgroup's. */
  body: string;
  /** Extra module-scope declarations. */
  decls?: string;
}

const SIGMOID = "fn sigm(x : f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }";
/** Start of a pass with one thread per (row n, expert k): o, go = the expert's offsets in ab [N, 2H] and in [N, H]. */
const PER_EXPERT = `let t = i32(gid); if (t >= p.N * p.K) { return; }
      let n = t / p.K; let k = t % p.K; let H = p.K * p.E; let o = n * 2 * H + k * p.E; let go = n * H + k * p.E;`;
const PASSES = {
  /** u[h] = w2[h, :] . r[h / E, :] (u_k = W2_k r_k). One thread per h. */
  fd_u: {
    name: "fd_u",
    bufs: [["w2", "r"], ["rt", "r"], ["u", "w"]],
    params: [["H", "i32"], ["E", "i32"], ["D", "i32"]],
    body: `let h = i32(gid); if (h >= p.H) { return; }
      let k = h / p.E; var s = 0.0;
      for (var j = 0; j < p.D; j++) { s += w2[h * p.D + j] * rt[k * p.D + j]; }
      u[h] = s;`,
  },
  /** Residual step (one thread per row): st = a + y, sum += y (when `sum`), rstd, xm = st * rstd. */
  resid: (withSum: boolean): Pass => ({
    name: `fd_resid_${withSum}`,
    bufs: [["a", "r"], ["y", "r"], ["st", "w"], ...(withSum ? [["sum", "w"]] as [string, "w"][] : []), ["xm", "w"], [
      "rstd",
      "w",
    ]],
    params: [["N", "i32"], ["D", "i32"], ["eps", "f32"]],
    body: `let i = i32(gid); if (i >= p.N) { return; }
      let o = i * p.D; var ss = 0.0;
      for (var j = 0; j < p.D; j++) {
        let yv = y[o + j]; let s = a[o + j] + yv;
        st[o + j] = s; ${withSum ? "sum[o + j] = sum[o + j] + yv;" : ""}
        ss += s * s;
      }
      let r = 1.0 / sqrt(ss / f32(p.D) + p.eps);
      rstd[i] = r;
      for (var j = 0; j < p.D; j++) { xm[o + j] = st[o + j] * r; }`,
  }),
  /** SwiGLU + gate of expert k for row n (one thread per (n, k)): prod = silu(a_k) * b_k, g = sigmoid(prod . u_k), gated_k = prod * g. */
  gate: {
    name: "fd_gate",
    bufs: [["ab", "r"], ["u", "r"], ["gated", "w"], ["g", "w"]],
    params: [["N", "i32"], ["K", "i32"], ["E", "i32"]],
    decls: SIGMOID,
    body: `${PER_EXPERT}
      var z = 0.0;
      for (var e = 0; e < p.E; e++) {
        let a = ab[o + e]; let pv = a * sigm(a) * ab[o + H + e];
        gated[go + e] = pv; z += pv * u[k * p.E + e];
      }
      let gk = sigm(z); g[t] = gk;
      for (var e = 0; e < p.E; e++) { gated[go + e] = gated[go + e] * gk; }`,
  },
  /**
   * Backward of the gate and SwiGLU (one thread per (n, k)): dz = g (1 - g) dgated_k . prod_k,
   * dprod = dgated * g + dz * u, SwiGLU's backward into dab; pdz = prod * dz (summed over rows into du
   * by rowsPart). sigmoid(a) and prod are parked in dab between the two loops (one exp per element).
   */
  gateBwd: {
    name: "fd_gate_bwd",
    bufs: [["dgated", "r"], ["ab", "r"], ["u", "r"], ["g", "r"], ["dab", "w"], ["pdz", "w"]],
    params: [["N", "i32"], ["K", "i32"], ["E", "i32"]],
    decls: SIGMOID,
    body: `${PER_EXPERT}
      var s = 0.0;
      for (var e = 0; e < p.E; e++) {
        let a = ab[o + e]; let sg = sigm(a); let pv = a * sg * ab[o + H + e];
        s += dgated[go + e] * pv; dab[o + e] = sg; dab[o + H + e] = pv;
      }
      let gk = g[t]; let dz = s * gk * (1.0 - gk);
      for (var e = 0; e < p.E; e++) {
        let sg = dab[o + e]; let pv = dab[o + H + e]; let a = ab[o + e]; let b = ab[o + H + e];
        let dp = dgated[go + e] * gk + dz * u[k * p.E + e]; let sl = a * sg;
        dab[o + H + e] = dp * sl; dab[o + e] = dp * b * (sg + sl * (1.0 - sg)); pdz[go + e] = pv * dz;
      }`,
  },
  /** part[c, h] = sum over the rows n of chunk c (in order) of x[n, h] (x [N, H]; one thread per (c, h)). */
  rowsPart: {
    name: "fd_rows_part",
    bufs: [["x", "r"], ["part", "w"]],
    params: [["N", "i32"], ["H", "i32"]],
    body: `let t = i32(gid); let C = (p.N + ${CHUNK - 1}) / ${CHUNK}; if (t >= C * p.H) { return; }
      let c = t / p.H; let h = t % p.H; var s = 0.0;
      for (var n = c * ${CHUNK}; n < min(p.N, (c + 1) * ${CHUNK}); n++) { s += x[n * p.H + h]; }
      part[t] = s;`,
  },
  /** res[h] = sum over c (in order) of part[c, h]. */
  colSum: {
    name: "fd_col_sum",
    bufs: [["part", "r"], ["res", "w"]],
    params: [["C", "i32"], ["H", "i32"]],
    body: `let h = i32(gid); if (h >= p.H) { return; }
      var s = 0.0; for (var c = 0; c < p.C; c++) { s += part[c * p.H + h]; }
      res[h] = s;`,
  },
  /** Backward of the residual step (one thread per row): gm = rstd (dxm - xm mean(dxm xm)); G (+)= gm; dy = dout + G. */
  residBwd: (first: boolean): Pass => ({
    name: `fd_resid_bwd_${first}`,
    bufs: [["dxm", "r"], ["xm", "r"], ["rstd", "r"], ["dout", "r"], ["G", "w"], ["dy", "w"]],
    params: [["N", "i32"], ["D", "i32"]],
    body: `let i = i32(gid); if (i >= p.N) { return; }
      let o = i * p.D; var s = 0.0;
      for (var j = 0; j < p.D; j++) { s += dxm[o + j] * xm[o + j]; }
      let md = s / f32(p.D); let r = rstd[i];
      for (var j = 0; j < p.D; j++) {
        let gm = r * (dxm[o + j] - xm[o + j] * md)${first ? "" : " + G[o + j]"};
        G[o + j] = gm; dy[o + j] = dout[o + j] + gm;
      }`,
  }),
  /** dw2[h, j] += du[h] * r[h / E, j] (the product's gradient already in dw2; one thread per element). */
  uBwdW2: {
    name: "fd_u_bwd_w2",
    bufs: [["du", "r"], ["rt", "r"], ["dw2", "w"]],
    params: [["H", "i32"], ["E", "i32"], ["D", "i32"]],
    body: `let t = i32(gid); if (t >= p.H * p.D) { return; }
      let h = t / p.D; let j = t % p.D;
      dw2[t] = dw2[t] + du[h] * rt[(h / p.E) * p.D + j];`,
  },
  /** dr[k, j] = sum over e (in order) of du[k E + e] * w2[k E + e, j] (one thread per element). */
  uBwdR: {
    name: "fd_u_bwd_r",
    bufs: [["du", "r"], ["w2", "r"], ["dr", "w"]],
    params: [["K", "i32"], ["E", "i32"], ["D", "i32"]],
    body: `let t = i32(gid); if (t >= p.K * p.D) { return; }
      let k = t / p.D; let j = t % p.D; var s = 0.0;
      for (var e = 0; e < p.E; e++) { s += du[k * p.E + e] * w2[(k * p.E + e) * p.D + j]; }
      dr[t] = s;`,
  },
  /** s += y (one thread per element). */
  add: {
    name: "fd_add",
    bufs: [["y", "r"], ["s", "w"]],
    params: [["n", "i32"]],
    body: `let t = i32(gid); if (t >= p.n) { return; } s[t] = s[t] + y[t];`,
  },
} satisfies Record<string, Pass | ((flag: boolean) => Pass)>;

/** The WGSL module of a pass. */
export function passSource(pass: Pass): string {
  const bufs = pass.bufs.map(([n, rw], i) =>
    `@group(0) @binding(${i}) var<storage, ${rw === "w" ? "read_write" : "read"}> ${n} : array<f32>;`
  );
  return [
    `struct Params { ${pass.params.map(([n, t]) => `${n} : ${t},`).join(" ")} };`,
    ...bufs,
    `@group(0) @binding(${pass.bufs.length}) var<uniform> p : Params;`,
    pass.decls ?? "",
    `@compute @workgroup_size(${WG})`,
    `fn main(@builtin(local_invocation_index) lid : u32, @builtin(workgroup_id) w3 : vec3<u32>,`,
    `        @builtin(num_workgroups) nw : vec3<u32>) {`,
    `  let wid = w3.y * nw.x + w3.x; let gid = wid * ${WG}u + lid;`,
    `  ${pass.body}`,
    `}`,
  ].join("\n");
}

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

function pipelineOf(device: GPUDevice, pass: Pass): GPUComputePipeline {
  let byName = pipelines.get(device);
  if (!byName) pipelines.set(device, byName = new Map());
  let p = byName.get(pass.name);
  if (!p) {
    const module = device.createShaderModule({ code: passSource(pass), label: pass.name });
    p = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" }, label: pass.name });
    byName.set(pass.name, p);
  }
  return p;
}

/** A 2-D grid of `groups` workgroups (each dimension stays within the 65535 limit). */
function grid(groups: number): [number, number] {
  const x = Math.min(Math.max(groups, 1), 65535);
  return [x, Math.ceil(Math.max(groups, 1) / x)];
}

/**
 * Records one pass into the backend's compute pass, as tfjs's own programs are recorded.
 * `groups`: workgroups to run (threads / 64, or rows for the per-row passes).
 */
function dispatch(backend: WebgpuBackend, pass: Pass, bufs: TensorInfo[], params: number[], groups: number): void {
  if (bufs.length !== pass.bufs.length || params.length !== pass.params.length) {
    throw new Error(
      `webgpu ${pass.name}: ${bufs.length} buffers and ${params.length} params for a pass of ` +
        `${pass.bufs.length} and ${pass.params.length}`,
    );
  }
  const pipeline = pipelineOf(backend.device, pass);
  for (const t of bufs) backend.uploadToGPU(t.dataId);
  const uniforms = backend.makeUniforms(
    pass.params.map(([, type], i) => ({ type: type === "i32" ? "int32" : "float32", data: [params[i]] })),
  );
  const entries = [...bufs.map((t) => backend.tensorToBinding(t)), uniforms].map((resource, binding) => ({
    binding,
    resource,
  }));
  for (const t of bufs) backend.commandQueueOwnedIds.add(t.dataId);
  const bindGroup = backend.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  backend.ensureCommandEncoderReady();
  if (!backend.computePassEncoder) backend.computePassEncoder = backend.commandEncoder!.beginComputePass({});
  const [x, y] = grid(groups);
  backend.computePassEncoder.setPipeline(pipeline);
  backend.computePassEncoder.setBindGroup(0, bindGroup);
  backend.computePassEncoder.dispatchWorkgroups(x, y, 1);
  backend.dispatchCountInPass++;
  if ((tf.env().get("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE") as number) <= backend.dispatchCountInPass) {
    backend.endComputePassEncoder();
    backend.submitQueue();
  }
}

/** Workgroups for one thread per element of `n`. */
const per = (n: number) => Math.ceil(n / WG);

function heap(backend: WebgpuBackend) {
  return {
    make: (shape: number[]): TensorInfo => {
      const t = backend.makeTensorInfo(shape, "float32");
      backend.uploadToGPU(t.dataId);
      return t;
    },
    free: (t: TensorInfo | null) => {
      if (t) backend.disposeData(t.dataId);
    },
  };
}

/** op(a) @ op(b) through the webgpu backend's BatchMatMul kernel. */
function matmul(backend: WebgpuBackend, a: TensorInfo, b: TensorInfo, transposeA = false, transposeB = false) {
  const attrs = { transposeA, transposeB };
  return kernelOf("BatchMatMul", "webgpu")({ inputs: { a, b }, attrs, backend: backend as never }) as TensorInfo;
}

/**
 * The default Finedeep block (lib/backends/fused.ts finedeepBlock), same inputs, attrs and outputs
 * as the native and wasm FlFinedeep: [Σ y_m, ab_m.., gated_m.., g_m.., u_m.., xm_m.. (m >= 1),
 * rstd_m.. (m >= 1)]; the outputs are summed ((y_0 + y_1) + ..) + y_{M-1}.
 */
function finedeep({ inputs, attrs, backend }: Args): TensorInfo[] {
  const M = attrs.m as number, K = attrs.k as number, eps = attrs.eps as number;
  const [N, D] = inputs.x.shape, H = inputs.w2_0.shape[0], E = H / K;
  const { make, free } = heap(backend);
  const ab: TensorInfo[] = [], gated: TensorInfo[] = [], g: TensorInfo[] = [], u: TensorInfo[] = [];
  const xms: TensorInfo[] = [], rstds: TensorInfo[] = [];
  for (let m = 0; m < M; m++) {
    u.push(make([H]));
    dispatch(backend, PASSES.fd_u, [inputs[`w2_${m}`], inputs[`r_${m}`], u[m]], [H, E, D], per(H));
  }
  let sum: TensorInfo | null = null, y: TensorInfo | null = null, stream: TensorInfo | null = null;
  for (let m = 0; m < M; m++) {
    let xm = inputs.x;
    if (m > 0) {
      // m = 1: stream = h + y_0 (y_0 is sum); later: stream' = stream + y_{m-1}, sum += y_{m-1}.
      xm = make([N, D]);
      const rstd = make([N]), next = make([N, D]);
      if (m === 1) dispatch(backend, PASSES.resid(false), [inputs.h, sum!, next, xm, rstd], [N, D, eps], per(N));
      else dispatch(backend, PASSES.resid(true), [stream!, y!, next, sum!, xm, rstd], [N, D, eps], per(N));
      free(stream);
      free(y);
      stream = next;
      xms.push(xm);
      rstds.push(rstd);
    }
    ab.push(matmul(backend, xm, inputs[`w13_${m}`]));
    g.push(make([N, K]));
    gated.push(make([N, H]));
    dispatch(backend, PASSES.gate, [ab[m], u[m], gated[m], g[m]], [N, K, E], per(N * K));
    const ym = matmul(backend, gated[m], inputs[`w2_${m}`]);
    if (m === 0) sum = ym;
    else if (m === M - 1) {
      dispatch(backend, PASSES.add, [ym, sum!], [N * D], per(N * D));
      free(ym);
    } else y = ym;
  }
  free(stream);
  return [sum!, ...ab, ...gated, ...g, ...u, ...xms, ...rstds];
}

/**
 * Backward of {@link finedeep} (outputs: dx, dh (m > 1), then dw13_m, dw2_m, dr_m per sub-layer):
 * lib/backends/finedeep_grad.ts's loop with the WGSL passes.
 */
function finedeepGrad({ inputs, attrs, backend }: Args): TensorInfo[] {
  const K = attrs.k as number, [N, D] = inputs.x.shape, H = inputs.w2_0.shape[0], E = H / K, C = Math.ceil(N / CHUNK);
  const { make, free } = heap(backend);
  const part = make([C, H]);
  const grads = finedeepGradLoop(inputs, attrs, {
    matmul: (a, b, ta, tb) => matmul(backend, a, b, ta, tb),
    make,
    free,
    gateBwd: ({ dgated, ab, u, g, dab, du }) => {
      const pdz = make([N, H]); // per-element du terms, summed over rows in fixed 64-row chunks
      dispatch(backend, PASSES.gateBwd, [dgated, ab, u, g, dab, pdz], [N, K, E], per(N * K));
      dispatch(backend, PASSES.rowsPart, [pdz, part], [N, H], per(C * H));
      dispatch(backend, PASSES.colSum, [part, du], [C, H], per(H));
      free(pdz);
    },
    residBwd: ({ dxm, xm, rstd, dout, dh, dy, first }) =>
      dispatch(backend, PASSES.residBwd(first), [dxm, xm, rstd, dout, dh, dy], [N, D], per(N)),
    uBwd: ({ du, w2, r, dw2, dr }) => {
      dispatch(backend, PASSES.uBwdW2, [du, r, dw2], [H, E, D], per(H * D));
      dispatch(backend, PASSES.uBwdR, [du, w2, dr], [K, E, D], per(K * D));
    },
  });
  free(part);
  return grads;
}

const KERNELS: Record<(typeof WEBGPU_FUSED_KERNELS)[number], KernelFunc> = {
  FlFinedeep: finedeep as unknown as KernelFunc,
  FlFinedeepGrad: finedeepGrad as unknown as KernelFunc,
};

/** Registers {@link WEBGPU_FUSED_KERNELS} on the webgpu backend (idempotent). */
export function installWebgpuFusedKernels(): void {
  registerKernels("webgpu", KERNELS);
}

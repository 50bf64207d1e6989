/**
 * The `webgpu` backend: tfjs-backend-webgpu with finelab's kernel fixes (webgpu_kernels.ts) and the
 * fused Finedeep block (webgpu_fused.ts).
 *
 * @module
 */
import { installWebgpuKernels, WEBGPU_KERNELS } from "../webgpu_kernels.ts";
import { installWebgpuFusedKernels, WEBGPU_FUSED_KERNELS } from "../webgpu_fused.ts";
import { type Availability, type BackendDetails, setOrThrow } from "./common.ts";

/** What the WebGPU adapter request found. */
export interface AdapterProbe {
  available: boolean;
  why: string;
  description: string | null;
  vendor: string | null;
  fallback: boolean;
}

let adapterProbe: Promise<AdapterProbe> | null = null;
const SOFTWARE_ADAPTERS = /llvmpipe|lavapipe|swiftshader|software|microsoft basic render/i;

/** Requests the WebGPU adapter once per process. */
export function probeAdapter(): Promise<AdapterProbe> {
  adapterProbe ??= (async () => {
    const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
    const none = { description: null, vendor: null, fallback: false };
    if (!gpu) {
      return {
        available: false,
        why: "navigator.gpu is undefined (WebGPU is off in this runtime; older Deno versions need --unstable-webgpu)",
        ...none,
      };
    }
    let adapter: GPUAdapter | null = null;
    try {
      adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    } catch (e) {
      return { available: false, why: `navigator.gpu.requestAdapter() failed: ${(e as Error).message}`, ...none };
    }
    if (!adapter) return { available: false, why: "navigator.gpu.requestAdapter() found no adapter", ...none };
    const info = (adapter as unknown as { info?: GPUAdapterInfo }).info;
    const description = info?.description || info?.device || null;
    const fallback = Boolean(
      (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ??
        (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter,
    ) || SOFTWARE_ADAPTERS.test(description ?? "");
    return {
      available: true,
      why: `adapter ${description ?? "(unnamed)"}`,
      description,
      vendor: info?.vendor ?? null,
      fallback,
    };
  })();
  return adapterProbe;
}

/** Available with a WebGPU adapter (a software one too; `auto` skips those). */
export async function availability(): Promise<Availability> {
  const p = await probeAdapter();
  if (!p.available) {
    return {
      ok: false,
      why: p.why,
      fix: "use a machine with a WebGPU-capable (Vulkan/Metal/D3D12) driver (and --unstable-webgpu on older Deno)",
    };
  }
  return { ok: true, why: p.why + (p.fallback ? " (software fallback adapter)" : "") };
}

/** Makes webgpu the active backend and installs finelab's kernels. */
export async function setup(): Promise<BackendDetails> {
  const a = await availability();
  if (!a.ok) throw new Error(`backend "webgpu" is unavailable: ${a.why}. To fix: ${a.fix}.`);
  await import("@tensorflow/tfjs-backend-webgpu");
  await setOrThrow("webgpu", "");
  installWebgpuKernels();
  installWebgpuFusedKernels();
  const p = await probeAdapter();
  return {
    adapter: p.description,
    vendor: p.vendor,
    fallback_adapter: p.fallback,
    kernels_replaced: WEBGPU_KERNELS.join(","),
    kernels_added: WEBGPU_FUSED_KERNELS.join(","),
    note: "read tensors with await t.data(): dataSync() fails under Deno",
  };
}

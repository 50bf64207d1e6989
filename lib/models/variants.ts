/**
 * The FFN variants as the model sees them: loading `lib/models/ffn/<kind>.ts` by a computed import (so a
 * run's code hash holds only the variant it uses), validating a model config with its FFN options, and
 * the parameter specs, exact parameter count and analytic FLOPs of a config.
 *
 * @module
 */
import { existsSync, readdirSync } from "node:fs";
import type { ModelConfig } from "../core/config.ts";
import type { FfnVariant, ParamSpec } from "./ffn/types.ts";

/** What a valid `model.ffn.kind` looks like (it names the file `lib/models/ffn/<kind>.ts`). */
export const FFN_KIND_PATTERN: RegExp = /^[a-z0-9_]+$/;
const FFN_DIR = new URL("./ffn/", import.meta.url);
const NOT_VARIANTS = new Set(["types", "mod"]);
const ffnCache = new Map<string, FfnVariant>();

/** The FFN kinds present in lib/models/ffn/ (files that are not tests or shared modules). */
export function availableFfnKinds(): string[] {
  return readdirSync(FFN_DIR)
    .filter((f) => f.endsWith(".ts") && !f.endsWith("_test.ts"))
    .map((f) => f.slice(0, -3))
    .filter((k) => FFN_KIND_PATTERN.test(k) && !NOT_VARIANTS.has(k))
    .sort();
}

/**
 * Loads the FFN variant `lib/models/ffn/<kind>.ts` (its export `variant`). The import is computed
 * on purpose: a run's code hash covers the trainer's static import graph plus the one variant
 * file it uses, so editing one variant does not invalidate runs of the others.
 */
export async function loadFfn(kind: string): Promise<FfnVariant> {
  if (typeof kind !== "string" || !FFN_KIND_PATTERN.test(kind) || NOT_VARIANTS.has(kind)) {
    throw new Error(
      `model.ffn.kind = ${JSON.stringify(kind)} is not a valid FFN kind: it must match ${FFN_KIND_PATTERN} ` +
        `and name a module lib/models/ffn/<kind>.ts; available: ${availableFfnKinds().join(", ")}`,
    );
  }
  const cached = ffnCache.get(kind);
  if (cached) return cached;
  if (!existsSync(new URL(`${kind}.ts`, FFN_DIR))) {
    throw new Error(
      `model.ffn.kind = "${kind}" is unknown: there is no lib/models/ffn/${kind}.ts; ` +
        `available: ${availableFfnKinds().join(", ")}`,
    );
  }
  // A computed specifier on purpose: `import(\`./ffn/${kind}.ts\`)` would make `deno info` (the run hash's
  // code graph, lib/runner/identity.ts) include EVERY file in ffn/, tests included.
  const specifier = new URL(`${kind}.ts`, FFN_DIR).href;
  const mod = await import(specifier) as { variant?: FfnVariant };
  const v = mod.variant;
  const methods = ["validate", "params", "paramCount", "flopsPerToken", "apply"] as const;
  if (!v || v.kind !== kind || methods.some((m) => typeof v[m] !== "function")) {
    throw new Error(
      `lib/models/ffn/${kind}.ts must export \`variant: FfnVariant\` with kind "${kind}" and the methods ` +
        `${methods.join(", ")} (see lib/models/ffn/types.ts)`,
    );
  }
  ffnCache.set(kind, v);
  return v;
}

function loadedFfn(cfg: ModelConfig, ffn?: FfnVariant): FfnVariant {
  const v = ffn ?? ffnCache.get(cfg.ffn?.kind);
  if (!v) {
    throw new Error(`FFN variant "${cfg.ffn?.kind}" is not loaded: call \`await loadFfn(kind)\` first or pass it`);
  }
  return v;
}

const isPosInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v > 0;

/**
 * Checks the generic model fields (not the FFN variant's options; see {@link validateModelConfig}).
 * Returns one message per problem, naming the field, the value and the allowed range.
 */
export function validateModel(cfg: ModelConfig): string[] {
  const e: string[] = [];
  for (const k of ["vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "seq_len"] as const) {
    if (!isPosInt(cfg[k])) e.push(`model.${k} = ${JSON.stringify(cfg[k])} must be a positive integer`);
  }
  if (isPosInt(cfg.d_model) && isPosInt(cfg.n_heads)) {
    if (cfg.d_model % cfg.n_heads !== 0) {
      e.push(`model.d_model = ${cfg.d_model} must be divisible by model.n_heads = ${cfg.n_heads}`);
    } else if ((cfg.d_model / cfg.n_heads) % 2 !== 0) {
      e.push(
        `model.d_model / model.n_heads = ${cfg.d_model}/${cfg.n_heads} = ${cfg.d_model / cfg.n_heads} ` +
          `(head dim) must be even for RoPE`,
      );
    }
  }
  if (typeof cfg.rope_base !== "number" || !Number.isFinite(cfg.rope_base) || cfg.rope_base <= 1) {
    e.push(`model.rope_base = ${JSON.stringify(cfg.rope_base)} must be a finite number > 1`);
  }
  if (typeof cfg.norm_eps !== "number" || !(cfg.norm_eps > 0 && cfg.norm_eps < 1)) {
    e.push(`model.norm_eps = ${JSON.stringify(cfg.norm_eps)} must be in (0, 1)`);
  }
  if (typeof cfg.init_std !== "number" || !(cfg.init_std > 0 && cfg.init_std <= 1)) {
    e.push(`model.init_std = ${JSON.stringify(cfg.init_std)} must be in (0, 1]`);
  }
  if (typeof cfg.tie_embeddings !== "boolean") {
    e.push(`model.tie_embeddings = ${JSON.stringify(cfg.tie_embeddings)} must be true or false`);
  }
  if (!cfg.ffn || typeof cfg.ffn !== "object") {
    e.push(`model.ffn = ${JSON.stringify(cfg.ffn)} must be an object with a kind`);
  } else if (typeof cfg.ffn.kind !== "string" || !FFN_KIND_PATTERN.test(cfg.ffn.kind)) {
    e.push(
      `model.ffn.kind = ${JSON.stringify(cfg.ffn.kind)} must match ${FFN_KIND_PATTERN} (a file in lib/models/ffn/)`,
    );
  }
  return e;
}

/** {@link validateModel} plus the FFN variant's own checks (loads the variant). */
export async function validateModelConfig(cfg: ModelConfig): Promise<string[]> {
  const e = validateModel(cfg);
  if (e.length) return e;
  let ffn: FfnVariant;
  try {
    ffn = await loadFfn(cfg.ffn.kind);
  } catch (err) {
    return [(err as Error).message];
  }
  return ffn.validate(cfg);
}

/** Throws with every problem of the model config and its FFN options. */
export function assertValid(cfg: ModelConfig, ffn: FfnVariant): void {
  const e = [...validateModel(cfg), ...ffn.validate(cfg)];
  if (e.length) throw new Error(`invalid model config:\n  ${e.join("\n  ")}`);
}

/** All parameters in creation order, with full names (see the table in the module doc). */
export function paramSpecs(cfg: ModelConfig, ffn?: FfnVariant): ParamSpec[] {
  const v = loadedFfn(cfg, ffn);
  const { vocab_size: V, d_model: d, n_layers: L, init_std: std } = cfg;
  const outStd = std / Math.sqrt(2 * L);
  const s: ParamSpec[] = [{ name: "tok_emb", shape: [V, d], init: "normal", std, decay: true }];
  for (let i = 0; i < L; i++) {
    const p = `layers.${i}`;
    s.push({ name: `${p}.norm1`, shape: [d], init: "ones", decay: false });
    for (const w of ["wq", "wk", "wv"]) {
      s.push({ name: `${p}.attn.${w}`, shape: [d, d], init: "normal", std, decay: true });
    }
    s.push({ name: `${p}.attn.wo`, shape: [d, d], init: "normal", std: outStd, decay: true });
    s.push({ name: `${p}.norm2`, shape: [d], init: "ones", decay: false });
    for (const f of v.params(cfg)) s.push({ ...f, name: `${p}.ffn.${f.name}`, shape: [...f.shape] });
  }
  s.push({ name: "norm_f", shape: [d], init: "ones", decay: false });
  if (!cfg.tie_embeddings) s.push({ name: "head", shape: [d, V], init: "normal", std, decay: true });
  return s;
}

/** Exact parameter count, computed analytically (not from the created tensors). */
export function paramCount(cfg: ModelConfig, ffn?: FfnVariant): number {
  const v = loadedFfn(cfg, ffn);
  const { vocab_size: V, d_model: d, n_layers: L } = cfg;
  const perLayer = 2 * d + 4 * d * d + v.paramCount(cfg);
  return V * d + L * perLayer + d + (cfg.tie_embeddings ? 0 : d * V);
}

/**
 * Forward FLOPs per token, counting 2 per multiply-add of every matmul:
 * per layer `2·d·3d` (q, k, v) + `2·d·d` (wo) + `4·T·d` (QKᵀ and PV over the FULL T×T score
 * matrix, which is what is computed; a causal-only count would halve this term) + the FFN
 * variant's count; plus `2·d·V` for the head. Norms, softmax, RoPE, activations and the embedding
 * lookup are not counted. A training step costs ≈ 3× this per token.
 */
export function flopsPerToken(cfg: ModelConfig, ffn?: FfnVariant): number {
  const v = loadedFfn(cfg, ffn);
  const { vocab_size: V, d_model: d, n_layers: L, seq_len: T } = cfg;
  return L * (6 * d * d + 2 * d * d + 4 * T * d + v.flopsPerToken(cfg)) + 2 * d * V;
}

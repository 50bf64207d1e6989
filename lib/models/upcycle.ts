/**
 * Upcycling: the initial weights of a model (the child) from a trained dense model (the parent),
 * e.g. a top-k MoE whose experts are copies or slices of the dense FFN.
 *
 * ```ts
 * const weights = await upcycle(childCfg, { config: parentRun.config.model, weights: await loadFinalWeights(dir) }, { seed });
 * const model = await createModel(childCfg, seed, { from: { weights } }); // complete: no `partial` needed
 * ```
 *
 * What the child gets:
 * - embeddings, attention, norms, final norm: copied from the parent (the shapes must match:
 *   vocab_size, d_model, n_layers, n_heads; seq_len may differ since RoPE has no weights);
 * - `head`: copied, or the transposed `tok_emb` when the parent ties embeddings and the child
 *   does not (the FineRMoE converter's rule); a tied child of an untied parent is refused;
 * - FFN of every layer: the child's variant derives what it can from the dense FFN (`w13`, `w2`)
 *   with its `upcycleFromDense` (lib/models/moe.ts `DenseUpcycling`; topk_moe, dsmoe, finermoe
 *   document their rule); the rest (routers, gates) gets the child's own seeded init
 *   (`initValues(spec, seed)`, exactly what a fresh model with that seed would have);
 * - a child whose `model.ffn` equals the parent's (any kind) copies everything: continued training.
 *
 * The result is complete (one entry per parameter of the child, checked shapes), so the caller
 * can pass it to `createModel` without `partial`. This module is not in the trainer's import
 * graph: a runner that upcycles should add it (and the child variant's file, already hashed) to
 * the child's code hash, and the parent's hash to the child's hash inputs.
 *
 * @module
 */
import type { ModelConfig } from "../core/config.ts";
import { initValues } from "./transformer.ts";
import { loadFfn, paramSpecs } from "./variants.ts";
import type { DenseUpcycling } from "./moe.ts";
import type { FfnVariant } from "./ffn/types.ts";

/** Named float32 weights, as `loadFinalWeights` (lib/train/checkpoint.ts) returns and `createModel` takes. */
export type WeightMap = ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: Float32Array }>;

/** The parent: its model config and its (final) weights. */
export interface UpcycleParent {
  config: ModelConfig;
  weights: WeightMap;
}

/** Options of {@link upcycle}. */
export interface UpcycleOptions {
  /** The child run's seed: parameters not derived from the parent get the child's seeded init. */
  seed: number;
}

/** Whether a variant can be upcycled from a dense FFN. */
export function canUpcycleFromDense(v: FfnVariant): v is FfnVariant & DenseUpcycling {
  return typeof (v as Partial<DenseUpcycling>).upcycleFromDense === "function";
}

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

function stableJson(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${
    Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`).join(
      ",",
    )
  }}`;
}

/**
 * The child's initial weights from the parent (see the module doc). Throws, naming the parameter
 * or field, when the parent's weights are incomplete or the configs do not fit together.
 */
export async function upcycle(
  child: ModelConfig,
  parent: UpcycleParent,
  opts: UpcycleOptions,
): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const pc = parent.config;
  for (const k of ["vocab_size", "d_model", "n_layers", "n_heads"] as const) {
    if (child[k] !== pc[k]) {
      throw new Error(`cannot upcycle: child model.${k} = ${child[k]} differs from the parent's ${pc[k]}`);
    }
  }
  if (child.tie_embeddings && !pc.tie_embeddings) {
    throw new Error(
      "cannot upcycle: the child ties embeddings (model.tie_embeddings = true) but the parent has a separate head",
    );
  }
  const [cv, pv] = await Promise.all([loadFfn(child.ffn.kind), loadFfn(pc.ffn.kind)]);
  for (const [who, cfg, v] of [["child", child, cv], ["parent", pc, pv]] as const) {
    const e = v.validate(cfg);
    if (e.length) throw new Error(`cannot upcycle: invalid ${who} model config:\n  ${e.join("\n  ")}`);
  }
  // The parent's weights must be complete and of the right shapes.
  const pspecs = paramSpecs(pc, pv);
  for (const s of pspecs) {
    const w = parent.weights.get(s.name);
    if (!w) throw new Error(`cannot upcycle: the parent's weights lack ${s.name} [${s.shape}]`);
    if (!sameShape(w.shape, s.shape) || w.data.length !== s.shape.reduce((a, b) => a * b, 1)) {
      throw new Error(`cannot upcycle: the parent's ${s.name} has shape [${w.shape}], its config needs [${s.shape}]`);
    }
  }
  const pw = (name: string) => parent.weights.get(name)!;
  const sameFfn = stableJson(child.ffn) === stableJson(pc.ffn) && child.d_ff === pc.d_ff;
  if (!sameFfn) {
    if (pc.ffn.kind !== "dense") {
      throw new Error(
        `cannot upcycle ffn kind "${child.ffn.kind}" from a parent of kind "${pc.ffn.kind}": ` +
          `only a dense parent (or one with the same model.ffn) is supported`,
      );
    }
    if (child.ffn.kind !== "dense" && !canUpcycleFromDense(cv)) {
      throw new Error(
        `cannot upcycle: ffn kind "${child.ffn.kind}" has no upcycling from a dense FFN (upcycleFromDense)`,
      );
    }
  }

  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const ffnLayer = new Map<number, Record<string, Float32Array>>();
  const ffnOf = (layer: number): Record<string, Float32Array> => {
    let r = ffnLayer.get(layer);
    if (r) return r;
    const prefix = `layers.${layer}.ffn.`;
    if (sameFfn || child.ffn.kind === "dense") {
      r = {};
      for (const s of pspecs) if (s.name.startsWith(prefix)) r[s.name.slice(prefix.length)] = pw(s.name).data;
    } else {
      r = (cv as FfnVariant & DenseUpcycling).upcycleFromDense(child, {
        w13: pw(`${prefix}w13`).data,
        w2: pw(`${prefix}w2`).data,
        d_model: pc.d_model,
        d_ff: pc.d_ff,
      });
    }
    ffnLayer.set(layer, r);
    return r;
  };

  for (const s of paramSpecs(child, cv)) {
    let data: Float32Array | undefined;
    const ffn = /^layers\.(\d+)\.ffn\.(.+)$/.exec(s.name);
    if (ffn) {
      data = ffnOf(Number(ffn[1]))[ffn[2]];
    } else if (s.name === "head" && pc.tie_embeddings) {
      const e = pw("tok_emb").data, V = pc.vocab_size, d = pc.d_model;
      data = new Float32Array(d * V);
      for (let v = 0; v < V; v++) for (let j = 0; j < d; j++) data[j * V + v] = e[v * d + j];
    } else {
      data = pw(s.name).data;
    }
    if (data === undefined) {
      data = initValues(s, opts.seed);
    } else {
      const n = s.shape.reduce((a, b) => a * b, 1);
      if (data.length !== n) {
        throw new Error(
          `cannot upcycle: derived ${s.name} has ${data.length} values, the child needs [${s.shape}] = ${n}`,
        );
      }
      data = data.slice(); // no aliasing of the parent's arrays
    }
    out.set(s.name, { shape: [...s.shape], data });
  }
  return out;
}

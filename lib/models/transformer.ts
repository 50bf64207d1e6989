/**
 * A LLaMA-style decoder-only language model in TensorFlow.js, in one file (nanoGPT's model.py is
 * the anchor): token embedding -> n_layers x [RMSNorm -> causal multi-head attention with RoPE ->
 * residual; RMSNorm -> FFN (pluggable) -> residual] -> final RMSNorm -> head (tied or untied) ->
 * cross-entropy.
 *
 * ## Parameters
 *
 * Names are stable: they are the tensor names in `model.safetensors`. Matrices are stored
 * `[in, out]` and applied as `x @ W` (note: torch.nn.Linear stores `[out, in]`).
 *
 * | name | shape | init | weight decay |
 * |---|---|---|---|
 * | `tok_emb` | `[vocab_size, d_model]` | N(0, init_std²) | yes |
 * | `layers.<i>.norm1` | `[d_model]` (attention pre-norm gain) | ones | no |
 * | `layers.<i>.attn.wq` | `[d_model, d_model]` | N(0, init_std²) | yes |
 * | `layers.<i>.attn.wk` | `[d_model, d_model]` | N(0, init_std²) | yes |
 * | `layers.<i>.attn.wv` | `[d_model, d_model]` | N(0, init_std²) | yes |
 * | `layers.<i>.attn.wo` | `[d_model, d_model]` | N(0, (init_std/√(2·n_layers))²) | yes |
 * | `layers.<i>.norm2` | `[d_model]` (FFN pre-norm gain) | ones | no |
 * | `layers.<i>.ffn.<name>` | defined by the FFN variant (dense: `w13`, `w2`; see lib/models/ffn/) | variant | variant |
 * | `norm_f` | `[d_model]` (final norm gain) | ones | no |
 * | `head` | `[d_model, vocab_size]`, only when `tie_embeddings` is false (else logits = h @ tok_embᵀ) | N(0, init_std²) | yes |
 *
 * Heads: `wq` output column `h*head_dim + j` is head h, component j (same for wk, wv; rows of wo).
 * RoPE uses the rotate-half convention (as HF LLaMA): the pair (j, j + head_dim/2) rotates by
 * angle `pos * rope_base^(-2j/head_dim)`.
 *
 * Initialisation is deterministic: parameter `name` is drawn from its own stream
 * `Rng(mixSeed(seed, fnv1a(name)))`, so the same config and seed give identical weights, and a
 * parameter's init does not depend on which other parameters exist (a variant with a different FFN
 * starts with the same embedding and attention weights).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ModelConfig } from "../core/config.ts";
import { mixSeed, Rng } from "../util/rng.ts";
import { matmul } from "../backends/ops.ts";
import { causalSelfAttention, crossEntropy, rmsnorm } from "../backends/fused.ts";
import type { FfnContext, FfnParams, FfnVariant, ParamSpec } from "./ffn/types.ts";
import { assertValid, loadFfn, paramSpecs, validateModel } from "./variants.ts";

export type { FfnContext, FfnVariant, ParamSpec } from "./ffn/types.ts";

// ---- the model ----------------------------------------------------------------------------------

/** 32-bit FNV-1a of a string: the per-parameter init stream id. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Initial values of one parameter for a seed (see the module doc). */
export function initValues(spec: ParamSpec, seed: number): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  if (spec.init === "ones") return out.fill(1);
  if (spec.init === "zeros") return out;
  return new Rng(mixSeed(seed, fnv1a(spec.name))).normal(out, spec.std ?? 0);
}

/** Weights to start from instead of the seeded init. */
export interface WeightSource {
  /** name -> values (row-major, float32), checked against the spec's shape. */
  weights: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;
  /** Allow names missing from `weights` (they get the seeded init) and ignore extra ones. Default false. */
  partial?: boolean;
}

/** Options of {@link createModel}. */
export interface CreateModelOptions {
  /** Start from these weights (e.g. a checkpoint) instead of the seeded init. */
  from?: WeightSource;
}

/** Extra outputs of a forward pass used by the trainer. */
export interface Objective {
  /** Mean next-token cross-entropy (nats): the reported loss. */
  loss: tf.Scalar;
  /** Sum of auxiliary losses added by FFN variants (training only), or null. */
  aux: tf.Scalar | null;
  /** FFN statistics, mean over layers, keyed `ffn.<name>`. */
  stats: Record<string, tf.Scalar>;
}

/** Forward options. */
export interface ForwardOptions {
  /** Training step (enables auxiliary losses of FFN variants). Default false. */
  training?: boolean;
  /** The trainer RNG handed to FFN variants. */
  rng?: Rng | null;
  /**
   * Activation capture for analysis (see `FfnContext.capture`): called with the layer index, the
   * activation name, the tensor (owned by the surrounding tidy: `tf.keep` it to use it later) and
   * the sub-layer index.
   */
  capture?: (layer: number, name: "act" | "prod" | "gate", value: tf.Tensor2D, sub: number) => void;
}

let modelCounter = 0;

/** The decoder. Create with {@link createModel}; call {@link Transformer.dispose} when done. */
export class Transformer {
  /** The model config. */
  readonly cfg: ModelConfig;
  /** The FFN variant of every layer. */
  readonly ffn: FfnVariant;
  /** Parameter specs in creation order. */
  readonly specs: readonly ParamSpec[];
  /** Parameters by stable name. */
  readonly params: ReadonlyMap<string, tf.Variable>;
  readonly #ropeCos: tf.Tensor2D;
  readonly #ropeSin: tf.Tensor2D;
  readonly #mask: tf.Tensor2D;
  readonly #ffnParams: FfnParams[];

  /** Use {@link createModel} (it loads the FFN variant and validates the config). */
  constructor(cfg: ModelConfig, ffn: FfnVariant, seed: number, opts: CreateModelOptions = {}) {
    assertValid(cfg, ffn);
    this.cfg = cfg;
    this.ffn = ffn;
    this.specs = paramSpecs(cfg, ffn);
    const from = opts.from;
    if (from && !from.partial) {
      const known = new Set(this.specs.map((s) => s.name));
      const extra = [...from.weights.keys()].filter((k) => !known.has(k));
      if (extra.length) throw new Error(`weights have tensors this model does not: ${extra.join(", ")}`);
    }
    // All values first (so a bad weight throws before any tensor exists), then the variables.
    const values = this.specs.map((s) => {
      const w = from?.weights.get(s.name);
      if (w) {
        if (w.shape.length !== s.shape.length || w.shape.some((d, i) => d !== s.shape[i])) {
          throw new Error(`weight ${s.name} has shape [${w.shape}], the model needs [${s.shape}]`);
        }
        if (w.data.length !== s.shape.reduce((a, b) => a * b, 1)) {
          throw new Error(`weight ${s.name} has ${w.data.length} values for shape [${s.shape}]`);
        }
        return w.data;
      }
      if (from && !from.partial) throw new Error(`weights lack tensor ${s.name} [${s.shape}]`);
      return initValues(s, seed);
    });
    const id = ++modelCounter, params = new Map<string, tf.Variable>();
    for (const [i, s] of this.specs.entries()) {
      const init = tf.tensor(values[i], s.shape, "float32");
      // Engine-wide variable names must be unique, hence the model id prefix.
      params.set(s.name, tf.variable(init, true, `m${id}/${s.name}`));
      init.dispose();
    }
    this.params = params;
    this.#ffnParams = Array.from({ length: cfg.n_layers }, (_, i) => {
      const prefix = `layers.${i}.ffn.`, p: Record<string, tf.Tensor> = {};
      for (const [name, v] of params) if (name.startsWith(prefix)) p[name.slice(prefix.length)] = v;
      return p;
    });
    // RoPE tables [seq_len, head_dim/2] (computed in float64) and the additive causal mask.
    const T = cfg.seq_len, hd = cfg.d_model / cfg.n_heads, half = hd / 2;
    const cos = new Float32Array(T * half), sin = new Float32Array(T * half);
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < half; j++) {
        const a = t * Math.pow(cfg.rope_base, -(2 * j) / hd);
        cos[t * half + j] = Math.cos(a);
        sin[t * half + j] = Math.sin(a);
      }
    }
    const mask = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -1e9;
    this.#ropeCos = tf.tensor2d(cos, [T, half]);
    this.#ropeSin = tf.tensor2d(sin, [T, half]);
    this.#mask = tf.tensor2d(mask, [T, T]);
  }

  /** A parameter by name (throws on unknown names). */
  param(name: string): tf.Variable {
    const p = this.params.get(name);
    if (!p) throw new Error(`no parameter ${name}`);
    return p;
  }

  /** All trainable variables in spec order. */
  variables(): tf.Variable[] {
    return this.specs.map((s) => this.param(s.name));
  }

  #rmsnorm(x: tf.Tensor2D, gain: tf.Tensor): tf.Tensor2D {
    return rmsnorm(x, gain, this.cfg.norm_eps); // x * rsqrt(mean(x²) + eps) * gain (lib/backends/fused.ts)
  }

  /**
   * Causal multi-head self-attention of x [B*T, d] -> [B*T, d]: RoPE on q and k (rotate-half),
   * softmax(q kᵀ / sqrt(head_dim) + causal mask) v per head, then wo (lib/backends/fused.ts).
   */
  #attention(x: tf.Tensor2D, layer: number, B: number, T: number): tf.Tensor2D {
    const { n_heads: nh } = this.cfg, half = this.cfg.d_model / nh / 2, p = `layers.${layer}.attn`;
    // One matmul for q, k, v (x is transposed once in the backward pass instead of three times).
    const wqkv = tf.concat([this.param(`${p}.wq`), this.param(`${p}.wk`), this.param(`${p}.wv`)], 1);
    const full = T === this.cfg.seq_len;
    const o = causalSelfAttention(matmul(x, wqkv), {
      batch: B,
      seqLen: T,
      heads: nh,
      cos: full ? this.#ropeCos : tf.slice(this.#ropeCos, [0, 0], [T, half]),
      sin: full ? this.#ropeSin : tf.slice(this.#ropeSin, [0, 0], [T, half]),
      mask: full ? this.#mask : tf.slice(this.#mask, [0, 0], [T, T]),
    });
    return matmul(o, this.param(`${p}.wo`));
  }

  /** Final hidden states [B*T, d] of token ids x [B, T] (int32). */
  #hidden(x: tf.Tensor, ctxFor: (layer: number, residual: tf.Tensor2D, seqLen: number) => FfnContext): tf.Tensor2D {
    if (x.rank !== 2) throw new Error(`model input must be [batch, time] token ids, got shape [${x.shape}]`);
    const [B, T] = x.shape;
    if (T > this.cfg.seq_len) throw new Error(`sequence length ${T} exceeds model.seq_len = ${this.cfg.seq_len}`);
    const ids = tf.reshape(x.dtype === "int32" ? x : tf.cast(x, "int32"), [B * T]);
    let h = tf.gather(this.param("tok_emb"), ids) as tf.Tensor2D;
    for (let l = 0; l < this.cfg.n_layers; l++) {
      h = tf.add(h, this.#attention(this.#rmsnorm(h, this.param(`layers.${l}.norm1`)), l, B, T));
      const hn = this.#rmsnorm(h, this.param(`layers.${l}.norm2`));
      h = tf.add(h, this.ffn.apply(hn, this.#ffnParams[l], ctxFor(l, h, T)));
    }
    return this.#rmsnorm(h, this.param("norm_f"));
  }

  #logits2d(h: tf.Tensor2D): tf.Tensor2D {
    return this.cfg.tie_embeddings ? matmul(h, this.param("tok_emb"), false, true) : matmul(h, this.param("head"));
  }

  /** Logits [B, T, vocab] for token ids x [B, T]. Call inside tf.tidy. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    const [B, T] = x.shape;
    const ctx = this.#context(opts, () => {}, () => {});
    return tf.reshape(this.#logits2d(this.#hidden(x, ctx)), [B, T, this.cfg.vocab_size]);
  }

  /** Mean next-token cross-entropy of x [B, T] against targets y [B, T]. Call inside tf.tidy. */
  loss(x: tf.Tensor, y: tf.Tensor, opts: ForwardOptions = {}): tf.Scalar {
    return this.objective(x, y, opts).loss;
  }

  /** Loss plus auxiliary losses and statistics from the FFN variants. Call inside tf.tidy. */
  objective(x: tf.Tensor, y: tf.Tensor, opts: ForwardOptions = {}): Objective {
    const aux: tf.Scalar[] = [], stats = new Map<string, tf.Scalar[]>();
    const ctx = this.#context(opts, (l) => aux.push(l), (name, v) => {
      const list = stats.get(name) ?? [];
      list.push(v);
      stats.set(name, list);
    });
    const logits = this.#logits2d(this.#hidden(x, ctx));
    // mean(-sum(onehot(y) * logSoftmax(logits))) (lib/backends/fused.ts)
    const out: Objective = {
      loss: crossEntropy(logits, y),
      aux: aux.length ? tf.addN(aux) as tf.Scalar : null,
      stats: {},
    };
    for (const [name, vs] of stats) out.stats[`ffn.${name}`] = tf.div(tf.addN(vs), vs.length);
    return out;
  }

  #context(
    opts: ForwardOptions,
    addAuxLoss: (l: tf.Scalar) => void,
    addStat: (name: string, v: tf.Scalar) => void,
  ): (layer: number, residual: tf.Tensor2D, seqLen: number) => FfnContext {
    const training = opts.training ?? false;
    const capture = opts.capture;
    return (layer, residual, seqLen) => ({
      cfg: this.cfg,
      layer,
      training,
      rng: opts.rng ?? null,
      addAuxLoss: training ? addAuxLoss : () => {},
      addStat,
      residual,
      seqLen,
      ...(capture ? { capture: (name, value, sub) => capture(layer, name, value, sub ?? 0) } : {}),
    } satisfies FfnContext);
  }

  /** Current weights by name (float32 copies; async so it works on webgpu). */
  async getWeights(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const s of this.specs) {
      out.set(s.name, { shape: [...s.shape], data: new Float32Array(await this.param(s.name).data()) });
    }
    return out;
  }

  /** Frees all tensors of the model. */
  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    tf.dispose([this.#ropeCos, this.#ropeSin, this.#mask]);
  }
}

/** Loads the FFN variant, validates the config and creates the model on the current backend. */
export async function createModel(cfg: ModelConfig, seed: number, opts: CreateModelOptions = {}): Promise<Transformer> {
  const e = validateModel(cfg);
  if (e.length) throw new Error(`invalid model config:\n  ${e.join("\n  ")}`);
  const ffn = await loadFfn(cfg.ffn.kind);
  return new Transformer(cfg, ffn, seed, opts);
}

/**
 * Optimisation pieces: the learning-rate schedule, global-norm gradient clipping and AdamW.
 *
 * AdamW matches `torch.optim.AdamW` (decoupled weight decay), one update per step t = 1, 2, ...:
 *
 * ```text
 * p  <- p * (1 - lr * wd)                      (only parameters with decay = true)
 * m  <- beta1 * m + (1 - beta1) * g
 * v  <- beta2 * v + (1 - beta2) * g^2
 * p  <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * ```
 *
 * Its state is `m` (torch's `exp_avg`), `v` (`exp_avg_sq`) per parameter plus the step count t.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { TrainConfig } from "../core/config.ts";
import type { ParamSpec } from "../models/ffn/types.ts";
import { adamwUpdate, sumSquares } from "../backends/fused.ts";

/**
 * Learning rate of step `step` (0-based): linear warmup `lr * (step + 1) / warmup_steps` for the
 * first `warmup_steps` steps, then cosine decay from `lr` to `min_lr_ratio * lr`, reaching the
 * minimum exactly at the last step (`steps - 1`).
 */
export function learningRate(step: number, cfg: TrainConfig): number {
  const { lr, warmup_steps: w, steps, min_lr_ratio: r } = cfg;
  if (step < w) return (lr * (step + 1)) / w;
  const span = steps - 1 - w;
  const progress = span <= 0 ? 1 : Math.min(1, (step - w) / span);
  const minLr = lr * r;
  return minLr + 0.5 * (1 + Math.cos(Math.PI * progress)) * (lr - minLr);
}

/** Global L2 norm of the gradients and (when maxNorm > 0) the gradients scaled to at most maxNorm. */
export interface Clipped {
  grads: tf.Tensor[];
  /** The norm before clipping. */
  norm: tf.Scalar;
}

/** Global L2 norm of the gradients and the clip's scale (null when clipping is off). */
export interface ClipScale {
  /** The norm before clipping. */
  norm: tf.Scalar;
  /** min(1, maxNorm / (norm + 1e-6)); null for maxNorm = 0. */
  scale: tf.Scalar | null;
}

/**
 * The norm and scale of {@link clipByGlobalNorm} without scaling the gradients: pass the scale to
 * {@link AdamW.apply} (`gradScale`), which multiplies each gradient by it (inside the AdamW kernel on
 * native: one pass less over the gradients, the same bits). Call inside tf.tidy.
 */
export function globalNormScale(grads: tf.Tensor[], maxNorm: number): ClipScale {
  const norm = tf.sqrt(tf.addN(sumSquares(grads))) as tf.Scalar;
  if (!(maxNorm > 0)) return { norm, scale: null };
  return { norm, scale: tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6))) as tf.Scalar };
}

/**
 * Global-norm clipping as `torch.nn.utils.clip_grad_norm_`: scale = min(1, maxNorm / (norm + 1e-6)).
 * `maxNorm = 0` disables clipping (the norm is still computed). Call inside tf.tidy.
 */
export function clipByGlobalNorm(grads: tf.Tensor[], maxNorm: number): Clipped {
  const { norm, scale } = globalNormScale(grads, maxNorm);
  if (!scale) return { grads, norm };
  return { grads: grads.map((g) => tf.mul(g, scale)), norm };
}

/** AdamW hyper-parameters (from TrainConfig). */
export interface AdamWHyper {
  beta1: number;
  beta2: number;
  eps: number;
  weight_decay: number;
}

/** Saved optimizer state: step count and the moment tensors by parameter name. */
export interface AdamWState {
  step: number;
  m: ReadonlyMap<string, Float32Array>;
  v: ReadonlyMap<string, Float32Array>;
}

/** Hand-written AdamW over named parameters (see the module doc). */
export class AdamW {
  /** Updates applied so far (torch's `state["step"]`). */
  step = 0;
  readonly #specs: readonly ParamSpec[];
  readonly #hyper: AdamWHyper;
  readonly #m = new Map<string, tf.Variable>();
  readonly #v = new Map<string, tf.Variable>();

  /** Zero moments, or the given saved state (shapes checked). */
  constructor(specs: readonly ParamSpec[], hyper: AdamWHyper, state?: AdamWState) {
    this.#specs = specs;
    this.#hyper = hyper;
    for (const s of specs) {
      for (const [kind, map] of [["m", this.#m], ["v", this.#v]] as const) {
        const saved = state?.[kind].get(s.name);
        const n = s.shape.reduce((a, b) => a * b, 1);
        if (state && (!saved || saved.length !== n)) {
          throw new Error(`optimizer state for ${s.name}.${kind} is missing or has the wrong size`);
        }
        const init = saved ? tf.tensor(saved, s.shape, "float32") : tf.zeros(s.shape, "float32");
        map.set(s.name, tf.variable(init, false));
        init.dispose();
      }
    }
    if (state) this.step = state.step;
  }

  /**
   * Applies one update with learning rate `lr` (grads by parameter name), each gradient multiplied by
   * `opts.gradScale` first when given (the scale of {@link globalNormScale}). Call inside tf.tidy.
   */
  apply(
    params: ReadonlyMap<string, tf.Variable>,
    grads: ReadonlyMap<string, tf.Tensor>,
    lr: number,
    opts: { gradScale?: tf.Scalar | null } = {},
  ): void {
    const { beta1: b1, beta2: b2, eps, weight_decay: wd } = this.#hyper;
    this.step++;
    const bc1 = 1 - Math.pow(b1, this.step), bc2 = 1 - Math.pow(b2, this.step);
    for (const s of this.#specs) {
      const p = params.get(s.name), g = grads.get(s.name), m = this.#m.get(s.name)!, v = this.#v.get(s.name)!;
      if (!p || !g) throw new Error(`AdamW: no ${p ? "gradient" : "parameter"} for ${s.name}`);
      // The formula of the module doc; one fused kernel on the native backend (lib/backends/fused.ts).
      const weightDecay = s.decay ? wd : 0;
      const gradScale = opts.gradScale;
      const u = adamwUpdate(p, m, v, g, { beta1: b1, beta2: b2, eps, lr, weightDecay, bc1, bc2, gradScale });
      m.assign(u.m);
      v.assign(u.v);
      p.assign(u.p);
    }
  }

  /** The state as float32 arrays (async: works on every backend). */
  async getState(): Promise<AdamWState> {
    const m = new Map<string, Float32Array>(), v = new Map<string, Float32Array>();
    for (const s of this.#specs) {
      m.set(s.name, new Float32Array(await this.#m.get(s.name)!.data()));
      v.set(s.name, new Float32Array(await this.#v.get(s.name)!.data()));
    }
    return { step: this.step, m, v };
  }

  /** Frees the moment tensors. */
  dispose(): void {
    for (const t of [...this.#m.values(), ...this.#v.values()]) t.dispose();
  }
}

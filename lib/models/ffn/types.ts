/**
 * The interface every FFN variant implements. A variant lives in `lib/models/ffn/<kind>.ts` and
 * exports `variant: FfnVariant`; the transformer loads it by `model.ffn.kind` with a dynamic
 * import (see `loadFfn` in lib/models/variants.ts), so a run's code hash includes only the
 * variant it uses.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { ModelConfig } from "../../core/config.ts";
import type { Rng } from "../../util/rng.ts";

/** How a parameter is initialised. */
export type ParamInit = "normal" | "ones" | "zeros";

/** One named parameter tensor. */
export interface ParamSpec {
  /** Stable name (the safetensors tensor name). Variants give names relative to `layers.<i>.ffn.`. */
  name: string;
  /** Row-major shape. */
  shape: number[];
  /** How it is initialised. */
  init: ParamInit;
  /** Standard deviation for `normal`. */
  std?: number;
  /** Whether AdamW applies weight decay (matrices and embeddings: yes; norm gains, biases: no). */
  decay: boolean;
}

/** What a variant's `apply` may use besides its input and parameters. */
export interface FfnContext {
  /** The model config (variant options under `cfg.ffn`). */
  cfg: ModelConfig;
  /** Layer index, 0-based. */
  layer: number;
  /** True during a training step; false for evaluation. */
  training: boolean;
  /** The trainer's deterministic RNG (its state is checkpointed); null outside training. */
  rng: Rng | null;
  /** Adds a scalar to the training objective (e.g. a load-balancing loss). Not part of the reported loss. */
  addAuxLoss(loss: tf.Scalar): void;
  /** Records a per-step statistic; the model reports the mean over layers as `ffn.<name>`. */
  addStat(name: string, value: tf.Scalar): void;
  /**
   * The block's residual stream before the FFN pre-norm (`x` is `RMSNorm(residual)`), for variants
   * that run their own residual sub-layers inside the FFN block (finedeep). Set by the transformer.
   */
  residual?: tf.Tensor2D;
  /**
   * Tokens per sequence: `x` is `[batch·seqLen, d_model]`, sequence-major (for per-sequence
   * statistics such as FineRMoE's sequence-level balance loss). Set by the transformer.
   */
  seqLen?: number;
  /**
   * Set only by the end-of-run activation analysis (lib/train/analysis.ts): a variant reports its
   * internal activations here. Names: `act` = SiLU(gate) `[N, units]`, `prod` = SiLU(gate)·up
   * `[N, units]`, `gate` = router gate values `[N, experts]`; `sub` is the sub-layer index (0 when the
   * variant has none). A variant may report `act`/`prod` several times per layer (one per sub-layer):
   * the analysis pools them, so the layer's unit count is the sum. Must not change the computation.
   */
  capture?: (name: "act" | "prod" | "gate", value: tf.Tensor2D, sub?: number) => void;
}

/** The parameters of one layer's FFN, by relative name. */
export type FfnParams = Readonly<Record<string, tf.Tensor>>;

/** An FFN variant: what `lib/models/ffn/<kind>.ts` exports as `variant`. */
export interface FfnVariant {
  /** Equals the module's file name and `model.ffn.kind`. */
  readonly kind: string;
  /** One line for humans. */
  readonly description: string;
  /**
   * The default of every option (as written in `model.ffn`; `null` where the variant derives the value, e.g.
   * an automatic width). The planner fills them into each run's config (lib/runner/plan.ts), so the stored
   * and hashed config is the resolved one. Absent: the variant has no options.
   */
  readonly defaults?: Readonly<Record<string, unknown>>;
  /**
   * Checks `cfg.ffn` options (and anything else the variant needs). Each message names the field,
   * the bad value and the allowed range, e.g. `model.ffn.experts = 3 must divide model.d_ff = 384`.
   */
  validate(cfg: ModelConfig): string[];
  /** Parameters of ONE layer's FFN, names relative to `layers.<i>.ffn.`. */
  params(cfg: ModelConfig): ParamSpec[];
  /** Exact parameter count of ONE layer's FFN (equals the sum over `params`). */
  paramCount(cfg: ModelConfig): number;
  /** Forward FLOPs per token of ONE layer's FFN (2 per multiply-add of every matmul). */
  flopsPerToken(cfg: ModelConfig): number;
  /**
   * Optional: other configs of the same parameters that the end of a completed run evaluates on the trained
   * weights without retraining (e.g. DSMoE's inference-time τ sweep), keyed by a metric-name prefix `<p>`:
   * lib/train/reeval.ts stores `<p>_val_loss`, `<p>_experts_active` and `<p>_params_active` in `extra`.
   */
  evalConfigs?(cfg: ModelConfig): Record<string, ModelConfig>;
  /** `x: [N, d_model]` -> `[N, d_model]`. */
  apply(x: tf.Tensor2D, params: FfnParams, ctx: FfnContext): tf.Tensor2D;
}

/**
 * Metrics of sparse (routed) models: total and activated parameters, activated forward FLOPs per
 * token, active experts and expert load per layer, measured from the routing on the validation
 * batches ({@link sparseMetrics}, deterministic: it goes to `summary.extra` and the `run_metrics`
 * table), and measured inference speed ({@link measureInferenceSpeed}, a timing: it must NOT go to
 * `summary.extra`, which `--verify` compares bit for bit).
 *
 * A routed FFN variant ({@link RoutedFfn}: topk_moe, dsmoe, finermoe) describes its cost with
 * {@link SparseCost}: E experts of equal size plus fixed parts (router, gates, shared expert), and
 * reports its routing weights `[tokens, E]` (0 = expert not run for that token) through
 * `FfnContext.capture("gate", ...)`. Activated parameters of a token in a layer are
 * `fixed_params + (#experts with non-zero weight) · expert_params`; FLOPs likewise. The non-FFN part
 * (embeddings, attention, norms, head) is always active.
 *
 * ## Metric names (`summary.extra` / `run_metrics.name`)
 *
 * Every run (dense and Finedeep too, so plots can use one column):
 *
 * | name | meaning |
 * |---|---|
 * | `params_total` | all trainable parameters (= summary.params) |
 * | `params_active` | parameters used per token, mean over the validation tokens (dense: = params_total) |
 * | `flops_per_token_active` | forward FLOPs per token actually needed (same FLOP convention as summary.flops_per_token; dense: equal to it) |
 *
 * Routed variants only (layers `l<i>` 0-based, experts `e<j>` 0-based):
 *
 * | name | meaning |
 * |---|---|
 * | `ffn_params_active_l<i>`, `ffn_flops_active_l<i>` | layer i's FFN parameters / FLOPs used per token (mean over tokens) |
 * | `experts_active`, `experts_active_l<i>` | experts run per token (mean over tokens; over layers too for the first) |
 * | `expert_load_l<i>_e<j>` | fraction of layer i's (token, expert) assignments that went to expert j (sums to 1 over j) |
 * | `expert_load_cv_l<i>` | coefficient of variation (population std / mean) of the per-expert assignment counts of layer i; 0 = perfectly balanced |
 * | `expert_load_cv` | mean of `expert_load_cv_l<i>` over layers |
 * | `expert_load_max_l<i>` | max count / mean count of layer i (1 = balanced, E = everything on one expert) |
 * | `experts_dead_l<i>`, `experts_dead` | experts that got no token in layer i / in all layers |
 * | `tokens_no_expert_l<i>`, `tokens_no_expert` | fraction of tokens that ran no routed expert (DSMoE k = 0; mean over layers for the second) |
 *
 * ## Inference speed (summary fields next to `tokens_per_sec`, not `extra`)
 *
 * {@link measureInferenceSpeed} returns prefill and decode tokens/s at batch 1; lib/train/mod.ts stores
 * them as `summary.prefill_tokens_per_sec` / `decode_tokens_per_sec` (DuckDB `runs` columns of the same
 * names). The model has no KV cache, so every decode step recomputes the forward pass over its context
 * window (at most seq_len tokens); this is stated in the result (`kv_cache: false`). Each timed repetition
 * lasts at least `minRepMs` (passes run back to back), and the median of the repetitions is reported.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ModelConfig } from "../core/config.ts";
import type { Batch } from "../data/batches.ts";
import type { FfnVariant } from "./ffn/types.ts";
import { type Transformer } from "./transformer.ts";
import { flopsPerToken, paramCount } from "./variants.ts";

/** Cost model of one layer of a routed FFN. */
export interface SparseCost {
  /** Routed experts per layer (the columns of the captured routing weights). */
  experts: number;
  /** Parameters of one routed expert (all experts are the same size). */
  expert_params: number;
  /** Forward FLOPs of one routed expert for one token routed to it. */
  expert_flops: number;
  /** Always-used parameters of the layer (router, gates, shared expert). */
  fixed_params: number;
  /** Always-spent forward FLOPs per token (router, gates, shared expert). */
  fixed_flops: number;
  /** Experts per token when the config fixes it (top-k); null when routing decides (DSMoE). */
  active_experts: number | null;
}

/** An FFN variant with routed experts. */
export interface RoutedFfn extends FfnVariant {
  /** The layer's cost model (see {@link SparseCost}). */
  sparseCost(cfg: ModelConfig): SparseCost;
}

/** Whether an FFN variant is routed (has a cost model). */
export function isRouted(v: FfnVariant): v is RoutedFfn {
  return typeof (v as Partial<RoutedFfn>).sparseCost === "function";
}

/**
 * Per-layer routing counts, fed with captured routing weights (`[tokens, E]` row-major, non-zero =
 * expert run for that token). Exact integer counts, so the metrics are deterministic.
 */
export class RoutingStats {
  readonly #layers = new Map<number, { counts: number[]; tokens: number; assignments: number; empty: number }>();

  /** Adds one captured routing matrix of layer `layer`. */
  add(layer: number, values: ArrayLike<number>, experts: number): void {
    let s = this.#layers.get(layer);
    if (!s) this.#layers.set(layer, s = { counts: new Array(experts).fill(0), tokens: 0, assignments: 0, empty: 0 });
    if (s.counts.length !== experts) throw new Error(`layer ${layer}: ${experts} experts, earlier ${s.counts.length}`);
    const N = values.length / experts;
    for (let t = 0; t < N; t++) {
      let n = 0;
      for (let e = 0; e < experts; e++) {
        if (values[t * experts + e] !== 0) {
          s.counts[e]++;
          n++;
        }
      }
      s.assignments += n;
      if (n === 0) s.empty++;
    }
    s.tokens += N;
  }

  /** Layers seen, ascending. */
  layers(): number[] {
    return [...this.#layers.keys()].sort((a, b) => a - b);
  }

  /** Mean experts run per token in a layer. */
  activePerToken(layer: number): number {
    const s = this.#layers.get(layer)!;
    return s.assignments / s.tokens;
  }

  /** The routing metrics (see the module doc) of the layers seen. */
  metrics(): Record<string, number> {
    const out: Record<string, number> = {};
    let cvSum = 0, dead = 0, active = 0, empty = 0;
    const layers = this.layers();
    for (const l of layers) {
      const s = this.#layers.get(l)!, E = s.counts.length;
      const mean = s.assignments / E;
      const variance = s.counts.reduce((a, c) => a + (c - mean) ** 2, 0) / E;
      const cv = mean > 0 ? Math.sqrt(variance) / mean : 0;
      out[`experts_active_l${l}`] = s.assignments / s.tokens;
      s.counts.forEach((c, e) => (out[`expert_load_l${l}_e${e}`] = s.assignments > 0 ? c / s.assignments : 0));
      out[`expert_load_cv_l${l}`] = cv;
      out[`expert_load_max_l${l}`] = mean > 0 ? Math.max(...s.counts) / mean : 0;
      const d = s.counts.filter((c) => c === 0).length;
      out[`experts_dead_l${l}`] = d;
      out[`tokens_no_expert_l${l}`] = s.empty / s.tokens;
      cvSum += cv;
      dead += d;
      active += s.assignments / s.tokens;
      empty += s.empty / s.tokens;
    }
    if (layers.length) {
      out.expert_load_cv = cvSum / layers.length;
      out.experts_dead = dead;
      out.experts_active = active / layers.length;
      out.tokens_no_expert = empty / layers.length;
    }
    return out;
  }
}

/**
 * Parameter and FLOP metrics from per-layer mean active experts (`activePerLayer[i]`; pass the
 * analytic `active_experts` for a static estimate). Names as in the module doc.
 */
export function activeCost(
  cfg: ModelConfig,
  ffn: FfnVariant,
  activePerLayer?: readonly number[],
): Record<string, number> {
  const total = paramCount(cfg, ffn), flops = flopsPerToken(cfg, ffn);
  if (!isRouted(ffn) || !activePerLayer) {
    return { params_total: total, params_active: total, flops_per_token_active: flops };
  }
  const c = ffn.sparseCost(cfg), L = cfg.n_layers;
  if (activePerLayer.length !== L) throw new Error(`activeCost: ${activePerLayer.length} layers of ${L}`);
  const out: Record<string, number> = { params_total: total };
  let params = total - L * ffn.paramCount(cfg), fl = flops - L * ffn.flopsPerToken(cfg);
  activePerLayer.forEach((a, l) => {
    const p = c.fixed_params + a * c.expert_params, f = c.fixed_flops + a * c.expert_flops;
    out[`ffn_params_active_l${l}`] = p;
    out[`ffn_flops_active_l${l}`] = f;
    params += p;
    fl += f;
  });
  out.params_active = params;
  out.flops_per_token_active = fl;
  return out;
}

/**
 * The deterministic sparse-model metrics of a trained model on `batches` (the run's fixed
 * validation batches): routing counts of every layer from an inference forward pass, and the
 * parameter/FLOP metrics derived from them. For a variant without routing it returns only
 * `params_total`, `params_active` and `flops_per_token_active` (no forward pass).
 */
export async function sparseMetrics(model: Transformer, batches: readonly Batch[]): Promise<Record<string, number>> {
  const cfg = model.cfg, ffn = model.ffn;
  if (!isRouted(ffn)) return activeCost(cfg, ffn);
  const stats = new RoutingStats();
  for (const b of batches) {
    const captured: { layer: number; t: tf.Tensor2D }[] = [];
    tf.tidy(() => {
      const x = tf.tensor2d(b.x, [b.batchSize, b.seqLen], "int32");
      model.forward(x, { capture: (layer, name, t) => name === "gate" && captured.push({ layer, t: tf.keep(t) }) });
    });
    try {
      for (const c of captured) stats.add(c.layer, await c.t.data(), c.t.shape[1]);
    } finally {
      tf.dispose(captured.map((c) => c.t));
    }
  }
  const layers = stats.layers();
  if (layers.length !== cfg.n_layers) {
    throw new Error(`ffn kind "${ffn.kind}" reported routing for ${layers.length} of ${cfg.n_layers} layers`);
  }
  return { ...activeCost(cfg, ffn, layers.map((l) => stats.activePerToken(l))), ...stats.metrics() };
}

/** Options of {@link measureInferenceSpeed}. */
export interface InferenceSpeedOptions {
  /** Token ids to take the prompt from (e.g. the validation split); default: a fixed pseudo-random sequence. */
  tokens?: ArrayLike<number>;
  /** Prompt length of the prefill measurement (default and maximum: model.seq_len). */
  promptLen?: number;
  /** Tokens generated in the decode measurement (default 32, at most seq_len - 1). */
  decodeTokens?: number;
  /** Timed repetitions; the median is reported (default 5). */
  reps?: number;
  /**
   * Least duration of one timed repetition in ms (default 25): a repetition runs the prefill (or the whole
   * decode) as many times as the warm-up says fit, so that sub-millisecond passes are not timed one by one.
   */
  minRepMs?: number;
  /** Untimed warm-up repetitions (default 1). */
  warmup?: number;
}

/** Result of {@link measureInferenceSpeed}: timings, not deterministic. */
export interface InferenceSpeed {
  /** Prompt tokens per second of one forward pass over the prompt at batch 1 (median over reps). */
  prefill_tokens_per_sec: number;
  /** Generated tokens per second of greedy decoding at batch 1 (median over reps). */
  decode_tokens_per_sec: number;
  prompt_len: number;
  decode_tokens: number;
  reps: number;
  /** Prefills / decodes run back to back in one timed repetition. */
  prefill_runs_per_rep: number;
  decode_runs_per_rep: number;
  /** The tfjs backend it ran on. */
  backend: string;
  /** Always false: every decode step recomputes its whole context window (≤ seq_len tokens). */
  kv_cache: false;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Measures inference speed at batch 1 on the active backend: prefill (one forward pass over a
 * `promptLen`-token prompt, waiting for the last position's logits) and greedy decoding of
 * `decodeTokens` tokens from a prompt of `seq_len - decodeTokens` tokens (each step: forward over
 * the context window, argmax of the last position, read back). Routed variants run their sparse
 * inference path (each expert only on its tokens). A timing: report it beside `tokens_per_sec`,
 * never in `summary.extra`.
 */
export async function measureInferenceSpeed(
  model: Transformer,
  opts: InferenceSpeedOptions = {},
): Promise<InferenceSpeed> {
  const T = model.cfg.seq_len, V = model.cfg.vocab_size;
  const P = opts.promptLen ?? T, D = opts.decodeTokens ?? Math.min(32, T - 1);
  const reps = opts.reps ?? 5, warmup = opts.warmup ?? 1, minRepMs = opts.minRepMs ?? 25;
  if (!(Number.isInteger(P) && P >= 1 && P <= T)) throw new Error(`promptLen = ${P} must be an integer in [1, ${T}]`);
  if (!(Number.isInteger(D) && D >= 1 && D < T)) {
    throw new Error(`decodeTokens = ${D} must be an integer in [1, ${T - 1}]`);
  }
  if (!(Number.isInteger(reps) && reps >= 1)) throw new Error(`reps = ${reps} must be an integer >= 1`);
  const src = opts.tokens ?? Array.from({ length: T }, (_, i) => (i * 2654435761) % V);
  if (src.length < T) throw new Error(`tokens: ${src.length} tokens, need at least seq_len = ${T}`);
  const ids = Array.from({ length: T }, (_, i) => src[i]);

  /** Forward over `seq`, returns the argmax of the last position (read back: waits for the work). */
  const step = async (seq: number[]): Promise<number> => {
    const next = tf.tidy(() => {
      const logits = model.forward(tf.tensor2d(seq, [1, seq.length], "int32"));
      return tf.argMax(tf.reshape(tf.slice(logits, [0, seq.length - 1, 0], [1, 1, V]), [V]));
    });
    const v = (await next.data())[0];
    next.dispose();
    return v;
  };
  const prefill = async () => {
    const t0 = performance.now();
    await step(ids.slice(0, P));
    return performance.now() - t0;
  };
  const decode = async () => {
    const seq = ids.slice(0, T - D);
    const t0 = performance.now();
    for (let i = 0; i < D; i++) seq.push(await step(seq.slice(-T)));
    return performance.now() - t0;
  };
  let tp = Infinity, td = Infinity;
  for (let i = 0; i < Math.max(1, warmup); i++) {
    tp = Math.min(tp, await prefill());
    td = Math.min(td, await decode());
  }
  // Enough back-to-back runs per repetition to last minRepMs (a prefill can take well under a millisecond).
  const runsFor = (ms: number) => Math.max(1, Math.min(10_000, Math.ceil(minRepMs / Math.max(ms, 1e-3))));
  const np = runsFor(tp), nd = runsFor(td);
  const pre: number[] = [], dec: number[] = [];
  for (let i = 0; i < reps; i++) {
    let t = 0;
    for (let j = 0; j < np; j++) t += await prefill();
    pre.push(t / np);
    t = 0;
    for (let j = 0; j < nd; j++) t += await decode();
    dec.push(t / nd);
  }
  return {
    prefill_tokens_per_sec: P / (median(pre) / 1000),
    decode_tokens_per_sec: D / (median(dec) / 1000),
    prompt_len: P,
    decode_tokens: D,
    reps,
    prefill_runs_per_rep: np,
    decode_runs_per_rep: nd,
    backend: tf.getBackend(),
    kv_cache: false,
  };
}

/**
 * Re-evaluation of a trained model under other configs of the same parameters (an FFN variant's
 * `evalConfigs`, e.g. DSMoE's inference-time τ sweep): each config gets a model built from the trained
 * weights, evaluated on the run's validation batches. Deterministic, so it goes to `summary.extra`.
 *
 * @module
 */
import type { Batch } from "../data/batches.ts";
import { createModel, type Transformer } from "../models/transformer.ts";
import { sparseMetrics } from "../models/sparse_metrics.ts";
import { evaluate } from "./step.ts";

/**
 * For every entry `<p>` of `model.ffn.evalConfigs(model.cfg)`: `<p>_val_loss` (mean loss over `batches`),
 * `<p>_experts_active` (routed variants: experts run per token, mean over layers) and `<p>_params_active`.
 * Empty when the variant has no `evalConfigs` or returns none.
 */
export async function reevaluate(model: Transformer, batches: readonly Batch[]): Promise<Record<string, number>> {
  const configs = Object.entries(model.ffn.evalConfigs?.(model.cfg) ?? {});
  if (!configs.length) return {};
  const weights = await model.getWeights(), out: Record<string, number> = {};
  for (const [prefix, cfg] of configs) {
    const alt = await createModel(cfg, 0, { from: { weights } });
    try {
      out[`${prefix}_val_loss`] = await evaluate(alt, batches);
      const m = await sparseMetrics(alt, batches);
      if (m.experts_active !== undefined) out[`${prefix}_experts_active`] = m.experts_active;
      out[`${prefix}_params_active`] = m.params_active;
    } finally {
      alt.dispose();
    }
  }
  return out;
}

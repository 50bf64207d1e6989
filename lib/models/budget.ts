/**
 * Compute budgets: parameters and forward FLOPs per token of any model config (any FFN variant),
 * the comparison with a "dense twin" (the same config with the dense SwiGLU FFN), and the check an
 * experiment uses to refuse a grid whose variants are not budget-matched.
 *
 * FLOPs follow lib/models/transformer.ts `flopsPerToken`: 2 per multiply-add of every matmul, the
 * full T×T attention products, no norms/activations; a training step costs ≈ 3× per token.
 *
 * ```ts
 * const b = await budgetOf(cfg);                 // { params, flops_per_token, ffn_params, ffn_flops_per_token }
 * const c = await compareToDense(cfg);           // { params_rel, flops_rel, within } vs the dense twin
 * const problems = await budgetProblems(runs, { tolerance: 0.01, reference: "dense" });
 * ```
 *
 * @module
 */
import type { ModelConfig } from "../core/config.ts";
import { flopsPerToken, loadFfn, paramCount } from "./variants.ts";

/** Size and cost of one model config. */
export interface Budget {
  /** All trainable parameters (embeddings included). */
  params: number;
  /** Forward FLOPs per token of the whole model. */
  flops_per_token: number;
  /** Parameters of the FFN blocks (all layers). */
  ffn_params: number;
  /** Forward FLOPs per token of the FFN blocks (all layers). */
  ffn_flops_per_token: number;
}

/** Parameters and FLOPs per token of a model config (loads its FFN variant). */
export async function budgetOf(cfg: ModelConfig): Promise<Budget> {
  const ffn = await loadFfn(cfg.ffn.kind);
  const problems = ffn.validate(cfg);
  if (problems.length) throw new Error(`invalid model config:\n  ${problems.join("\n  ")}`);
  return {
    params: paramCount(cfg, ffn),
    flops_per_token: flopsPerToken(cfg, ffn),
    ffn_params: cfg.n_layers * ffn.paramCount(cfg),
    ffn_flops_per_token: cfg.n_layers * ffn.flopsPerToken(cfg),
  };
}

/** The same model with the dense SwiGLU FFN of width `d_ff`. */
export function denseTwin(cfg: ModelConfig): ModelConfig {
  return { ...cfg, ffn: { kind: "dense" } };
}

/** A config's budget relative to a reference (usually its dense twin). */
export interface BudgetComparison {
  budget: Budget;
  reference: Budget;
  /** params / reference.params - 1. */
  params_rel: number;
  /** flops_per_token / reference.flops_per_token - 1. */
  flops_rel: number;
  /** Both |params_rel| and |flops_rel| are within the tolerance. */
  within: boolean;
}

/** Default tolerance of budget matching: 1%. */
export const DEFAULT_BUDGET_TOLERANCE = 0.01;

/** Compares `cfg` with `reference` (default: its dense twin) within `tolerance` (default 1%). */
export async function compareToDense(
  cfg: ModelConfig,
  opts: { reference?: ModelConfig; tolerance?: number } = {},
): Promise<BudgetComparison> {
  const tol = opts.tolerance ?? DEFAULT_BUDGET_TOLERANCE;
  const [budget, reference] = await Promise.all([budgetOf(cfg), budgetOf(opts.reference ?? denseTwin(cfg))]);
  const params_rel = budget.params / reference.params - 1;
  const flops_rel = budget.flops_per_token / reference.flops_per_token - 1;
  return {
    budget,
    reference,
    params_rel,
    flops_rel,
    within: Math.abs(params_rel) <= tol && Math.abs(flops_rel) <= tol,
  };
}

/** What {@link budgetProblems} needs of a planned run. */
export interface BudgetRun {
  run_id: string;
  variant: string;
  config: { model: ModelConfig; train: unknown; data: unknown };
}

/** Options of {@link budgetProblems}: the experiment's `budget` declaration. */
export interface BudgetSpec {
  /** Largest allowed relative difference in parameters and in FLOPs per token, e.g. 0.01 for 1%. */
  tolerance: number;
  /**
   * Variant every other variant is compared with (e.g. "dense"). Without it, all variants of a
   * group are compared with each other (max / min - 1).
   */
  reference?: string;
}

const pct = (x: number) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(2)}%`;
const fmt = (x: number) => Math.round(x).toLocaleString("en-US");

/** Canonical JSON (sorted keys) for grouping. */
function key(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(key).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${
      Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${key((v as Record<string, unknown>)[k])}`).join(",")
    }}`;
  }
  return JSON.stringify(v);
}

/**
 * Checks that the runs of an experiment are budget-matched, before anything trains. Runs are
 * grouped by model size (the model config without `ffn` and `d_ff`, which variants may use to
 * match budgets); within a group:
 * - params and FLOPs per token of every variant are within `tolerance` of the reference variant
 *   (or, without one, of each other);
 * - every run has the same `train` and `data` sections (same tokens, optimizer and schedule).
 *
 * Returns one message per problem (empty when matched), naming the variants, the numbers and the fix.
 */
export async function budgetProblems(runs: readonly BudgetRun[], spec: BudgetSpec): Promise<string[]> {
  const out: string[] = [];
  if (!(typeof spec.tolerance === "number" && spec.tolerance >= 0 && spec.tolerance < 1)) {
    return [`budget.tolerance = ${JSON.stringify(spec.tolerance)} must be a number in [0, 1), e.g. 0.01 for 1%`];
  }
  if (spec.reference !== undefined && !runs.some((r) => r.variant === spec.reference)) {
    return [
      `budget.reference = ${JSON.stringify(spec.reference)} is not a variant of the experiment ` +
      `(variants: ${[...new Set(runs.map((r) => r.variant))].join(", ")})`,
    ];
  }
  const groups = new Map<string, BudgetRun[]>();
  for (const r of runs) {
    const { ffn: _ffn, d_ff: _dff, ...size } = r.config.model;
    const k = key(size);
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  for (const group of groups.values()) {
    const m = group[0].config.model;
    const where = groups.size > 1 ? ` (model d_model=${m.d_model}, n_layers=${m.n_layers}, seq_len=${m.seq_len})` : "";
    // One budget per variant (seeds share it).
    const byVariant = new Map<string, BudgetRun>();
    for (const r of group) if (!byVariant.has(r.variant)) byVariant.set(r.variant, r);
    const budgets = new Map<string, Budget>();
    for (const [v, r] of byVariant) budgets.set(v, await budgetOf(r.config.model));
    const refName = spec.reference && budgets.has(spec.reference) ? spec.reference : null;
    for (const what of ["params", "flops_per_token"] as const) {
      const entries = [...budgets].map(([v, b]) => ({ v, x: b[what] }));
      const label = what === "params" ? "parameters" : "FLOPs per token";
      if (refName) {
        const ref = budgets.get(refName)![what];
        for (const e of entries) {
          const rel = e.x / ref - 1;
          if (Math.abs(rel) > spec.tolerance) {
            out.push(
              `budget${where}: variant ${e.v} has ${fmt(e.x)} ${label}, ${pct(rel)} vs ${refName} (${fmt(ref)}); ` +
                `the experiment allows ±${100 * spec.tolerance}%. Match the budgets (e.g. model.d_ff or ` +
                `model.ffn.expert_width) or raise budget.tolerance`,
            );
          }
        }
      } else if (entries.length > 1) {
        const lo = entries.reduce((a, b) => (b.x < a.x ? b : a)), hi = entries.reduce((a, b) => (b.x > a.x ? b : a));
        const rel = hi.x / lo.x - 1;
        if (rel > spec.tolerance) {
          out.push(
            `budget${where}: ${label} differ by ${pct(rel)} between variants ${hi.v} (${fmt(hi.x)}) and ${lo.v} ` +
              `(${fmt(lo.x)}); the experiment allows ${
                100 * spec.tolerance
              }%. Match the budgets or raise budget.tolerance`,
          );
        }
      }
    }
    const first = group[0];
    for (const r of group.slice(1)) {
      for (const section of ["train", "data"] as const) {
        if (key(r.config[section]) !== key(first.config[section])) {
          out.push(
            `budget${where}: run ${r.run_id} has a different ${section} section than ${first.run_id}; ` +
              `budget-matched variants must train on the same tokens with the same optimizer and schedule`,
          );
        }
      }
    }
  }
  return [...new Set(out)];
}

/** One row of {@link budgetTable}. */
export interface BudgetRow extends Budget {
  variant: string;
  params_rel: number;
  flops_rel: number;
}

/** Budgets of named model configs relative to `reference` (a name among them), for printing. */
export async function budgetTable(configs: Record<string, ModelConfig>, reference: string): Promise<BudgetRow[]> {
  const ref = configs[reference];
  if (!ref) throw new Error(`budgetTable: reference ${reference} is not among ${Object.keys(configs).join(", ")}`);
  const rb = await budgetOf(ref);
  const rows: BudgetRow[] = [];
  for (const [variant, cfg] of Object.entries(configs)) {
    const b = await budgetOf(cfg);
    rows.push({
      variant,
      ...b,
      params_rel: b.params / rb.params - 1,
      flops_rel: b.flops_per_token / rb.flops_per_token - 1,
    });
  }
  return rows;
}

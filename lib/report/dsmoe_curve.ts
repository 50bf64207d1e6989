/**
 * DSMoE's re-thresholded τ curves (dsmoe-soft: each trained model evaluated at τ = 0.01…0.9 without retraining,
 * stored as `eval_tau_<τ>_val_loss` / `_experts_active`): the points, interpolation at an activation, and the
 * per-seed effects of the two dsmoe-soft claims that the ledger judges (lib/report/claims_declared.ts).
 *
 * @module
 */
import { num, type Row } from "./stats.ts";

/** Mean of a non-empty sample. */
export const meanOf = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;

/** One re-thresholded evaluation of one run: the `eval_tau_<τ>_*` metrics (lib/train/reeval.ts). */
export interface TauPoint {
  variant: string;
  seed: number;
  tau: number;
  /** Validation loss at τ (nats/token); ppl = exp(loss). */
  loss: number;
  /** Blocks run per token (of 8), mean over layers. */
  active: number;
}

/** {@link TauPoint}s from `(variant, seed, name, value)` rows of `run_metrics` named `eval_tau_<τ>_<metric>`. */
export function tauPoints(rows: Row[]): TauPoint[] {
  const by = new Map<string, Partial<TauPoint>>();
  for (const r of rows) {
    const m = /^eval_tau_([0-9.]+)_(val_loss|experts_active)$/.exec(String(r.name));
    if (!m) continue;
    const key = `${r.variant}/${r.seed}/${m[1]}`;
    const p = by.get(key) ?? { variant: String(r.variant), seed: Number(r.seed), tau: Number(m[1]) };
    if (m[2] === "val_loss") p.loss = Number(r.value);
    else p.active = Number(r.value);
    by.set(key, p);
  }
  return [...by.values()].filter((p): p is TauPoint => num(p.loss) !== null && num(p.active) !== null)
    .sort((a, b) => a.variant.localeCompare(b.variant) || a.seed - b.seed || a.tau - b.tau);
}

/** Perplexity of a curve (points of one run) linearly interpolated at `active` blocks; null outside its range. */
export function pplAtActive(curve: TauPoint[], active: number): number | null {
  const pts = [...curve].sort((a, b) => a.active - b.active);
  for (let i = 0; i + 1 < pts.length; i++) {
    const [a, b] = [pts[i], pts[i + 1]];
    if (active >= a.active && active <= b.active) {
      const w = b.active === a.active ? 0 : (active - a.active) / (b.active - a.active);
      return Math.exp(a.loss) + w * (Math.exp(b.loss) - Math.exp(a.loss));
    }
  }
  return null;
}

/** Mean curve over seeds of one variant: (τ, ppl, active) sorted by τ. */
export function meanCurve(points: TauPoint[], variant: string): { tau: number; ppl: number; active: number }[] {
  const taus = [...new Set(points.filter((p) => p.variant === variant).map((p) => p.tau))].sort((a, b) => a - b);
  return taus.map((tau) => {
    const at = points.filter((p) => p.variant === variant && p.tau === tau);
    return { tau, ppl: meanOf(at.map((p) => Math.exp(p.loss))), active: meanOf(at.map((p) => p.active)) };
  });
}

/** The {@link TauPoint}s of one run row whose columns include its `eval_tau_*` metrics. */
export function runTauPoints(run: Row): TauPoint[] {
  return tauPoints(Object.entries(run).map(([name, value]) => ({ variant: run.variant, seed: run.seed, name, value })));
}

/** Violations of monotonicity on a curve sorted by τ: rises in activation plus falls in perplexity as τ rises. */
export function monotoneViolations(curve: { active: number; ppl: number }[]): { actUp: number; pplDown: number } {
  let actUp = 0, pplDown = 0;
  for (let i = 1; i < curve.length; i++) {
    if (curve[i].active > curve[i - 1].active) actUp++;
    if (curve[i].ppl < curve[i - 1].ppl) pplDown++;
  }
  return { actUp, pplDown };
}

/**
 * Per-seed effect of "soft-trained gates are worse than STE-trained at matched activation": the soft run's
 * re-thresholded curve interpolated at the thresholded run's activation at τ = `tau`, in % vs the thresholded
 * run's perplexity (paired by seed; seeds whose activation lies outside the soft curve are left out).
 */
export function softVsThresholdEffects(soft: Row[], threshold: Row[], tau = 0.5): number[] {
  return threshold.flatMap((t) => {
    const thr = runTauPoints(t).find((p) => p.tau === tau);
    const s = soft.find((r) => Number(r.seed) === Number(t.seed));
    const at = thr && s ? pplAtActive(runTauPoints(s), thr.active) : null;
    return thr && at !== null ? [100 * (at / Math.exp(thr.loss) - 1)] : [];
  });
}

/** Per-seed effect of "re-thresholding traces a monotone curve": the number of violations on each run's curve. */
export function rethresholdEffects(runs: Row[]): number[] {
  return runs.flatMap((r) => {
    const c = runTauPoints(r).map((p) => ({ active: p.active, ppl: Math.exp(p.loss) }));
    if (c.length < 3) return [];
    const v = monotoneViolations(c);
    return [v.actUp + v.pplDown];
  });
}

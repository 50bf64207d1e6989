/**
 * Test fixtures of the reports.
 *
 * @module
 */
import { type ClaimRow, ledgerRows } from "./claims.ts";
import { claimsOf } from "./scale_study.ts";
import type { Row } from "./stats.ts";

/** A variant summary row (3 seeds, ppl std 0.1) as lib/report/sparse.ts's query returns it. */
export function summaryRow(variant: string, ppl: number, extra: Record<string, unknown> = {}): Row {
  return { variant, seeds: 3, ppl_mean: ppl, ppl_std: 0.1, ...extra };
}

/**
 * The ledger rows (lib/report/claims.ts) of the claims `experiment` tests, from synthetic runs: 3 seeds per
 * variant at 154k tokens, d=64, each metric its value plus a small seed- and variant-dependent offset (±0.3%),
 * so equal values give an inconclusive effect and a 5% difference a clear one. A number is the val_ppl.
 */
export function ledgerFor(experiment: string, values: Record<string, number | Record<string, number>>): ClaimRow[] {
  const runs = Object.entries(values).flatMap(([variant, v]) =>
    [0, 1, 2].map((seed) => {
      const jitter = 0.003 * (((variant.length + 7 * seed) % 3) - 1);
      const metrics = Object.entries(typeof v === "number" ? { val_ppl: v } : v)
        .map(([k, x]) => [k, x * (1 + jitter)]);
      return {
        experiment,
        variant,
        seed,
        scale: "default",
        d_model: 64,
        tokens: 153600,
        params: 1000,
        ...Object.fromEntries(metrics),
      };
    })
  );
  return ledgerRows(claimsOf(experiment), runs);
}

/**
 * Test fixtures of the reports.
 *
 * @module
 */
import type { Row } from "./stats.ts";

/** A variant summary row (3 seeds, ppl std 0.1) as lib/report/sparse.ts's query returns it. */
export function summaryRow(variant: string, ppl: number, extra: Record<string, unknown> = {}): Row {
  return { variant, seeds: 3, ppl_mean: ppl, ppl_std: 0.1, ...extra };
}

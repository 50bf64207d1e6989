/**
 * The end-of-run analysis's metric contract (lib/train/analysis.ts writes it, lib/report reads it):
 * the NSAR thresholds and the activation histogram's bins.
 *
 * @module
 */

/** Thresholds of the NSAR metrics. */
export const NSAR_TAUS: readonly number[] = [0.01, 0.05, 0.1, 0.2];

/** Activation histogram bins: `count` bins of `width` from `lo`, then one overflow bin. */
export const HIST_BINS = { lo: -0.3, width: 0.025, count: 48 } as const;

const ZERO_BIN = Math.round(-HIST_BINS.lo / HIST_BINS.width);

/** Number of histogram bins including the overflow bin. */
export const HIST_SIZE: number = HIST_BINS.count + 1;

/** Lower edge of histogram bin j (the overflow bin's is `lo + count·width`). */
export function histBinLower(j: number): number {
  return HIST_BINS.lo + j * HIST_BINS.width;
}

/** Histogram bin of a value (see {@link HIST_BINS}). */
export function histBin(v: number): number {
  const j = Math.floor(v / HIST_BINS.width) + ZERO_BIN; // relative to 0, so 0 falls exactly on an edge

  return j < 0 ? 0 : j >= HIST_BINS.count ? HIST_BINS.count : j;
}

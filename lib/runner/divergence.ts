/**
 * Divergence: a run whose training loss stays far above where it started (or above ln(vocab), what guessing
 * uniformly costs) for a sustained window has blown up; it is marked `diverged` (in the cache and the
 * database), said so, and `exp` exits non-zero. The rest of a sweep continues.
 *
 * @module
 */
import type { MetricRow, RunFailure } from "../core/records.ts";

/** Nats above max(ln(vocab), the first training loss) that count as diverged. */
export const DIVERGENCE_MARGIN = 1;

/**
 * The failure of a diverged run, or null: `window` consecutive training losses (default: 10% of the logged
 * steps, at least 3) are all above max(ln(vocab), first loss) + {@link DIVERGENCE_MARGIN}, or not finite, even if
 * the loss comes back later (a run that spent that long blown up is not a result to compare).
 */
export function detectDivergence(
  metrics: readonly MetricRow[],
  opts: { vocab: number; window?: number },
): RunFailure | null {
  const train = metrics.filter((m) => m.split === "train" && m.name === "loss").sort((a, b) => a.step - b.step);
  if (train.length === 0) return null;
  const window = opts.window ?? Math.max(3, Math.ceil(train.length / 10));
  if (train.length < window) return null;
  const limit = Math.max(Math.log(opts.vocab), train[0].value) + DIVERGENCE_MARGIN;
  const bad = (v: number) => !Number.isFinite(v) || v > limit;
  // The first streak of at least `window` consecutive bad steps (a short spike that recovers is not divergence).
  for (let i = 0; i < train.length; i++) {
    if (!bad(train[i].value)) continue;
    let j = i;
    while (j + 1 < train.length && bad(train[j + 1].value)) j++;
    if (j - i + 1 >= window) {
      const end = j === train.length - 1 ? "the end" : `step ${train[j].step}`;
      return {
        step: train[i].step,
        reason: `diverged: training loss above ${limit.toFixed(2)} (max of ln(vocab) and the first loss, + ` +
          `${DIVERGENCE_MARGIN}) from step ${train[i].step} to ${end} (peak ${
            Math.max(...train.slice(i, j + 1).map((m) => m.value)).toPrecision(4)
          })`,
        last_good_loss: i > 0 ? train[i - 1].value : null,
      };
    }
    i = j;
  }
  return null;
}

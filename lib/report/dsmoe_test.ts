import assert from "node:assert/strict";
import {
  dsmoeRethresholdVerdict,
  dsmoeSoftVerdict,
  dsmoeSteVerdict,
  dsmoeTauVerdict,
  pplAtActive,
  type TauPoint,
  tauPoints,
} from "./dsmoe.ts";
import { tCrit } from "./stats.ts";
import { summaryRow as row } from "./testing.ts";

Deno.test("dsmoe verdicts are computed from the numbers (supported / not supported flip)", () => {
  // dsmoe-tau: same quality at 45% active -> supported; 10% worse -> not supported; no sparsity -> not supported.
  const tau = (p: number, act: number) =>
    dsmoeTauVerdict([row("dense", 10, { ffn_active_pct: 100 }), row("dsmoe_t0.5", p, { ffn_active_pct: act })], "m");
  assert.match(tau(10.05, 45), /ppl 10\.050 with 45\.0% .* t 0\.6\): claim .* supported at this scale$/);
  assert.match(tau(11, 45), /not supported/);
  assert.match(tau(10, 95), /not supported at this scale \(DSMoE did not sparsify/);
  // dsmoe-ste: collapse and worse ppl -> supported; no collapse -> not supported.
  const ste = (aOff: number, pOff: number) =>
    dsmoeSteVerdict([
      row("ste_t0.5", 10, { experts_active: 4, no_expert: 0 }),
      row("no_ste_t0.5", pOff, { experts_active: aOff, no_expert: 0 }),
    ], "m");
  assert.match(ste(1, 11), /collapse without the STE is observed and hurts perplexity .*\(claim supported\)/);
  assert.match(ste(3.9, 11), /not observed .*\(claim not supported\)/);
  assert.match(ste(1, 10), /observed but perplexity is not clearly worse .*\(claim not supported\)/);
});

Deno.test("dsmoe-soft verdicts: soft vs STE at matched activation, and the monotone τ sweep, from the numbers", () => {
  // Curves: (τ, blocks, ppl) per variant and seed; loss = ln(ppl).
  const curve = (variant: string, seed: number, pts: [number, number, number][]): TauPoint[] =>
    pts.map(([tau, active, ppl]) => ({ variant, seed, tau, active, loss: Math.log(ppl) }));
  const thr = (s: number, ppl: number) =>
    curve("threshold", s, [[0.3, 6, ppl - 0.5], [0.5, 4, ppl], [0.7, 2, ppl + 1]]);
  const soft = (s: number, at4: number) =>
    curve("soft", s, [[0.3, 7, at4 - 1], [0.5, 5, at4 - 0.2], [0.7, 3, at4 + 0.2]]);
  const pts = (softAt4: number[]) => [0, 1, 2].flatMap((s) => [...thr(s, 10 + 0.01 * s), ...soft(s, softAt4[s])]);
  // Soft interpolated at 4 blocks = at4 (midpoint of 5 and 3 blocks): clearly worse -> supported.
  assert.match(
    dsmoeSoftVerdict(pts([11, 11.2, 10.9]), "m"),
    /4\.00 blocks\/token .* 3\/3 seeds in range, paired t [\d.]+ vs 4\.30 at 2 df; soft worse in 3\/3 seeds\): claim .* supported at this scale$/,
  );
  assert.match(dsmoeSoftVerdict(pts([10, 9.9, 10.01]), "m"), /claim .* not supported/);
  // Worse by the mean with paired t ≈ 3.3 at 2 df: above the 4-df screen 2.78 but below 4.30, so not supported.
  assert.match(
    dsmoeSoftVerdict(pts([10.6, 10.21, 10.42]), "m"),
    /paired t 3\.\d vs 4\.30 at 2 df; soft worse in 3\/3 seeds\): claim .* not supported \(worse, but not clearly\)/,
  );
  assert.deepEqual([tCrit(0), tCrit(2), tCrit(4), tCrit(100)], [Infinity, 4.303, 2.776, 2]);
  // Out of the soft curve's activation range: not determinable.
  const far = [...thr(0, 10), ...curve("soft", 0, [[0.3, 8, 10], [0.5, 7, 10]])];
  assert.match(dsmoeSoftVerdict(far, "m"), /outside the soft model's re-thresholded curve/);
  assert.equal(pplAtActive(soft(0, 11), 4), 11);
  // τ sweep: monotone -> supported; ppl falls as τ rises -> not supported.
  assert.match(dsmoeRethresholdVerdict(thr(0, 10), "m"), /: monotone: claim .* supported at this scale$/);
  const bumpy = curve("threshold", 0, [[0.3, 6, 10], [0.5, 4, 9], [0.7, 5, 11]]);
  assert.match(
    dsmoeRethresholdVerdict(bumpy, "m"),
    /not monotone \(1 rises in activation, 1 falls in ppl\).* not supported/,
  );
  // tauPoints parses the stored metric names.
  const parsed = tauPoints([
    { variant: "soft", seed: 0, name: "eval_tau_0.5_val_loss", value: 2 },
    { variant: "soft", seed: 0, name: "eval_tau_0.5_experts_active", value: 3 },
    { variant: "soft", seed: 0, name: "eval_tau_0.5_params_active", value: 99 },
  ]);
  assert.deepEqual(parsed, [{ variant: "soft", seed: 0, tau: 0.5, loss: 2, active: 3 }]);
});

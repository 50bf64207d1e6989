import assert from "node:assert/strict";
import { finedeepArmsVerdict, gapSteps, lossGaps } from "./finedeep_arms.ts";
import { ledgerFor, summaryRow as row } from "./testing.ts";

/** Val-loss rows: dense follows `base`, each arm adds its gap per step (plus a small per-seed wobble). */
function curves(gaps: Record<string, Record<number, number>>) {
  const steps = [10, 20, 30, 40, 150], out: Record<string, unknown>[] = [];
  for (const seed of [0, 1, 2]) {
    for (const step of steps) {
      const base = 5 - step / 100 + 0.01 * seed;
      out.push({ variant: "dense", seed, step, value: base });
      for (const [v, g] of Object.entries(gaps)) {
        out.push({ variant: v, seed, step, value: base + g[step] + 0.001 * seed });
      }
    }
  }
  return out;
}

Deno.test("finedeep-arms: gaps are paired by seed at steps 20, 40 and the end; verdicts flip with the numbers", () => {
  assert.deepEqual(gapSteps([10, 20, 30, 40, 150]), [20, 40, 150]);
  assert.deepEqual(gapSteps([3, 6]), [3, 6]); // tiny: the first evaluation and the end
  const lag = { 10: 0.3, 20: 0.2, 30: 0.15, 40: 0.1, 150: 0.05 };
  const g = lossGaps(curves({ headline: lag, gate_open: { 10: 0, 20: -0.01, 30: 0, 40: -0.01, 150: -0.02 } }));
  const h20 = g.find((x) => x.variant === "headline" && x.step === 20)!;
  assert.ok(Math.abs(h20.gap - 0.201) < 1e-9 && h20.seeds === 3 && h20.t! > 100, JSON.stringify(h20));
  const summary = [row("dense", 10), row("headline", 10.6), row("gate_open", 9.5)];
  const o = {
    meta: "m",
    ledger: ledgerFor("finedeep-arms", {
      dense: { val_ppl: 10, "nsar_gate_0.1": 0.5 },
      headline: { val_ppl: 10.6, "nsar_gate_0.1": 0.5 },
      gate_open: { val_ppl: 9.5, "nsar_gate_0.1": 0.6 },
    }),
  };
  const lines = finedeepArmsVerdict(summary, g, o);
  assert.match(
    lines[0],
    /headline: ppl 10\.600 vs dense 10\.000 \(\+6\.00%, Welch t 7\.3\); claim finedeep-beats-dense: headline vs dense \+6\.\d+% \[.*\]: not supported at 154k tokens, d=64; claim finedeep-nsar: headline vs dense .*: inconclusive at 154k/,
  );
  assert.match(
    lines[1],
    /gate_open: ppl 9\.500 .*; claim finedeep-beats-dense: gate_open vs dense -5\.\d+% .*: supported at .*; claim finedeep-nsar: gate_open vs dense \+0\.1\d+ .*: supported at/,
  );
  assert.match(
    lines[2],
    /headline step 20 \+0\.201 .* a gate-open init removes the early lag \(removed: .*\); the end gap is 137% smaller with it at this scale$/,
  );
  // A gate-open arm that still lags (less): "reduces but does not remove".
  const half = lossGaps(curves({ headline: lag, gate_open: { 10: 0.2, 20: 0.1, 30: 0.08, 40: 0.05, 150: 0.05 } }));
  assert.match(finedeepArmsVerdict(summary, half, o)[2], /reduces but does not remove the early lag/);
  // Removed at step 20 but not at step 40: reduced only.
  const late = lossGaps(curves({ headline: lag, gate_open: { 10: 0, 20: 0, 30: 0.1, 40: 0.09, 150: 0.05 } }));
  assert.match(finedeepArmsVerdict(summary, late, o)[2], /reduces but does not remove/);
  const worse = lossGaps(curves({ headline: lag, gate_open: { 10: 0.4, 20: 0.3, 30: 0.2, 40: 0.2, 150: 0.1 } }));
  assert.match(finedeepArmsVerdict(summary, worse, o)[2], /does not reduce the early lag/);
  assert.match(finedeepArmsVerdict([row("headline", 10)], g, o)[0], /not enough completed runs \(need dense\)/);
});

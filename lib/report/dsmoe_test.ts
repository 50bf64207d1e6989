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
import { ledgerRows } from "./claims.ts";
import { claimsOf } from "./scale_study.ts";
import { ledgerFor, summaryRow as row } from "./testing.ts";

Deno.test("dsmoe verdicts: the numbers, and the claim's word from the ledger (supported / not / inconclusive flip)", () => {
  // dsmoe-tau: same quality at 45% active -> supported (not worse); 10% worse -> not supported.
  const tau = (p: number, act: number) =>
    dsmoeTauVerdict(
      [row("dense", 10, { ffn_active_pct: 100 }), row("dsmoe_t0.5", p, { ffn_active_pct: act })],
      "m",
      ledgerFor("dsmoe-tau", { dense: 10, "dsmoe_t0.5": p }),
    );
  assert.match(
    tau(10.05, 45),
    /ppl 10\.050 with 45\.0% .* Welch t 0\.6\); claim dsmoe-dense-quality: dsmoe_t0\.5 vs dense \+0\.\d+% \[.*\]: supported at 154k tokens, d=64$/,
  );
  assert.match(tau(11, 45), /: not supported at 154k tokens, d=64$/);
  assert.match(tau(10, 95), /DSMoE did not sparsify: ≥ 90% active\); claim dsmoe-dense-quality: /);
  // dsmoe-ste: collapse described from the numbers; the claim's word from the ledger.
  const ste = (aOff: number, pOff: number) =>
    dsmoeSteVerdict(
      [
        row("ste_t0.5", 10, { experts_active: 4, no_expert: 0 }),
        row("no_ste_t0.5", pOff, { experts_active: aOff, no_expert: 0 }),
      ],
      "m",
      ledgerFor("dsmoe-ste", { "ste_t0.5": 10, "no_ste_t0.5": pOff }),
    );
  assert.match(
    ste(1, 11),
    /collapse without the STE is observed; claim dsmoe-ste: ste_t0\.5 vs no_ste_t0\.5 .*: supported at/,
  );
  assert.match(ste(3.9, 9), /not observed; claim dsmoe-ste: .*: not supported at 154k tokens/);
  assert.match(ste(1, 10), /observed; claim dsmoe-ste: .*: inconclusive at 154k tokens/);
  assert.match(dsmoeSteVerdict([row("ste_t0.5", 10)], "m", []), /not enough completed runs/);
});

Deno.test("dsmoe-soft verdicts: the τ curves' numbers, the words from the ledger over the same curves", () => {
  // Curves: (τ, blocks, ppl) per variant and seed; loss = ln(ppl).
  const curve = (variant: string, seed: number, pts: [number, number, number][]): TauPoint[] =>
    pts.map(([tau, active, ppl]) => ({ variant, seed, tau, active, loss: Math.log(ppl) }));
  const thr = (s: number, ppl: number) =>
    curve("threshold", s, [[0.3, 6, ppl - 0.5], [0.5, 4, ppl], [0.7, 2, ppl + 1]]);
  const soft = (s: number, at4: number) =>
    curve("soft", s, [[0.3, 7, at4 - 1], [0.5, 5, at4 - 0.2], [0.7, 3, at4 + 0.2]]);
  const pts = (softAt4: number[]) => [0, 1, 2].flatMap((s) => [...thr(s, 10 + 0.01 * s), ...soft(s, softAt4[s])]);
  // The ledger over the same points, as the runs' eval_tau_* columns.
  const ledger = (points: TauPoint[]) =>
    ledgerRows(
      claimsOf("dsmoe-soft"),
      [...new Set(points.map((p) => `${p.variant}/${p.seed}`))].map((k) => {
        const [variant, seed] = k.split("/");
        const mine = points.filter((p) => p.variant === variant && p.seed === Number(seed));
        return {
          experiment: "dsmoe-soft",
          variant,
          seed: Number(seed),
          d_model: 64,
          tokens: 204800,
          params: 1,
          val_ppl: 10,
          ...Object.fromEntries(mine.flatMap((p) => [
            [`eval_tau_${p.tau}_val_loss`, p.loss],
            [`eval_tau_${p.tau}_experts_active`, p.active],
          ])),
        };
      }),
    );
  const soft3 = (at4: number[]) => dsmoeSoftVerdict(pts(at4), "m", ledger(pts(at4)));
  // Soft interpolated at 4 blocks = at4 (midpoint of 5 and 3 blocks): clearly worse -> supported.
  assert.match(
    soft3([11, 11.2, 10.9]),
    /4\.00 blocks\/token .* \(3\/3 seeds in range; soft worse in 3\/3\); claim dsmoe-soft-worse: soft vs threshold \+10\.\d+% \[.*\]: supported at 205k tokens, d=64$/,
  );
  assert.match(soft3([10.1, 9.9, 10.05]), /soft worse in 2\/3\); claim .*: inconclusive at 205k/);
  assert.match(soft3([9, 8.9, 9.1]), /soft worse in 0\/3\); claim .*: not supported at 205k/);
  // Out of the soft curve's activation range: no ledger row, said so.
  const far = [...thr(0, 10), ...curve("soft", 0, [[0.3, 8, 10], [0.5, 7, 10]])];
  assert.match(
    dsmoeSoftVerdict(far, "m", ledger(far)),
    /outside the soft model's re-thresholded curve; claim dsmoe-soft-worse: no ledger row/,
  );
  assert.equal(pplAtActive(soft(0, 11), 4), 11);
  // τ sweep: monotone -> supported; ppl falls as τ rises -> not supported (one seed).
  const sweep = (p: TauPoint[]) => dsmoeRethresholdVerdict(p, "m", ledger(p));
  assert.match(
    sweep(thr(0, 10)),
    /: mean curve monotone; claim dsmoe-tau-monotone: threshold \+0\.0000: supported at 205k tokens, d=64, 1 seed$/,
  );
  const bumpy = curve("threshold", 0, [[0.3, 6, 10], [0.5, 4, 9], [0.7, 5, 11]]);
  assert.match(sweep(bumpy), /not monotone \(1 rises in activation, 1 falls in ppl\); .* \+2\.0000: not supported/);
  // tauPoints parses the stored metric names.
  const parsed = tauPoints([
    { variant: "soft", seed: 0, name: "eval_tau_0.5_val_loss", value: 2 },
    { variant: "soft", seed: 0, name: "eval_tau_0.5_experts_active", value: 3 },
    { variant: "soft", seed: 0, name: "eval_tau_0.5_params_active", value: 99 },
  ]);
  assert.deepEqual(parsed, [{ variant: "soft", seed: 0, tau: 0.5, loss: 2, active: 3 }]);
});

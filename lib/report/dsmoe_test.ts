import assert from "node:assert/strict";
import { dsmoeSteVerdict, dsmoeTauVerdict } from "./dsmoe.ts";
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

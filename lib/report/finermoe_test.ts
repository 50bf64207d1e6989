import assert from "node:assert/strict";
import { finermoeDimsVerdict, finermoeUpcycleVerdict } from "./finermoe.ts";
import { summaryRow as row } from "./testing.ts";

Deno.test("finermoe verdicts are computed from the numbers (supported / not supported flip)", () => {
  // finermoe-upcycle: must beat every baseline.
  const up = (f: number) =>
    finermoeUpcycleVerdict(
      [
        row("finermoe", f),
        row("dense", 10),
        row("finermoe_no_shared", 10),
        row("copy_top2", 10),
        row("split_top2", 10),
      ],
      "m",
    );
  assert.match(up(9), /better than 4\/4 baselines — claim .* supported/);
  assert.match(up(9.95), /better than 0\/4 baselines — claim .* not supported/);
  // finermoe-dims: out < inter and both best.
  const dims = (both: number) =>
    finermoeDimsVerdict([row("fg_none", 12), row("fg_inter", 11), row("fg_out", 10), row("fg_both", both)], "m");
  assert.match(dims(9), /ranking fg_both 9\.000 .* output-only vs intermediate-only better .* both best: .* supported/);
  assert.match(dims(10.5), /both not best \(not below fg_out t [\d.]+\): .* not supported/);
  // Lowest mean, but within noise of fg_out: said so, and the claim is not supported.
  assert.match(dims(9.98), /both lowest, but not significantly below fg_out t -[\d.]+: .* not supported/);
});

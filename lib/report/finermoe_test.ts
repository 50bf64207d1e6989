import assert from "node:assert/strict";
import {
  finermoeDimsVerdict,
  finermoeGranularityVerdict,
  finermoeRoutersVerdict,
  finermoeUpcycleVerdict,
} from "./finermoe.ts";
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

Deno.test("finermoe-routers and finermoe-granularity verdicts flip with the numbers", () => {
  const routers = (single: number) => finermoeRoutersVerdict([row("single", single), row("separate", 10)], "m");
  assert.match(
    routers(9.5),
    /single router ppl 9\.500 vs separate routers 10\.000 \(-5\.00% .*t -6\.1\): claim .* supported/,
  );
  assert.match(routers(10.1), /claim .* not supported/);
  assert.match(finermoeRoutersVerdict([row("single", 9)], "m"), /not enough completed runs/);
  // Finer G_O helps at every G_I when ppl falls along G_O; finer G_I: ppl rises along G_I here.
  const grid = (goStep: number) =>
    [2, 4].flatMap((gi) =>
      [1, 4].map((go) => row(`gi${gi}_go${go}`, 10 + 0.5 * Math.log2(gi) + goStep * Math.log2(go)))
    );
  const down = finermoeGranularityVerdict(grid(-1), "m").split("\n");
  assert.match(down[0], /finer G_O: GI=2: gi2_go1 10\.500 → gi2_go4 8\.500 .* helps at every G_I\) supported/);
  assert.match(down[1], /finer G_I: .* not supported \(lower at 0 lines\)/);
  assert.match(finermoeGranularityVerdict(grid(1), "m").split("\n")[0], /not supported \(lower at 0 lines\)/);
});

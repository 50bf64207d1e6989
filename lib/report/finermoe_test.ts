import assert from "node:assert/strict";
import {
  finermoeDimsVerdict,
  finermoeGranularityVerdict,
  finermoeRoutersVerdict,
  finermoeUpcycleVerdict,
} from "./finermoe.ts";
import { ledgerFor, summaryRow as row } from "./testing.ts";

Deno.test("finermoe verdicts: the numbers, and the claims' words from the ledger (flip with the numbers)", () => {
  // finermoe-upcycle: the ledger compares with the strongest of dense, copy_top2, split_top2.
  const up = (f: number) => {
    const v = { finermoe: f, dense: 10, finermoe_no_shared: 10, copy_top2: 10.2, split_top2: 10.1 };
    return finermoeUpcycleVerdict(
      Object.entries(v).map(([k, p]) => row(k, p)),
      "m",
      ledgerFor("finermoe-upcycle", v),
    );
  };
  assert.match(
    up(9),
    /vs dense -10\.00% \(Welch t -12\.2\).*; claim finermoe-beats-upcycling: finermoe vs dense -10\.\d+% \[.*\]: supported at 154k tokens, d=64$/,
  );
  assert.match(up(11), /: not supported at 154k tokens, d=64$/);
  // finermoe-dims: out vs inter, both vs the strongest of the others.
  const dims = (both: number) => {
    const v = { fg_none: 12, fg_inter: 11, fg_out: 10, fg_both: both };
    return finermoeDimsVerdict(Object.entries(v).map(([k, p]) => row(k, p)), "m", ledgerFor("finermoe-dims", v));
  };
  assert.match(
    dims(9),
    /ranking fg_both 9\.000 .*; claim finermoe-output-fg: fg_out vs fg_inter .*: supported at .*; claim finermoe-both-fg: fg_both vs fg_out .*: supported at 154k/,
  );
  assert.match(dims(10.5), /claim finermoe-both-fg: fg_both vs fg_out \+5\.\d+% .*: not supported at 154k/);
});

Deno.test("finermoe-routers and finermoe-granularity verdicts: words from the ledger, flip with the numbers", () => {
  const routers = (single: number) =>
    finermoeRoutersVerdict(
      [row("single", single), row("separate", 10)],
      "m",
      ledgerFor("finermoe-routers", { single, separate: 10 }),
    );
  assert.match(
    routers(9.5),
    /single router ppl 9\.500 vs separate routers 10\.000 \(-5\.00% for single, Welch t -6\.1\); claim finermoe-single-router: single vs separate -5\.\d+% \[.*\]: supported at 154k tokens, d=64$/,
  );
  assert.match(routers(10.5), /: not supported at 154k tokens, d=64$/);
  assert.match(finermoeRoutersVerdict([row("single", 9)], "m", []), /not enough completed runs/);
  // Finer G_O: ppl falls along G_O (supported at both G_I); finer G_I: ppl rises along G_I (not supported).
  const grid = (goStep: number) =>
    Object.fromEntries(
      [2, 8].flatMap((gi) =>
        [1, 4].map((go) => [`gi${gi}_go${go}`, 10 + 0.5 * Math.log2(gi) + goStep * Math.log2(go)])
      ),
    );
  const verdict = (goStep: number) =>
    finermoeGranularityVerdict(
      Object.entries(grid(goStep)).map(([k, p]) => row(k, p)),
      "m",
      ledgerFor("finermoe-granularity", grid(goStep)),
    ).split("\n");
  const down = verdict(-1);
  assert.match(
    down[0],
    /finer G_O: GI=2: gi2_go1 10\.500 → gi2_go4 8\.500 .*; claim finermoe-finer-go: gi2_go4 vs gi2_go1 .*: supported at .*; gi8_go4 vs gi8_go1 .*: supported at/,
  );
  assert.match(down[1], /finer G_I: .*; claim finermoe-finer-gi: gi8_go1 vs gi2_go1 \+9\.52% .*: not supported at/);
  assert.match(verdict(1)[0], /claim finermoe-finer-go: gi2_go4 vs gi2_go1 \+\d+\.\d+% .*: not supported at/);
});

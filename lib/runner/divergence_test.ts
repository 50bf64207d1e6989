import assert from "node:assert/strict";
import { detectDivergence } from "./divergence.ts";
import type { MetricRow } from "../core/records.ts";

const rows = (losses: number[]): MetricRow[] =>
  losses.map((value, i) => ({ step: i + 1, split: "train", name: "loss", value }));

Deno.test("detectDivergence: a sustained loss far above ln(vocab) at the end is diverged; spikes and learning are not", () => {
  const learning = rows(Array.from({ length: 50 }, (_, i) => 5.5 - i * 0.05));
  assert.equal(detectDivergence(learning, { vocab: 256 }), null);
  // a spike that recovers is not divergence
  const spike = rows([5.5, 5.4, 90, 120, 5.3, 5.2, 5.1, 5.0, 4.9, 4.8]);
  assert.equal(detectDivergence(spike, { vocab: 256 }), null);
  // lr = 10 without clipping: the loss explodes and stays there (the ppl 2e79 is loss ~183)
  const blown = rows([5.55, 5.6, 40, 120, 183, 183, 182, 183, 184, 183]);
  const d = detectDivergence(blown, { vocab: 256 })!;
  assert.equal(d.step, 3);
  assert.equal(d.last_good_loss, 5.6);
  assert.match(d.reason, /^diverged: training loss above 6\.55 .* from step 3 to the end \(peak 184\.0\)/);
  // too short a bad streak at the end (window = 10% of 50 = 5 steps) is not sustained
  assert.equal(
    detectDivergence(rows([...learning.map((m) => m.value).slice(0, 46), 50, 60, 70, 80]), {
      vocab: 256,
    }),
    null,
  );
  assert.ok(detectDivergence(rows([...learning.map((m) => m.value).slice(0, 45), 50, 60, 70, 80, Infinity]), {
    vocab: 256,
  }));
  // blown up for most of the run, then back by the end of the schedule (the toy model at lr = 10): diverged
  const back = rows([5.55, 194, 201, 360, 206, 158, 164, 186, 181, 141, 79, 102, 157, 92, 85, 52, 5.2, 4.9, 4.7, 4.6]);
  assert.match(detectDivergence(back, { vocab: 256 })!.reason, /from step 2 to step 16/);
  // no training rows (or fewer than the window): nothing to say
  assert.equal(detectDivergence([], { vocab: 256 }), null);
  assert.equal(detectDivergence(rows([100, 100]), { vocab: 256 }), null);
  // val rows do not count
  assert.equal(detectDivergence(blown.map((m) => ({ ...m, split: "val" as const })), { vocab: 256 }), null);
});

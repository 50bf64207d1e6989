import assert from "node:assert/strict";
import { compareRuns } from "./verify.ts";
import type { MetricRow, RunSummary } from "../core/records.ts";

function summary(over: Partial<RunSummary> = {}): RunSummary {
  return {
    status: "completed",
    steps_done: 4,
    tokens_seen: 64,
    final_train_loss: 2.5,
    val_loss: 2.75,
    val_ppl: Math.exp(2.75),
    params: 1000,
    flops_per_token: 6000,
    tokens_per_sec: 123,
    wall_s: 1.5,
    steps_this_attempt: 4,
    resumed_from_step: null,
    failure: null,
    extra: { nsar: 0.5 },
    ...over,
  };
}
const rows: MetricRow[] = [
  { step: 0, split: "train", name: "loss", value: 5.5 },
  { step: 4, split: "val", name: "loss", value: 2.75 },
];

Deno.test("compareRuns: identical runs; timings are not compared", () => {
  const r = compareRuns({ summary: summary(), metrics: rows }, {
    summary: summary({ tokens_per_sec: 999, wall_s: 9, steps_this_attempt: 2, resumed_from_step: 2 }),
    metrics: rows.map((x) => ({ ...x })),
  });
  assert.deepEqual(r.differences, []);
  assert.equal(r.compared, 8 + 1 + 2);
});

Deno.test("compareRuns: one ulp in one metric, an extra metric or a missing row is a difference", () => {
  const ulp = (x: number) => {
    const b = new Float64Array([x]);
    new BigInt64Array(b.buffer)[0] += 1n;
    return b[0];
  };
  const a = { summary: summary(), metrics: rows };
  const r1 = compareRuns(a, { summary: summary(), metrics: [rows[0], { ...rows[1], value: ulp(2.75) }] });
  assert.equal(r1.differences.length, 1);
  assert.match(r1.differences[0], /^val\/loss@4: 2\.75 vs 2\.75000000000000/);
  const r2 = compareRuns(a, { summary: summary({ extra: { nsar: 0.5, other: 1 } }), metrics: rows });
  assert.deepEqual(r2.differences, ["summary.extra.other: undefined vs 1"]);
  const r3 = compareRuns(a, { summary: summary(), metrics: rows.slice(0, 1) });
  assert.ok(r3.differences.some((d) => /metric rows: 2 vs 1/.test(d)));
  const r4 = compareRuns(a, { summary: summary({ val_loss: 2.7500001 }), metrics: rows });
  assert.deepEqual(r4.differences, ["summary.val_loss: 2.75 vs 2.7500001"]);
});

import assert from "node:assert/strict";
import {
  histogram,
  lineWithErrorBars,
  meanStd,
  metricByVariant,
  naturalCompare,
  summarizeByVariant,
} from "./charts.ts";
import { renderChart } from "./render.ts";

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

Deno.test("meanStd: mean and sample std (n-1); null std for one value; non-finite ignored", () => {
  const s = meanStd([2, 4, 4, 4, 5, 5, 7, 9]);
  close(s.mean, 5);
  close(s.std!, Math.sqrt(32 / 7));
  assert.deepEqual(meanStd([3, NaN]), { mean: 3, std: null, n: 1 });
});

Deno.test("summarizeByVariant: natural order, mean ± std bounds", () => {
  const stats = summarizeByVariant([
    { variant: "k10", value: 1 },
    { variant: "k2", value: 4 },
    { variant: "k2", value: 6 },
    { variant: "k10", value: 3 },
  ]);
  assert.deepEqual(stats.map((s) => s.variant), ["k2", "k10"]);
  close(stats[0].mean, 5);
  close(stats[0].std!, Math.SQRT2);
  close(stats[0].lo, 5 - Math.SQRT2);
  assert.ok(naturalCompare("k2", "k10") < 0);
});

Deno.test("metricByVariant renders the printed mean ± std and one error bar per multi-seed variant", () => {
  const { svg } = renderChart(metricByVariant([
    { variant: "dense", value: 1, seed: 0 },
    { variant: "dense", value: 2, seed: 1 },
    { variant: "dense", value: 3, seed: 2 },
    { variant: "finedeep", value: 2.5, seed: 0 },
  ], { title: "Final", label: "Validation perplexity →" }));
  assert.ok(svg.includes("2.000 ± 1.000  (n=3)"));
  assert.ok(svg.includes("2.500  (n=1)"));
  assert.ok(svg.includes(">Validation perplexity →<"));
  assert.ok(svg.includes(">finedeep<") && svg.includes(">dense<"));
  const rules = svg.match(/<g[^>]*aria-label="rule"[^>]*>(.*?)<\/g>/)![1];
  assert.equal(rules.match(/<line/g)!.length, 1); // only dense has a std
});

Deno.test("lineWithErrorBars: means per (series, x), bars only where there are 2+ samples", () => {
  const pts = [
    { series: "M*K=16", x: 1, y: 10 },
    { series: "M*K=16", x: 1, y: 12 },
    { series: "M*K=16", x: 4, y: 9 },
    { series: "M*K=64", x: 4, y: 8 },
    { series: "M*K=64", x: 4, y: 8.5 },
  ];
  const opts = lineWithErrorBars(pts, { xLabel: "M →", yLabel: "↑ val ppl", logX: true, title: "ppl vs M" });
  const { svg } = renderChart(opts);
  const rules = svg.match(/<g[^>]*aria-label="rule"[^>]*>(.*?)<\/g>/)![1];
  assert.equal(rules.match(/<line/g)!.length, 2);
  for (const t of [">M*K=16<", ">M*K=64<", "M →", "↑ val ppl", ">ppl vs M<"]) assert.ok(svg.includes(t), t);
});

Deno.test("histogram counts every finite value", () => {
  const values = [1, 1, 2, 3, 3, 3, NaN];
  const opts = histogram(values, { bins: 3, title: "H" });
  assert.equal(opts.subtitle, "6 values");
  const { svg } = renderChart(opts);
  const rects = svg.match(/<g[^>]*aria-label="rect"[^>]*>(.*?)<\/g>/)![1];
  assert.ok(rects.match(/<rect/g)!.length >= 2);
});

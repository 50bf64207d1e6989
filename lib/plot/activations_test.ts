import assert from "node:assert/strict";
import { histogramCurves, type HistPoint, withReferenceLines } from "./activations.ts";
import { lineWithErrorBars } from "./charts.ts";
import { renderChart } from "./render.ts";

Deno.test("histogramCurves: one panel per layer, points joined in x order, zero fractions dropped on a log axis", () => {
  const pts: HistPoint[] = [];
  for (const panel of ["layer 1", "layer 0"]) {
    for (const series of ["finedeep", "dense"]) {
      for (const x of [0.05, -0.05, 0, 0.1]) pts.push({ series, panel, x, y: x === 0.1 ? 0 : 0.3 });
    }
  }
  const chart = histogramCurves(pts, { title: "h" });
  const line = (chart.marks ?? []).find((m) => m && (m as { data?: unknown }).data) as unknown as { data: HistPoint[] };
  assert.deepEqual([...new Set(line.data.map((p) => p.x))], [-0.05, 0, 0.05], "sorted, y = 0 dropped");
  assert.deepEqual((chart.fy as { domain: string[] }).domain, ["layer 0", "layer 1"]);
  const { svg } = renderChart(chart);
  assert.match(svg, /layer 0/);
  assert.match(svg, /dense/);
  assert.equal(histogramCurves(pts, { logY: false }).marks!.length, 2);
});

Deno.test("withReferenceLines: adds a dashed line with its label and dotted ± std lines", () => {
  const base = lineWithErrorBars([{ series: "a", x: 1, y: 2 }, { series: "a", x: 2, y: 3 }]);
  const chart = withReferenceLines(base, [{ y: 2.5, std: 0.1, label: "dense" }, { y: 1, label: "floor" }]);
  assert.equal(chart.marks!.length, base.marks!.length + 1 + 2 + 1);
  const { svg } = renderChart(chart);
  assert.match(svg, />dense</);
  assert.match(svg, />floor</);
  assert.match(svg, /stroke-dasharray="6,4"/);
});

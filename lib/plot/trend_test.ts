import assert from "node:assert/strict";
import { effectVsTokens, fitLogTrend, zeroCrossing } from "./trend.ts";
import { renderChart } from "./render.ts";

Deno.test("fitLogTrend: exact line in log10 tokens; zeroCrossing within or beyond the range", () => {
  const fit = fitLogTrend([{ tokens: 1e4, effect: 10 }, { tokens: 1e5, effect: 6 }, { tokens: 1e6, effect: 2 }])!;
  assert.ok(Math.abs(fit.b + 4) < 1e-12 && Math.abs(fit.a - 26) < 1e-12, JSON.stringify(fit));
  const c = zeroCrossing(fit, { min: 1e4, max: 1e6 })!;
  assert.ok(Math.abs(Math.log10(c.tokens) - 6.5) < 1e-12);
  assert.equal(c.kind, "extrapolated");
  assert.equal(zeroCrossing(fit, { min: 1e4, max: 1e7 })!.kind, "within");
  assert.equal(fitLogTrend([{ tokens: 5, effect: 1 }, { tokens: 5, effect: 2 }]), null);
  assert.equal(zeroCrossing({ a: 1, b: 0, n: 2 }, { min: 1, max: 2 }), null);
});

Deno.test("effectVsTokens: log x, CI band, trend to the extrapolated crossing, labelled", () => {
  const pts = [1e4, 1e5, 1e6].flatMap((t, i) => [
    { series: "d=64", tokens: t, effect: 10 - 4 * i, low: 8 - 4 * i, high: 12 - 4 * i },
    { series: "d=32", tokens: t, effect: 5, low: null, high: null },
  ]);
  const chart = effectVsTokens(pts, { title: "t" });
  assert.equal((chart.x as { type: string }).type, "log");
  const svg = renderChart(chart).svg;
  assert.match(svg, /d=64: 0 at 3\.2M \(extrapolation\)/);
  assert.doesNotMatch(svg, /d=32: 0 at/); // a flat trend never crosses
});

Deno.test("effectVsTokens: yInclude keeps the given values on the y axis (an all-zero count still has a scale)", () => {
  const pts = [1e4, 1e5].map((tokens) => ({ series: "d=64", tokens, effect: 0, low: 0, high: 0 }));
  const y = (o: Parameters<typeof effectVsTokens>[1]) => effectVsTokens(pts, o).y as { domain?: number[] };
  assert.deepEqual(y({ yInclude: [0, 1] }).domain, [0, 1]);
  assert.equal(y({}).domain, undefined);
});

import assert from "node:assert/strict";
import { ema, integerTicks, lossCurves, type LossRow, thin } from "./curves.ts";
import { renderChart } from "./render.ts";

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

Deno.test("ema: debiased exponential average, first value unchanged, 0 = identity", () => {
  const out = ema([1, 2, 3], 0.5);
  close(out[0], 1);
  close(out[1], (0.25 + 1) / 0.75); // acc = 0.5*0.5 + 0.5*2 = 1.25, debias 1 - 0.25
  close(out[2], (1.25 * 0.5 + 1.5) / 0.875);
  assert.deepEqual(ema([4, 5, 6], 0), [4, 5, 6]);
  assert.ok(Number.isNaN(ema([1, NaN, 1], 0.9)[1]));
});

Deno.test("thin keeps first and last and at most max items", () => {
  const xs = Array.from({ length: 1001 }, (_, i) => i);
  const t = thin(xs, 11);
  assert.deepEqual(t, [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
  assert.equal(thin([1, 2], 5).length, 2);
});

Deno.test("lossCurves: smoothed train lines, val dots, failure marker", () => {
  const rows: LossRow[] = [];
  for (let step = 1; step <= 100; step++) {
    rows.push({ run: "a", group: "dense", split: "train", step, value: 5 - step / 50 });
    rows.push({ run: "b", group: "moe", split: "train", step: Math.min(step, 60), value: 5, failed: true });
  }
  rows.push({ run: "a", group: "dense", split: "val", step: 50, value: 4.2 });
  rows.push({ run: "a", group: "dense", split: "val", step: 100, value: 3.1 });
  const opts = lossCurves(rows, { title: "Loss", smoothing: 0.5 });
  assert.match(String(opts.subtitle), /EMA 0\.5, raw faint.*Red ×/);
  assert.deepEqual((opts.x as { ticks: number[] }).ticks, [20, 40, 60, 80, 100]);
  const { svg } = renderChart(opts);
  const dots = [...svg.matchAll(/<g[^>]*aria-label="dot"[^>]*>(.*?)<\/g>/g)].map((m) => m[1]);
  assert.equal(dots.length, 2);
  assert.equal(dots[0].match(/<path/g)!.length, 2); // two validation points (a marker shape per seed)
  assert.equal(dots[1].match(/<path/g)!.length, 1); // one failed run
  assert.throws(() => lossCurves(rows, { smoothing: 1 }), /smoothing must be in \[0, 1\)/);
});

Deno.test("lossCurves: seeds get distinct dash patterns and markers; many variants are faceted; integer ticks", () => {
  const rows: LossRow[] = [];
  const groups = ["dense", "1x4", "2x2", "4x1", "1x16", "2x8", "4x4", "8x2", "16x1"];
  for (const group of groups) {
    for (const seed of [0, 1, 2]) {
      for (let step = 1; step <= 8; step++) {
        rows.push({ run: `${group}/${seed}`, group, seed, split: "train", step, value: 5 - step / 10 - seed / 20 });
      }
      rows.push({ run: `${group}/${seed}`, group, seed, split: "val", step: 8, value: 4.5 });
    }
  }
  const two = lossCurves(rows.filter((r) => r.group === "dense" || r.group === "1x4"), { smoothing: 0 });
  assert.match(String(two.subtitle), /Seeds of a variant: solid, long dashes, dots lines/);
  const { svg } = renderChart(two);
  for (const dash of ["7,3", "2,2"]) assert.ok(svg.includes(`stroke-dasharray="${dash}"`), dash);
  assert.doesNotMatch(svg, /aria-label="fx-axis"|aria-label="fy-axis"/);
  // tiny scale (8 steps): integer ticks only
  const ticks = [...svg.matchAll(/aria-label="x-axis tick label"[^>]*>([\s\S]*?)<\/g>/g)][0][1];
  const labels = [...ticks.matchAll(/>([^<]+)<\/text>/g)].map((m) => m[1]);
  assert.ok(labels.length >= 4 && labels.every((l) => /^\d+$/.test(l)), labels.join(" "));
  // nine variants: one panel per variant, each named
  const nine = lossCurves(rows, { smoothing: 0 });
  assert.match(String(nine.subtitle), /One panel per variant/);
  const fsvg = renderChart(nine).svg;
  for (const g of groups) assert.ok(fsvg.includes(`>${g}</text>`), g);
  assert.equal((fsvg.match(/aria-label="frame"/g) ?? []).length, 1);
  assert.ok((fsvg.match(/<rect[^>]*stroke="#ddd"/g) ?? []).length >= 9, "a frame per panel");
  assert.deepEqual(integerTicks(0, 8), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(integerTicks(1, 3), [1, 2, 3]);
  assert.deepEqual(integerTicks(0, 150), [0, 20, 40, 60, 80, 100, 120, 140]);
});

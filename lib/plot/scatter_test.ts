import assert from "node:assert/strict";
import { labelledScatter, placeLabels } from "./scatter.ts";
import { renderChart, textWidth } from "./render.ts";

const FRAME = { width: 500, height: 300, fontSize: 10 };

Deno.test("placeLabels: points at the same place share one label (dsmoe-tau's t0.65 and t0.8 at tiny scale)", () => {
  const placed = placeLabels([
    { label: "a", x: 1, y: 5 },
    { label: "t0.65", x: 0, y: 9 },
    { label: "t0.8", x: 0, y: 9 },
  ], FRAME);
  assert.deepEqual(placed.map((p) => p.label).sort(), ["a", "t0.65, t0.8"]);
});

Deno.test("placeLabels: no two label boxes overlap, on random clusters of nearby points", () => {
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let trial = 0; trial < 20; trial++) {
    const pts = Array.from({ length: 10 }, (_, i) => ({ label: `variant_${i}`, x: rand() * 4, y: rand() * 2 }));
    pts.push({ label: "lo", x: 0, y: 0 }, { label: "hi", x: 100, y: 100 }); // the extent: the rest is one cluster
    const placed = placeLabels(pts, FRAME);
    const perX = FRAME.width / 100, perY = FRAME.height / 100;
    const boxes = placed.map((p) => {
      const w = textWidth(p.label, 10), u = p.x * perX, v = (100 - p.ly) * perY;
      const l = p.left ? u - 6 - w : u + 6;
      return { l, r: l + w, t: v - 6, b: v + 6 };
    });
    let clashes = 0;
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const [a, b] = [boxes[i], boxes[j]];
        if (a.l < b.r - 0.01 && b.l < a.r - 0.01 && a.t < b.b - 0.01 && b.t < a.b - 0.01) clashes++;
      }
    }
    assert.equal(clashes, 0, `trial ${trial}: ${JSON.stringify(placed)}`);
    assert.ok(placed.some((p) => p.shift !== 0), "a cluster moves some labels");
  }
});

Deno.test("placeLabels: a label that would run past the right margin is written left of its dot", () => {
  const placed = placeLabels([
    { label: "left_end", x: 0, y: 0 },
    { label: "a_long_label_at_the_right_edge", x: 10, y: 1 },
  ], { ...FRAME, right: 20 });
  assert.deepEqual(placed.map((p) => [p.label, p.left]), [
    ["left_end", false],
    ["a_long_label_at_the_right_edge", true],
  ]);
});

Deno.test("labelledScatter renders one text per distinct place, coincident variants joined", () => {
  const { svg } = renderChart(labelledScatter([
    { series: "s", label: "t0.2", x: 6800, y: 238.85 },
    { series: "s", label: "t0.35", x: 6800, y: 238.85 },
    { series: "s", label: "t0.5", x: 5900, y: 238.68 },
  ]));
  assert.match(svg, />t0\.2, t0\.35</);
  assert.match(svg, />t0\.5</);
});

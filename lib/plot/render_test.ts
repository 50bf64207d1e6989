import assert from "node:assert/strict";
import * as Plot from "@observablehq/plot";
import {
  defaultFontFiles,
  escapeXml,
  extraFontDirs,
  renderChart,
  renderPng,
  requireFonts,
  savePlot,
  textWidth,
} from "./render.ts";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Pixels in the rectangle [x0, x1) × [y0, y1) darker than mid-grey (RGBA rows of `width` pixels). */
function darkPixels(img: { pixels: Uint8Array; width: number }, x0: number, y0: number, x1: number, y1: number) {
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = (y * img.width + x) * 4;
      if (img.pixels[i] + img.pixels[i + 1] + img.pixels[i + 2] < 3 * 128) n++;
    }
  }
  return n;
}

function sampleOptions(extra: Partial<Plot.PlotOptions> = {}): Plot.PlotOptions {
  const rows = [0, 1, 2, 3].flatMap((step) => [
    { step, loss: 3 - step * 0.5, run: "dense" },
    { step, loss: 3 - step * 0.4, run: "finedeep" },
  ]);
  return {
    width: 400,
    height: 240,
    x: { label: "Training step →" },
    y: { label: "↑ Loss", grid: true },
    color: { legend: true },
    marks: [Plot.lineY(rows, { x: "step", y: "loss", stroke: "run" })],
    ...extra,
  };
}

Deno.test("renderChart: standalone SVG with xmlns, SVG title and legend, no HTML", () => {
  const chart = renderChart(sampleOptions({ title: "Loss <by> run & seed", subtitle: "two runs", caption: "note" }));
  assert.match(chart.svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="400" height="\d+"/);
  assert.equal(chart.width, 400);
  assert.ok(chart.height > 240 + 40, `height ${chart.height} should include title, legend and caption`);
  for (
    const text of [
      "Loss &lt;by&gt; run &amp; seed",
      "two runs",
      "note",
      ">dense<",
      ">finedeep<",
      "Training step →",
      "↑ Loss",
    ]
  ) {
    assert.ok(chart.svg.includes(text), `missing ${text}`);
  }
  assert.doesNotMatch(chart.svg, /<figure|<div|<h2|<span/);
  // the legend swatch colors are the plot's line colors
  const lines = chart.svg.match(/<g[^>]*aria-label="line"[^>]*>(.*?)<\/g>/)![1];
  const lineColors = [...lines.matchAll(/stroke="(#[0-9a-f]{6})"/g)].map((m) => m[1]);
  const swatches = [
    ...chart.svg.matchAll(/<rect x="[\d.]+" y="1" width="14" height="12" rx="2" fill="(#[0-9a-f]{6})"/g),
  ]
    .map((m) => m[1]);
  assert.equal(swatches.length, 2);
  assert.deepEqual(new Set(lineColors), new Set(swatches));
});

Deno.test("renderChart: a Plot legend that would be HTML is rejected clearly", () => {
  const opts = sampleOptions({
    symbol: { legend: true },
    marks: [Plot.dot([{ a: 1, s: "x" }], { x: "a", symbol: "s" })],
  });
  assert.throws(() => renderChart(opts), /Plot returned HTML/);
});

Deno.test("renderPng: PNG signature, size = SVG size × scale", () => {
  const chart = renderChart(sampleOptions({ title: "T" }));
  const img = renderPng(chart.svg, { scale: 2 });
  assert.deepEqual([...img.png.subarray(0, 8)], PNG_SIGNATURE);
  assert.equal(img.width, 800);
  assert.equal(img.height, chart.height * 2);
  // IHDR holds the same size
  const view = new DataView(img.png.buffer, img.png.byteOffset);
  assert.equal(view.getUint32(16), 800);
  assert.equal(view.getUint32(20), chart.height * 2);
});

Deno.test("renderPng: text is actually drawn (fonts loaded), in the title band", () => {
  const withTitle = renderChart(sampleOptions({ title: "A readable title", color: {} }));
  const without = renderChart(sampleOptions({ color: {} }));
  const a = renderPng(withTitle.svg, { scale: 1 });
  const b = renderPng(without.svg, { scale: 1 });
  // title band: x 16..200, y 12..32 (baseline 28, 16 px bold)
  const inTitle = darkPixels(a, 16, 12, 200, 32);
  assert.ok(inTitle > 150, `expected dark title pixels, got ${inTitle}`);
  assert.equal(darkPixels(b, 16, 12, 200, 32) < inTitle / 4, true);
  // a bare text element: with fonts it leaves dark pixels; resvg without fonts would leave none
  const text = (s: string) =>
    `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><text x="10" y="28" font-size="20">${s}</text></svg>`;
  const t = renderPng(text("Hello"), { scale: 1 });
  const e = renderPng(text(""), { scale: 1 });
  assert.ok(darkPixels(t, 0, 0, 200, 40) > 100);
  assert.equal(darkPixels(e, 0, 0, 200, 40), 0);
});

Deno.test("the plot font comes from the npm dependency dejavu-fonts-ttf, not from the system", () => {
  const files = defaultFontFiles();
  assert.equal(files.length, 2);
  for (const f of files) {
    assert.match(f, /\/node_modules\/.*dejavu-fonts-ttf\/ttf\/DejaVuSans(-Bold)?\.ttf$/);
    assert.ok(Deno.statSync(f).size > 300_000, `${f} is a real font file`);
  }
  requireFonts(files); // present after `deno install`
  assert.deepEqual(extraFontDirs(), (Deno.env.get("FINELAB_FONT_DIRS") ?? "").split(",").filter(Boolean));
  // Only these files and no folder: text is drawn (system fonts are not loaded; resvg drops text without a font).
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><text x="10" y="28" font-size="20">` +
    `Hello</text></svg>`;
  assert.ok(darkPixels(renderPng(svg, { scale: 1, fontFiles: files, fontDirs: [] }), 0, 0, 200, 40) > 100);
});

Deno.test("missing font files: a clear error naming the package", () => {
  assert.throws(
    () => requireFonts(["/nonexistent/DejaVuSans.ttf"]),
    /font file \/nonexistent\/DejaVuSans\.ttf not found: .*dejavu-fonts-ttf: run `deno install`/,
  );
  assert.throws(
    () => renderPng("<svg xmlns='http://www.w3.org/2000/svg'/>", { fontFiles: ["/nope.ttf"] }),
    /not found/,
  );
});

Deno.test("savePlot writes <base>.svg and <base>.png atomically, nothing else", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finelab_plot_" });
  try {
    const chart = renderChart(sampleOptions({ title: "Saved" }));
    const paths = await savePlot(chart.svg, `${dir}/sub/chart`);
    assert.deepEqual(paths, { svg: `${dir}/sub/chart.svg`, png: `${dir}/sub/chart.png` });
    assert.equal(await Deno.readTextFile(paths.svg), chart.svg);
    const png = await Deno.readFile(paths.png);
    assert.deepEqual([...png.subarray(0, 8)], PNG_SIGNATURE);
    assert.deepEqual([...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name).sort(), ["chart.png", "chart.svg"]);
    // a render error leaves no files
    await assert.rejects(savePlot(chart.svg, `${dir}/bad`, { fontFiles: ["/nope.ttf"] }), /not found/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["sub"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("textWidth matches resvg's DejaVu Sans rendering within 5%", () => {
  for (const s of ["finedeep_k16_softmax_router", "Validation perplexity (lower is better) →", "MWm ijl 0123"]) {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="40"><text x="0" y="28" font-size="20">${
      escapeXml(s)
    }</text></svg>`;
    const img = renderPng(svg, { scale: 1 });
    let right = 0;
    for (let x = 0; x < img.width; x++) if (darkPixels(img, x, 0, x + 1, 40) > 0) right = x;
    const est = textWidth(s, 20);
    // the ink ends a little before the advance width of the last glyph
    assert.ok(Math.abs(est - right) / est < 0.05, `${s}: estimated ${est}, rendered ink to ${right}`);
  }
});

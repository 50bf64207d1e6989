/**
 * Server-side chart rendering: Observable Plot options -> standalone SVG (with linkedom as the DOM)
 * -> PNG (with resvg). Handles what Plot leaves to a browser:
 * - Plot's `title`, `subtitle`, `caption` and color legends would become HTML (`<figure>`, swatch `<div>`s),
 *   which no SVG file or rasterizer shows; {@link renderChart} draws them as SVG text and swatches instead.
 * - Plot's `<svg>` has no `xmlns`; the wrapper adds it (without it resvg cannot parse the file).
 * - resvg silently drops all text when it finds no font; {@link renderPng} loads DejaVu Sans from the npm
 *   package `dejavu-fonts-ttf` (a project dependency, so no system font is needed) and throws when the files
 *   are missing. System fonts are never read unless `FINELAB_FONT_DIRS` names font folders.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { Resvg } from "@resvg/resvg-js";
import { parseHTML } from "linkedom";
import { createRequire } from "node:module";
import { atomicWrite } from "../util/fs.ts";

/** Font family used for every text of a chart. */
export const FONT_FAMILY = "DejaVu Sans";

/** The font files of npm `dejavu-fonts-ttf` that resvg loads (regular and bold). */
const BUNDLED_FONTS = ["dejavu-fonts-ttf/ttf/DejaVuSans.ttf", "dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf"] as const;

/**
 * The font files resvg loads by default: DejaVu Sans from the npm package `dejavu-fonts-ttf`, resolved in
 * node_modules like any import (installed by `deno install` with the other dependencies; no apt step).
 */
export function defaultFontFiles(): string[] {
  const require = createRequire(import.meta.url);
  return BUNDLED_FONTS.map((f) => {
    try {
      return require.resolve(f);
    } catch {
      // Not installed (node_modules missing or incomplete): requireFonts names the path and the fix.
      return new URL(`../../node_modules/${f}`, import.meta.url).pathname;
    }
  });
}

/**
 * Extra font folders from `FINELAB_FONT_DIRS` (comma-separated; empty by default): system fonts are optional,
 * only loaded when asked for (e.g. for scripts DejaVu Sans lacks).
 */
export function extraFontDirs(): string[] {
  let v: string | undefined;
  try {
    v = Deno.env.get("FINELAB_FONT_DIRS");
  } catch {
    v = undefined; // no env permission: no extra folders
  }
  return (v ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

/** Options of {@link renderChart}. */
export interface RenderOptions {
  /** Draw a legend for the color scale (also enabled by Plot's own `color: { legend: true }`). */
  legend?: boolean;
  /** Font size of axes and legend, px. Default 12. */
  fontSize?: number;
}

/** A rendered chart: a standalone SVG document and its size in px. */
export interface RenderedChart {
  svg: string;
  width: number;
  height: number;
}

/** Escapes text for SVG content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** Advance widths of DejaVu Sans in em (measured with resvg), grouped by width; other characters count 0.84. */
const ADVANCE: ReadonlyMap<string, number> = new Map(
  ([
    ["ijl'", 0.28],
    ["IJ", 0.3],
    [" .,", 0.32],
    [":;/|", 0.34],
    ["f", 0.35],
    ["-", 0.36],
    ["t()[]", 0.39],
    ["!", 0.4],
    ["r", 0.41],
    ['"', 0.46],
    ["_*", 0.5],
    ["s", 0.52],
    ["z?", 0.53],
    ["c", 0.55],
    ["L", 0.56],
    ["kF", 0.58],
    ["vxy", 0.59],
    ["P", 0.6],
    ["aoTY", 0.61],
    ["e", 0.62],
    ["E", 0.63],
    ["0123456789bdghnpquS", 0.64],
    ["K", 0.66],
    ["ABVXZ", 0.69],
    ["CR", 0.7],
    ["U", 0.73],
    ["HN", 0.75],
    ["D", 0.77],
    ["G&", 0.78],
    ["OQ", 0.79],
    ["w", 0.82],
    ["M", 0.86],
    ["%", 0.95],
    ["m", 0.98],
    ["W", 0.99],
    ["@", 1],
  ] as [string, number][]).flatMap(([chars, w]) => [...chars].map((c) => [c, w] as [string, number])),
);

/** Width of `text` in DejaVu Sans at `size` px (bold: about 10% wider). For wrapping titles and legends. */
export function textWidth(text: string, size: number, opts: { bold?: boolean } = {}): number {
  let em = 0;
  for (const ch of text) em += ADVANCE.get(ch) ?? 0.84;
  return em * size * (opts.bold ? 1.1 : 1);
}

/** Splits `text` into lines of at most `maxWidth` px (at `size` px), at spaces. */
function wrap(text: string, size: number, maxWidth: number, bold = false): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const next = line ? `${line} ${word}` : word;
    if (line && textWidth(next, size, { bold }) > maxWidth) {
      lines.push(line);
      line = word;
    } else {
      line = next;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** SVG legend rows for a color scale: one swatch + label per domain value, wrapped to the chart width. */
function colorLegend(scale: Plot.Scale, width: number, fontSize: number): { svg: string; height: number } {
  const domain = (scale.domain ?? []) as unknown[];
  if (domain.length === 0) return { svg: "", height: 0 };
  const rowH = fontSize + 8;
  const pad = 16;
  if (scale.type !== "ordinal" && scale.type !== "categorical") {
    // Continuous scale: a 200 px gradient bar with its end values.
    const [lo, hi] = [domain[0], domain[domain.length - 1]] as number[];
    const stops = Array.from({ length: 11 }, (_, i) => {
      const t = i / 10;
      return `<stop offset="${t}" stop-color="${escapeXml(String(scale.apply(lo + (hi - lo) * t)))}"/>`;
    }).join("");
    const svg = `<defs><linearGradient id="legend-ramp">${stops}</linearGradient></defs>` +
      `<rect x="${pad}" y="0" width="200" height="10" fill="url(#legend-ramp)"/>` +
      `<text x="${pad}" y="${10 + fontSize + 2}" font-size="${fontSize}">${escapeXml(String(lo))}</text>` +
      `<text x="${pad + 200}" y="${10 + fontSize + 2}" font-size="${fontSize}" text-anchor="end">${
        escapeXml(String(hi))
      }</text>`;
    return { svg, height: 10 + fontSize + 8 };
  }
  const range = (scale.range ?? []) as string[];
  const items: string[] = [];
  let x = pad, row = 0;
  domain.forEach((value, i) => {
    const label = String(value);
    const w = 14 + 6 + textWidth(label, fontSize) + 18;
    if (x > pad && x + w > width - pad) {
      x = pad;
      row++;
    }
    const y = row * rowH;
    const color = range.length ? range[i % range.length] : String(scale.apply(value));
    items.push(
      `<rect x="${x}" y="${y + 1}" width="14" height="${fontSize}" rx="2" fill="${escapeXml(color)}"/>` +
        `<text x="${x + 20}" y="${y + fontSize}" font-size="${fontSize}">${escapeXml(label)}</text>`,
    );
    x += w;
  });
  return { svg: items.join(""), height: (row + 1) * rowH };
}

let cachedDocument: Document | null = null;

/** A linkedom document for Plot (created once; Plot only creates detached elements in it). */
function plotDocument(): Document {
  cachedDocument ??= parseHTML("<html><body></body></html>").document as unknown as Document;
  return cachedDocument;
}

/**
 * Renders Plot options to a standalone SVG: white background, Plot's title/subtitle/caption as SVG text,
 * a color legend (when `color.legend` or `opts.legend`) drawn as SVG swatches, and `xmlns` set.
 * Throws when Plot would need HTML (other legends) or a canvas (raster marks).
 */
export function renderChart(plotOptions: Plot.PlotOptions, opts: RenderOptions = {}): RenderedChart {
  const fontSize = opts.fontSize ?? 12;
  const { title, subtitle, caption, color, style, ...rest } = plotOptions;
  const { legend: colorLegendWanted, ...colorRest } = color ?? {};
  const wantLegend = opts.legend ?? colorLegendWanted === true;
  for (const [name, v] of [["title", title], ["subtitle", subtitle], ["caption", caption]] as const) {
    if (v != null && typeof v !== "string") throw new Error(`renderChart: ${name} must be a string (SVG output)`);
  }
  const plot = Plot.plot({
    ...rest,
    ...(color ? { color: colorRest } : {}),
    document: plotDocument(),
    style: {
      fontFamily: FONT_FAMILY,
      fontSize: `${fontSize}px`,
      background: "white",
      color: "black",
      overflow: "visible",
      ...(typeof style === "object" && style ? style : {}),
    },
  });
  if (plot.tagName.toLowerCase() !== "svg") {
    throw new Error(
      "renderChart: Plot returned HTML (a <figure>), probably from a symbol/opacity legend; " +
        "use the color legend of renderChart or label marks directly",
    );
  }
  const width = Number(plot.getAttribute("width"));
  const plotHeight = Number(plot.getAttribute("height"));
  plot.setAttribute("font-family", FONT_FAMILY);
  plot.setAttribute("font-size", String(fontSize));

  const pad = 16;
  const parts: string[] = [];
  let y = 8;
  for (const line of title ? wrap(title as string, 16, width - 2 * pad, true) : []) {
    y += 20;
    parts.push(`<text x="${pad}" y="${y}" font-size="16" font-weight="bold">${escapeXml(line)}</text>`);
  }
  for (const line of subtitle ? wrap(subtitle as string, fontSize, width - 2 * pad) : []) {
    y += fontSize + 5;
    parts.push(`<text x="${pad}" y="${y}" font-size="${fontSize}" fill="#444">${escapeXml(line)}</text>`);
  }
  if (title || subtitle) y += 8;
  const scale = wantLegend ? plot.scale("color") : undefined;
  if (scale) {
    const lg = colorLegend(scale, width, fontSize);
    parts.push(`<g transform="translate(0,${y})">${lg.svg}</g>`);
    y += lg.height + 4;
  }
  plot.setAttribute("x", "0");
  plot.setAttribute("y", String(y));
  parts.push(plot.outerHTML);
  y += plotHeight;
  for (const line of caption ? wrap(caption as string, fontSize - 1, width - 2 * pad) : []) {
    y += fontSize + 4;
    parts.push(`<text x="${pad}" y="${y}" font-size="${fontSize - 1}" fill="#444">${escapeXml(line)}</text>`);
  }
  const height = Math.ceil(y + 8);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="${FONT_FAMILY}" font-size="${fontSize}">` +
    `<rect width="100%" height="100%" fill="white"/>${parts.join("")}</svg>\n`;
  return { svg, width, height };
}

/** Options of {@link renderPng} and {@link savePlot}. */
export interface PngOptions {
  /** Pixel density: PNG size = SVG size × scale. Default 1.5. */
  scale?: number;
  /** Font files to load (default {@link defaultFontFiles}: the npm package's DejaVu Sans). */
  fontFiles?: readonly string[];
  /** Font folders to load as well (default {@link extraFontDirs}, i.e. `FINELAB_FONT_DIRS`). */
  fontDirs?: readonly string[];
}

/** A rasterized chart: PNG bytes, its size and the raw RGBA pixels (row-major, 4 bytes per pixel). */
export interface PngImage {
  png: Uint8Array;
  width: number;
  height: number;
  pixels: Uint8Array;
}

/** Throws a clear error when a font file is missing: resvg would otherwise drop every text without a word. */
export function requireFonts(files: readonly string[] = defaultFontFiles()): void {
  for (const f of files) {
    try {
      Deno.statSync(f);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new Error(
          `font file ${f} not found: PNG charts would render without any text. ` +
            "The font comes with the npm package dejavu-fonts-ttf: run `deno install` in the project folder " +
            "(or pass other fontFiles).",
        );
      }
      throw e;
    }
  }
}

/** Rasterizes an SVG document to PNG with resvg, using only the given font files (deterministic output). */
export function renderPng(svg: string, opts: PngOptions = {}): PngImage {
  const fontFiles = opts.fontFiles ?? defaultFontFiles();
  requireFonts(fontFiles);
  const fontDirs = opts.fontDirs ?? extraFontDirs();
  const img = new Resvg(svg, {
    fitTo: { mode: "zoom", value: opts.scale ?? 1.5 },
    background: "white",
    font: {
      loadSystemFonts: false,
      fontFiles: [...fontFiles],
      fontDirs: [...fontDirs],
      defaultFontFamily: FONT_FAMILY,
      sansSerifFamily: FONT_FAMILY,
    },
  }).render();
  return { png: new Uint8Array(img.asPng()), width: img.width, height: img.height, pixels: new Uint8Array(img.pixels) };
}

/**
 * Writes `<basePath>.svg` and `<basePath>.png`, each atomically (temp file + rename).
 * The PNG is rendered first, so a rendering error leaves neither file behind.
 */
export async function savePlot(
  svg: string,
  basePath: string,
  opts: PngOptions = {},
): Promise<{ svg: string; png: string }> {
  const { png } = renderPng(svg, opts);
  const paths = { svg: `${basePath}.svg`, png: `${basePath}.png` };
  await atomicWrite(paths.svg, svg);
  await atomicWrite(paths.png, png);
  return paths;
}

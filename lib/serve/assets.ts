/**
 * The dashboard's static assets: its own client script and style sheet (beside this file) and the
 * Observable Plot and d3 bundles from node_modules (no CDN: pages work offline and from disk).
 *
 * @module
 */
import { fromFileUrl } from "../util/paths.ts";

const here = (name: string) => new URL(`./assets/${name}`, import.meta.url);
const nodeModule = (path: string) => new URL(`../../node_modules/${path}`, import.meta.url);

/** Asset name -> where it is read from and its content type. Nothing else is served. */
export const ASSETS: Record<string, { url: URL; type: string }> = {
  "app.js": { url: here("app.js"), type: "text/javascript; charset=utf-8" },
  "style.css": { url: here("style.css"), type: "text/css; charset=utf-8" },
  "plot.umd.min.js": {
    url: nodeModule("@observablehq/plot/dist/plot.umd.min.js"),
    type: "text/javascript; charset=utf-8",
  },
  "d3.min.js": { url: nodeModule("d3/dist/d3.min.js"), type: "text/javascript; charset=utf-8" },
};

/** An asset's bytes and content type. */
export async function asset(name: string): Promise<{ body: Uint8Array<ArrayBuffer>; type: string }> {
  const a = ASSETS[name];
  if (!a) throw new Error(`no asset ${name}`);
  return { body: await Deno.readFile(fromFileUrl(a.url)), type: a.type };
}

/**
 * `deno task report`: the dashboard's pages written as a static folder (relative links, the Plot and
 * d3 bundles copied beside them), to open from disk or put on any static host. No live updates or SQL
 * box there; everything else is the same HTML as served.
 *
 * @module
 */
import { join } from "node:path";
import { atomicWrite } from "../util/fs.ts";
import { experimentList, experimentPage, liveRuns, type Source, withDb } from "./data.ts";
import { runPage } from "./run_data.ts";
import { compare, CompareError } from "./compare.ts";
import { comparePageHtml, experimentPageHtml, indexPage, runPageHtml } from "./pages.ts";
import { asset, ASSETS } from "./assets.ts";

/** What {@link exportReport} wrote. */
export interface ExportSummary {
  dir: string;
  pages: number;
  experiments: number;
  runs: number;
}

/** Writes the static dashboard into `dir` (created; existing pages are overwritten). */
export async function exportReport(
  src: Source,
  dir: string,
  o: { progress?: (msg: string) => void } = {},
): Promise<ExportSummary> {
  let pages = 0;
  const write = async (rel: string, text: string) => {
    await atomicWrite(join(dir, rel), text);
    pages++;
  };
  for (const name of Object.keys(ASSETS)) await atomicWrite(join(dir, "assets", name), (await asset(name)).body);
  const live = await liveRuns(src);
  const experiments = await experimentList(src, { live });
  await write("index.html", indexPage({ experiments, live, mode: "static" }));
  for (const e of experiments) {
    const page = await experimentPage(src, e.id, { live });
    if (!page) continue;
    await write(`exp/${e.id}.html`, experimentPageHtml(page, "static"));
    if (page.variants.length >= 2) {
      await write(
        `compare/${e.id}.html`,
        comparePageHtml(await compare(src, page.variants.map((v) => `${e.id}/${v.variant}`)), {
          mode: "static",
          root: "../",
        }),
      );
    }
    o.progress?.(`exp/${e.id}.html`);
  }
  const hashes =
    await withDb(src, async (q) => (await q("SELECT hash FROM runs ORDER BY hash")).rows.map((r) => String(r.hash))) ??
      [];
  for (const l of live) if (!hashes.includes(l.hash)) hashes.push(l.hash);
  let runs = 0;
  for (const h of hashes) {
    const r = await runPage(src, h);
    if (!r) continue;
    await write(`run/${h}.html`, runPageHtml(r, "static"));
    runs++;
    if (r.parent) {
      try {
        await write(
          `compare/${h}.html`,
          comparePageHtml(await compare(src, [r.parent.hash, h]), { mode: "static", root: "../" }),
        );
      } catch (e) {
        if (!(e instanceof CompareError)) throw e; // the parent is not in the database: no page
      }
    }
  }
  return { dir, pages, experiments: experiments.length, runs };
}

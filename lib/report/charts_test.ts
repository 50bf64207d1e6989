import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { ReportContext } from "../experiment/define.ts";
import { lineWithErrorBars } from "../plot/charts.ts";
import { withTempDir } from "../util/testing.ts";
import { saveChartOf } from "./charts.ts";

const ctx = (plotDir: string | null): ReportContext => ({
  experiment: "e",
  variants: {},
  query: () => Promise.reject(new Error("no database here")),
  plotDir,
  print: () => {},
});

Deno.test("saveChartOf: draws from the rows and saves svg + png; no rows: nothing drawn, no files", async () => {
  await withTempDir("charts", async (dir) => {
    const drawn: number[][] = [];
    const chart = {
      name: "line",
      draw: (rows: number[]) => {
        drawn.push(rows);
        return lineWithErrorBars(rows.map((y, x) => ({ series: "s", x, y })), { title: "t" });
      },
    };
    assert.deepEqual(await saveChartOf(ctx(dir), [], chart), []);
    assert.deepEqual(drawn, [], "an empty chart is not drawn");
    const files = await saveChartOf(ctx(dir), [1, 2, 3], chart);
    assert.deepEqual(files, [`${dir}/line.svg`, `${dir}/line.png`]);
    assert.ok(files.every((f) => existsSync(f)));
    assert.deepEqual(drawn, [[1, 2, 3]]);
    assert.deepEqual(await saveChartOf(ctx(null), [1], chart), [], "plots off: no files");
  });
});

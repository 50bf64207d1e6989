import assert from "node:assert/strict";
import { generateCache } from "../../bench/store_synth.ts";
import { projectPaths } from "../util/paths.ts";
import { rebuildFromCache } from "../runner/results.ts";
import { runsRows } from "../runner/runs.ts";
import { formatResult } from "../store/format.ts";
import type { QueryResult } from "../store/result.ts";
import { cli, ok } from "./faults/helpers.ts";
import { cmdRuns, runsFooter } from "./store_cmds.ts";

/** What `fn` prints with `print` (given to it) and console.error. */
async function captured(fn: (print: (s: string) => void) => Promise<void>): Promise<{ out: string; err: string }> {
  const error = console.error;
  let out = "", err = "";
  console.error = (s: string) => err += `${s}\n`;
  try {
    await fn((s: string) => out += `${s}\n`);
  } finally {
    console.error = error;
  }
  return { out, err };
}

const COLUMNS = ["experiment", "run_id", "hash", "status", "step", "steps", "val_ppl", "heartbeat", "attempts", "tags"];

Deno.test("runs: table and md show the newest 50 with a footer; --limit, --all; csv and json show all", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finelab-runs-cmd-" });
  try {
    const rep = await generateCache(dir, 60, { experiments: 3, steps: 40 });
    const paths = projectPaths(undefined, dir);
    await rebuildFromCache(paths);
    // Synthetic runs finish a minute apart in generation order: newest first is the reverse order.
    const byHash = new Map((await runsRows(paths)).map((r) => [r.hash, r]));
    const newest = rep.hashes.toReversed().map((h) => byHash.get(h.slice(0, 12))!);
    const table = (rows: typeof newest) =>
      formatResult(
        {
          columns: [...COLUMNS, "note"].map((name) => ({
            name,
            type: ["step", "steps", "attempts"].includes(name) ? "INTEGER" : name === "val_ppl" ? "DOUBLE" : "VARCHAR",
          })),
          rows,
        } as unknown as QueryResult,
        "table",
      );
    const counts = { completed: 0, failed: 0, interrupted: 0, running: 0 } as Record<string, number>;
    for (const r of newest) counts[r.status]++;
    const footer = runsFooter(50, 60, counts);
    assert.match(
      footer,
      /^\(50 of 60 runs, newest first; (\d+ [a-z]+, )+\d+ completed; --limit <n> or --all for more\)$/,
    );
    const cut = await captured((print) => cmdRuns({ paths, print }));
    assert.equal(cut.out, table(newest.slice(0, 50)).replace("(50 rows)\n", `${footer}\n`) + "\n");
    assert.equal(cut.err, "");
    const three = await captured((print) => cmdRuns({ paths, print, limit: 3 }));
    assert.equal(three.out, table(newest.slice(0, 3)).replace("(3 rows)\n", `${runsFooter(3, 60, counts)}\n`) + "\n");
    const all = await captured((print) => cmdRuns({ paths, print, all: true }));
    assert.equal(all.out, table(newest) + "\n");
    assert.match(all.out, /\(60 rows\)\n\n$/);
    assert.equal(ok(await cli(dir, ["runs", "--all"])).stdout, all.out, "the CLI prints the same");
    const md = await captured((print) => cmdRuns({ paths, print, format: "md", limit: 2 }));
    assert.equal(md.out.trim().split("\n").length, 4);
    assert.equal(md.err, `${runsFooter(2, 60, counts)}\n`);
    const json = await captured((print) => cmdRuns({ paths, print, format: "json" }));
    assert.deepEqual(JSON.parse(json.out), newest);
    assert.equal(json.err, "");
    const csv = await captured((print) => cmdRuns({ paths, print, format: "csv", limit: 4 }));
    assert.equal(csv.out.trim().split("\r\n").length, 5);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runs: a footer counts statuses running first, completed last", () => {
  assert.equal(
    runsFooter(2, 9, { completed: 5, failed: 1, running: 1, interrupted: 1, corrupt: 1, zero: 0 }),
    "(2 of 9 runs, newest first; 1 running, 1 interrupted, 1 corrupt, 1 failed, 5 completed; " +
      "--limit <n> or --all for more)",
  );
});

Deno.test("runs: --limit must be an integer >= 1 and excludes --all", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finelab-runs-cmd-" });
  try {
    for (const bad of ["0", "-3", "2.5", "ten"]) {
      const o = await cli(dir, ["runs", "--limit", bad]);
      assert.equal(o.code, 2, bad);
      assert.match(o.stderr, /option '--limit <n>' argument '.*' is invalid\. expected an integer >= 1/, bad);
    }
    const both = await cli(dir, ["runs", "--limit", "3", "--all"]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /error: runs: pass --limit <n> or --all, not both/);
    await assert.rejects(() => cmdRuns({ paths: projectPaths(undefined, dir), limit: 0 }), /expected an integer >= 1/);
    assert.match(ok(await cli(dir, ["runs", "--limit", "7"])).stdout, /\(0 rows\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

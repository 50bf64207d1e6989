import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { cli, FIXTURES, ok, SUITE } from "../cli/faults/helpers.ts";
import { withTempDir } from "../util/testing.ts";
import { loadExperiment, makePlan } from "./plan.ts";
import { planRuns, writeRunRequests } from "./run_one.ts";
import { readAttempts } from "./cache.ts";
import { projectPaths, REPO_ROOT } from "../util/paths.ts";

Deno.test(
  "exp --run <hash>: trains exactly that planned run, never writes the database; the plan then shows it cached",
  SUITE,
  async () => {
    await withTempDir("run-one", async (dir) => {
      const paths = { ...projectPaths(REPO_ROOT, dir), experiments: FIXTURES };
      const plan = await makePlan(await loadExperiment("faults-sweep", paths), { paths });
      await writeRunRequests(plan, {}, paths);
      assert.equal(planRuns(plan).length, 4);
      const run = plan.runs[1];
      const o = ok(await cli(dir, ["exp", "--run", run.hash, "--plain"]), "exp --run");
      assert.match(o.stdout, new RegExp(`faults-sweep/${run.run_id} ${run.hash.slice(0, 12)}: trained \\(completed`));
      assert.equal(existsSync(`${dir}/results.duckdb`), false, "the database is not written");
      assert.deepEqual((await readAttempts(run.paths)).map((a) => a.event), ["start", "end"]);
      for (const other of plan.runs.filter((r) => r !== run)) assert.equal(existsSync(other.paths.dir), false);
      const again = ok(await cli(dir, ["exp", "--run", run.hash]), "exp --run again");
      assert.match(again.stdout, /: cached \(completed/);
      const dry = ok(await cli(dir, ["exp", "faults-sweep", "--dry-run"]), "exp --dry-run").stdout;
      assert.equal(dry.match(/ cached$/gm)?.length, 1, dry);
      assert.equal(dry.match(/ to train$/gm)?.length, 3, dry);
    });
  },
);

Deno.test(
  "exp --run: a malformed or unplanned hash, or an id beside it, is one clear error (exit 2)",
  SUITE,
  async () => {
    await withTempDir("run-one-bad", async (dir) => {
      const bad = await cli(dir, ["exp", "--run", "abc"]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--run "abc" is not a run hash \(64 lowercase hex digits/);
      const unknown = await cli(dir, ["exp", "--run", "0".repeat(64)]);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /no run 000000000000 is planned in .*FINELAB_RESULTS/s);
      const both = await cli(dir, ["exp", "faults", "--run", "0".repeat(64)]);
      assert.equal(both.code, 2);
      assert.match(both.stderr, /give no experiment id/);
    });
  },
);

/**
 * `exp --tag <name>` end to end (tiny dense-baseline, cpu backend): the tag is recorded with the runs and
 * queryable, is not part of the hash (a cached run is tagged without retraining), survives `db rebuild`,
 * shows in `runs`; tagged and --set runs leave the experiment's current results to its declared plan; bad
 * names are one clear error with exit 2 and nothing stored.
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "../util/paths.ts";
import { cli as run, ok as okOut, SUITE } from "./faults/helpers.ts";
import { withTempDir } from "../util/testing.ts";

const TINY = ["dense-baseline", "--scale", "tiny", "--backend", "cpu", "--plain", "--no-plot"];
const cli = (results: string, args: string[]) => run(results, args, { experiments: `${REPO_ROOT}/experiments` });
const ok = async (results: string, args: string[]) => okOut(await cli(results, args), args.join(" ")).stdout;

const rows = async (results: string, sql: string) =>
  JSON.parse(await ok(results, ["query", sql, "--format", "json"])) as Record<string, unknown>[];
const hashes = async (results: string, sql: string) => (await rows(results, sql)).map((r) => String(r.hash)).sort();

Deno.test(
  "exp --tag: recorded and queryable, not in the hash, declared plan stays current, bad names exit 2",
  SUITE,
  async () => {
    await withTempDir("tag", async (results) => {
      assert.match(await ok(results, ["exp", ...TINY]), /2 runs: 2 trained/);
      const declared = await hashes(results, "SELECT hash FROM current_runs WHERE experiment = 'dense-baseline'");
      assert.equal(declared.length, 2);

      // Tagging the cached plan retrains nothing and keeps the hashes.
      const tagged = await ok(results, ["exp", ...TINY, "--tag", "lr-probe"]);
      assert.match(tagged, /2 runs: 2 cached/);
      assert.deepEqual(await hashes(results, "SELECT hash FROM tagged_runs WHERE tag = 'lr-probe'"), declared);

      // A tagged --set run is stored and tagged, but current_runs stays the declared plan.
      assert.match(await ok(results, ["exp", ...TINY, "--set", "train.lr=1e-3", "--tag", "lr-1e-3"]), /2 trained/);
      const probe = await hashes(results, "SELECT hash FROM tagged_runs WHERE tag = 'lr-1e-3'");
      assert.equal(probe.length, 2);
      assert.ok(probe.every((h) => !declared.includes(h)));
      assert.deepEqual(
        await hashes(results, "SELECT hash FROM current_runs WHERE experiment = 'dense-baseline'"),
        declared,
      );
      assert.deepEqual(
        (await rows(results, "SELECT train_lr FROM tagged_runs WHERE tag = 'lr-1e-3'")).map((r) => r.train_lr),
        [1e-3, 1e-3],
      );

      // A run carries several tags; `runs` shows them; db rebuild restores them from the cache.
      await ok(results, ["exp", ...TINY, "--tag", "second"]);
      const listed = JSON.parse(await ok(results, ["runs", "--format", "json"])) as { hash: string; tags: string }[];
      const declaredRow = listed.find((r) => declared[0].startsWith(r.hash))!;
      assert.equal(declaredRow.tags, "lr-probe,second");
      await ok(results, ["db", "rebuild"]);
      assert.deepEqual(
        (await rows(results, "SELECT tag, count(*)::INTEGER AS n FROM run_tags GROUP BY tag ORDER BY tag"))
          .map((r) => [r.tag, r.n]),
        [["lr-1e-3", 2], ["lr-probe", 2], ["second", 2]],
      );

      // Bad names: one clear error, exit 2, nothing stored.
      const before = await Deno.readTextFile(`${results}/cache/tags.jsonl`);
      for (const bad of ["", "x".repeat(65), "a b", "../etc", "-dash", "émoji"]) {
        const o = await cli(results, ["exp", ...TINY, "--set", "train.lr=3e-3", "--tag", bad]);
        assert.equal(o.code, 2, `--tag ${JSON.stringify(bad)}: exit ${o.code}\n${o.stderr}`);
        assert.match(o.stderr, /^error: --tag: .*tag/);
        assert.equal(o.stderr.trim().split("\n").length, 1, o.stderr);
      }
      assert.equal(await Deno.readTextFile(`${results}/cache/tags.jsonl`), before);
      assert.equal((await rows(results, "SELECT hash FROM runs")).length, 4, "no run of the bad invocations");
    });
  },
);

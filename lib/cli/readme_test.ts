/**
 * The README cannot rot: every `deno task` command and every SQL query it shows (and those of docs/*.md and
 * bench/README.md) is executed here, against a small results folder of synthetic runs of the experiments they name.
 *
 * - SQL (```sql blocks and `deno task query "..."` commands) runs on the read-only console
 *   (lib/store/readonly.ts, what `deno task query` runs) and must return rows: a stale filter that matches
 *   nothing fails like a stale column does.
 * - `exp` commands run as `--dry-run` (they validate the id, the flags and the config; the quickstart test trains
 *   one at tiny scale); `plot`, `runs`, `list`, `db` run as they are. A `$ deno task ...` line followed by output
 *   must print that output's first line.
 * - The test suite, benchmarks and builds (`test`, `test:faults`, `check`, `bench`, `bench:*`, `build:*`), the
 *   dashboard (`serve`, `report`, `diff`: lib/serve has its own tests) and `data fetch|prepare` (network, minutes;
 *   lib/data tests them) are not run from here; they must be tasks of deno.json.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../store/mod.ts";
import { addTags, syncTags } from "../runner/tags.ts";
import { queryReadOnly } from "../store/readonly.ts";
import { syntheticRunRecord } from "../store/testing.ts";
import type { RunRecord } from "../core/records.ts";
import { cli, SUITE, tempResults } from "../cli/faults/helpers.ts";
import { withDir } from "../util/testing.ts";
import { REPO_ROOT } from "../util/paths.ts";

/** The README and the docs it links to (docs/*.md, bench/README.md): their commands and queries are run too. */
const DOCS = [
  "README.md",
  ...[...Deno.readDirSync(join(REPO_ROOT, "docs"))].map((e) => `docs/${e.name}`).filter((f) => f.endsWith(".md"))
    .sort(),
  "bench/README.md",
];
const README = DOCS.map((f) => Deno.readTextFileSync(join(REPO_ROOT, f))).join("\n\n");
const TASKS = Object.keys(JSON.parse(await Deno.readTextFile(join(REPO_ROOT, "deno.json"))).tasks);
const NOT_RUN = /^(test|test:faults|check|bench|bench:\w+|build:\w+|serve|report|diff)$/;
/** Commands that need the network or minutes (tested in lib/data): shown, checked to be tasks, not run here. */
const NOT_RUN_ARGS = /^data (fetch|prepare)\b/;

/** A `deno task` command shown in the README, split like a shell would (quotes kept together). */
interface Shown {
  args: string[];
  /** The first output line shown after a `$ ` command, if any. */
  output?: string;
}

function shellSplit(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

/** Every `deno task ...` command of the README: in code blocks (before a `#` comment) and in inline code. */
export function readmeCommands(md: string): Shown[] {
  const shown: Shown[] = [];
  const blocks = [...md.matchAll(/```(\w*)\n([\s\S]*?)```/g)];
  for (const [, lang, body] of blocks) {
    if (lang !== "sh" && lang !== "") continue;
    const lines = body.replace(/\\\n\s*/g, " ").split("\n"); // a trailing backslash continues the command
    lines.forEach((line, i) => {
      const m = /^(\$ )?deno task (.*?)(\s+#.*)?$/.exec(line.trim());
      if (!m) return;
      shown.push({ args: shellSplit(m[2]), output: m[1] ? lines[i + 1]?.trim() : undefined });
    });
  }
  const prose = md.replace(/```[\s\S]*?```/g, "");
  for (const m of prose.matchAll(/`deno task ([^`]+)`/g)) shown.push({ args: shellSplit(m[1].replace(/\s+/g, " ")) });
  return shown;
}

/** Every SQL query of the README: ```sql blocks and the SQL of `deno task query "..."` commands. */
export function readmeQueries(md: string): string[] {
  const sql = [...md.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]);
  for (const c of readmeCommands(md)) if (c.args[0] === "query" && !c.args[1].includes("<")) sql.push(c.args[1]);
  return sql;
}

/** Synthetic runs of the experiments the README's queries name, with a current plan each. */
async function fixture(): Promise<string> {
  const dir = await tempResults("readme");
  const records: RunRecord[] = [];
  for (const seed of [0, 1]) {
    records.push(syntheticRunRecord({ experiment: "dense-baseline", variant: "dense", seed, steps: 20, evalEvery: 5 }));
    records.push(syntheticRunRecord({ experiment: "ablation-mk", variant: "dense", seed, steps: 20 }));
    for (const [m, k] of [[1, 4], [2, 2]]) {
      records.push(syntheticRunRecord({
        experiment: "ablation-mk",
        variant: `${m}x${k}`,
        seed,
        steps: 20,
        ffn: { kind: "finedeep", m, k },
        extra: { "nsar_gate_0.1": 0.6 + 0.01 * m },
      }));
    }
  }
  const experiments = ["dense-baseline", "ablation-mk"].map((id) => {
    const runs = records.filter((r) => r.manifest.experiment === id);
    return {
      id,
      description: id,
      module: `experiments/${id}.ts`,
      n_runs: runs.length,
      plan: { scale: "tiny", runs: runs.map((r) => ({ hash: r.manifest.hash, run_id: r.manifest.run_id })) },
    };
  });
  const store = await openStore(`${dir}/results.duckdb`);
  await store.ingest(records, experiments);
  // One tagged run (what `exp --tag lr-probe` records), for the README's tagged_runs query.
  const paths = { cache: `${dir}/cache` };
  const probe = records[0].manifest;
  await addTags(paths, "lr-probe", [{ hash: probe.hash, experiment: probe.experiment, run_id: probe.run_id }]);
  await syncTags(store, paths);
  await store.close();
  return dir;
}

const OPTS = { experiments: join(REPO_ROOT, "experiments") };

Deno.test("README: the commands and queries are found (the extractor itself)", () => {
  const cmds = readmeCommands(README).map((c) => c.args.join(" "));
  for (const c of ["exp dense-baseline --scale tiny", "query", "runs", "list", "db rebuild", "plot dense-baseline"]) {
    assert.ok(cmds.some((x) => x.startsWith(c)), `README shows no "deno task ${c}"`);
  }
  assert.ok(readmeQueries(README).length >= 4);
  assert.deepEqual(shellSplit(`query "SELECT 'a b' FROM t" --format csv`), [
    "query",
    "SELECT 'a b' FROM t",
    "--format",
    "csv",
  ]);
});

Deno.test({
  name: "README: every SQL query runs on the read-only console and returns rows",
  ...SUITE,
  async fn() {
    await withDir(fixture(), async (dir) => {
      for (const sql of readmeQueries(README)) {
        const results = await queryReadOnly(dir, sql).catch((e) => assert.fail(`README query failed: ${e}\n${sql}`));
        for (const r of results) {
          assert.ok(r.result.rows.length > 0, `README query (statement ${r.index}) returns no rows:\n${sql}`);
        }
      }
    });
  },
});

Deno.test({
  name: "README: every deno task command runs (exp as --dry-run); shown output matches",
  ...SUITE,
  async fn() {
    await withDir(fixture(), async (dir) => {
      const seen = new Set<string>();
      const shown = readmeCommands(README);
      // db rebuild replaces the fixture database with one built from the (empty) cache: run it last.
      shown.sort((a, b) => Number(a.args[0] === "db") - Number(b.args[0] === "db"));
      for (const c of shown) {
        const [task, ...rest] = c.args;
        if (task.includes("|")) { // a pattern such as exp|query|plot: each must be a task
          for (const t of task.split("|")) assert.ok(TASKS.includes(t), `README names "deno task ${t}", not a task`);
          continue;
        }
        assert.ok(TASKS.includes(task), `README shows "deno task ${task}", which is not a task of deno.json`);
        if (NOT_RUN.test(task) || NOT_RUN_ARGS.test(c.args.join(" ")) || c.args.some((a) => a.includes("<"))) continue; // placeholders: a pattern, not a command
        if (task === "query") continue; // its SQL ran in the test above
        const args = task === "exp" && !rest.includes("--dry-run") ? [task, ...rest, "--dry-run"] : [task, ...rest];
        const key = args.join(" ");
        if (seen.has(key)) continue;
        seen.add(key);
        const o = await cli(dir, args, OPTS);
        if (c.output) {
          // An exp transcript of a real run (a Slurm submission, say) cannot appear in its dry run, which must pass.
          const found = o.stderr.includes(c.output) || o.stdout.includes(c.output);
          const dryRunOk = args.length !== c.args.length && o.code === 0;
          assert.ok(found || dryRunOk, `deno task ${key}: no "${c.output}"`);
        } else {
          assert.equal(o.code, 0, `deno task ${key}: exit ${o.code}\n${o.stdout}\n${o.stderr}`);
        }
      }
      assert.ok(seen.size >= 6, `ran ${[...seen].join("; ")}`);
    });
  },
});

/**
 * The read-only commands through the CLI: `query` refuses writes and file access outside the results folder
 * (exit 2, nothing changed), prints every statement of a call; `query`, `runs` and `plot --out` work on a
 * read-only results folder; an unusable results folder is one clear message and exit 2.
 *
 * @module
 */
import assert from "node:assert/strict";
import { cleanup, cli, dbRows, ok, SUITE, tempResults } from "../cli/faults/helpers.ts";
import { withTempDir } from "../util/testing.ts";
import { REPO_ROOT } from "../util/paths.ts";
import { permissionFlags } from "./permissions.ts";

const dec = new TextDecoder();

/** One trained results folder shared by the tests of this file (the fault fixture: one run, wasm, seconds). */
let shared: string | null = null;
async function trained(): Promise<string> {
  if (shared) return shared;
  const r = await tempResults("ro-cli");
  ok(await cli(r, ["exp", "faults", "--no-plot"]), "exp faults");
  return shared = r;
}

/** Whether this machine lets us mount a read-only bind mount in a private namespace. */
const canRemountRo = await new Deno.Command("unshare", {
  args: ["-rm", "sh", "-c", "mount --bind /tmp /tmp && mount -o remount,ro,bind /tmp"],
  stdout: "null",
  stderr: "null",
}).output().then((o) => o.code === 0).catch(() => false);

/** Runs the CLI with `results` mounted read-only (a private mount namespace). */
async function cliReadOnlyMount(results: string, args: string[], extraWrite: string[] = []) {
  const flags = [
    "--no-prompt",
    "--unstable-webgpu",
    ...permissionFlags({
      root: REPO_ROOT,
      results,
      experiments: `${REPO_ROOT}/lib/cli/faults/testdata/experiments`,
      extraWrite,
    }),
  ];
  const inner = [Deno.execPath(), "run", ...flags, `${REPO_ROOT}/lib/cli/main.ts`, ...args];
  const out = await new Deno.Command("unshare", {
    args: [
      "-rm",
      "sh",
      "-c",
      `mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"`,
      results,
      ...inner,
    ],
    cwd: REPO_ROOT,
    env: {
      FINELAB_RESULTS: results,
      FINELAB_EXPERIMENTS: `${REPO_ROOT}/lib/cli/faults/testdata/experiments`,
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "query: refuses DELETE, COPY TO and ATTACH with exit 2, changes and writes nothing; runs each statement",
  ...SUITE,
  async fn() {
    const r = await trained();
    const before = await dbRows(r, "SELECT count(*)::INTEGER AS n FROM runs");
    for (
      const [sql, re] of [
        ["DELETE FROM runs", /refused \(DELETE\): it writes to the database; nothing was run/],
        ["COPY runs TO '/tmp/finelab_cli_evil.csv'", /refused file access outside the results folder/],
        ["ATTACH '/tmp/finelab_cli_evil.duckdb'", /refused \(ATTACH\)/],
        ["SELECT 1; DROP TABLE runs", /refused statement 2 of 2 \(DROP\)/],
      ] as const
    ) {
      const o = await cli(r, ["query", sql]);
      assert.equal(o.code, 2, `${sql}: ${o.stderr}`);
      assert.match(o.stderr, re);
      assert.doesNotMatch(o.stderr, /bug in finelab/);
      assert.equal(o.stdout, "", `${sql}: nothing printed`);
    }
    assert.deepEqual(await dbRows(r, "SELECT count(*)::INTEGER AS n FROM runs"), before);
    for (const f of ["/tmp/finelab_cli_evil.csv", "/tmp/finelab_cli_evil.duckdb"]) {
      assert.throws(() => Deno.statSync(f), Deno.errors.NotFound);
    }
    const o = ok(await cli(r, ["query", "SELECT 1 AS a; SELECT count(*) AS n FROM runs", "--format", "csv"]));
    assert.equal(o.stdout, "-- statement 1 of 2 (SELECT)\na\r\n1\r\n\n-- statement 2 of 2 (SELECT)\nn\r\n1\r\n\n");
  },
});

Deno.test({
  name: "read-only results folder: query, runs and plot --out work; exp says the folder is not writable (exit 2)",
  ignore: !canRemountRo,
  ...SUITE,
  async fn() {
    const r = await trained();
    const q = await cliReadOnlyMount(r, ["query", "SELECT run_id, status FROM runs", "--format", "csv"]);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(q.stdout, "run_id,status\r\ntoy/s0,completed\r\n\n");
    const runs = await cliReadOnlyMount(r, ["runs", "--format", "csv"]);
    assert.equal(runs.code, 0, runs.stderr);
    assert.match(runs.stdout, /faults,toy\/s0,[0-9a-f]{12},completed/);
    await withTempDir("plot-out", async (out) => {
      const p = await cliReadOnlyMount(r, ["plot", "faults", "--out", out], [out]);
      assert.equal(p.code, 0, p.stderr);
      assert.deepEqual([...Deno.readDirSync(out)].map((e) => e.name).sort(), [
        "final_val_ppl.png",
        "final_val_ppl.svg",
        "loss_curves.png",
        "loss_curves.svg",
      ]);
    });
    const e = await cliReadOnlyMount(r, ["exp", "faults", "--no-plot"]);
    assert.equal(e.code, 2, e.stderr);
    assert.match(e.stderr, /cannot write to the results folder .*read-only file system.*FINELAB_RESULTS/s);
  },
});

Deno.test({
  name: "unusable results folder (a file, /proc): one clear message, exit 2, no bug report",
  ...SUITE,
  async fn() {
    await withTempDir("ro-file", async (dir) => {
      const file = `${dir}/not-a-folder`;
      await Deno.writeTextFile(file, "x");
      for (
        const [results, args, re] of [
          [file, ["exp", "faults"], /the results folder .*not-a-folder is a file, not a folder/],
          [file, ["runs"], /is a file, not a folder/],
          [file, ["query", "SELECT 1"], /is a file, not a folder/],
          ["/proc", ["exp", "faults"], /cannot (use|write to) the results folder \/proc/],
        ] as const
      ) {
        const o = await cli(results, [...args]);
        assert.equal(o.code, 2, `${results} ${args.join(" ")}: ${o.stderr}`);
        assert.match(o.stderr, re);
        assert.match(o.stderr, /FINELAB_RESULTS/);
        assert.doesNotMatch(o.stderr, /bug in finelab/);
      }
      assert.equal(await Deno.readTextFile(file), "x");
    });
  },
});

Deno.test({
  name: "exp with --set overrides: runs are stored, the experiment's current results stay its declared plan's",
  ...SUITE,
  async fn() {
    const r = await trained();
    const [declared] = await dbRows(r, "SELECT hash FROM current_runs WHERE experiment = 'faults'");
    const o = ok(await cli(r, ["exp", "faults", "--no-plot", "--set", "train.steps=6"]), "exp --set");
    assert.match(o.stdout, /1 runs: 1 trained/);
    assert.match(o.stdout, /current results, plots and verdict stay those of its declared plan/);
    assert.match(o.stdout, /toy +\| +1 \|/, "the summary is of the override runs");
    assert.deepEqual(await dbRows(r, "SELECT hash FROM current_runs WHERE experiment = 'faults'"), [declared]);
    const all = await dbRows(r, "SELECT train_steps FROM runs WHERE experiment = 'faults' ORDER BY train_steps");
    assert.deepEqual(all.map((x) => x.train_steps), [6, 12]);
  },
});

Deno.test({ name: "read-only CLI tests: cleanup", ...SUITE, fn: () => cleanup(...(shared ? [shared] : [])) });

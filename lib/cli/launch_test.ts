import assert from "node:assert/strict";
import { argPaths, descriptors, entryOf } from "./launch.ts";
import { REPO_ROOT } from "../util/paths.ts";
import { cleanup, SUITE, tempResults } from "../cli/faults/helpers.ts";

const dec = new TextDecoder();

async function task(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1", FINELAB_DEBUG: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * A launcher test (the fault suite's options) with a temp results folder and a temp folder named
 * `finelab-<prefix>-…`, both removed after it.
 */
function launcherTest(name: string, prefix: string, fn: (results: string, tmp: string) => Promise<void>): void {
  Deno.test({
    name,
    ...SUITE,
    async fn() {
      const results = await tempResults(prefix), tmp = await Deno.makeTempDir({ prefix: `finelab-${prefix}-` });
      try {
        await fn(results, tmp);
      } finally {
        await cleanup(results, tmp);
      }
    },
  });
}

Deno.test("argPaths: --config files are read, plot --out is written (both spellings), relative paths resolved", () => {
  assert.deepEqual(argPaths(["exp", "x", "--config", "/a/b.yaml", "--config=c.yaml", "--set", "k=v"]), {
    read: ["/a/b.yaml", `${Deno.cwd()}/c.yaml`],
    write: [],
  });
  assert.deepEqual(argPaths(["plot", "x", "--out", "/tmp/p"]), { read: [], write: ["/tmp/p"] });
  assert.deepEqual(argPaths(["exp", "x", "--config"]), { read: [], write: [] }); // commander reports it
  assert.deepEqual(descriptors(["--allow-read=/a,/b", "--allow-ffi", "--allow-sys=cpus"]), [
    { name: "read", path: "/a" },
    { name: "read", path: "/b" },
    { name: "ffi", path: undefined },
    { name: "sys", kind: "cpus" },
  ]);
});

launcherTest(
  "launcher: one process for the default layout; relaunches with computed flags for a results folder or " +
    "--config file outside the project; the task line is short",
  "launch",
  async (results, tmp) => {
    const list = await task(["list"], {});
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^dense-baseline$/m);
    assert.doesNotMatch(list.stderr, /launcher: relaunching/);
    const echo = list.stderr.split("\n").find((l) => l.startsWith("Task list"))!;
    assert.ok(echo.length < 100, `task line: ${echo}`);

    const runs = await task(["runs", "--format", "json"], { FINELAB_RESULTS: results });
    assert.equal(runs.code, 0, runs.stderr);
    assert.match(runs.stderr, /launcher: relaunching with --allow-read=[^ ]*finelab-launch-/);
    assert.deepEqual(JSON.parse(runs.stdout), []);

    // a --config file outside the project is readable (Deno's --allow-read advice is not the user's to follow)
    await Deno.writeTextFile(`${tmp}/over.yaml`, "train:\n  lr: 0.001\n");
    const exp = await task(["exp", "faults", "--config", `${tmp}/over.yaml`, "--dry-run"], {
      FINELAB_RESULTS: results,
      FINELAB_EXPERIMENTS: "lib/cli/faults/testdata/experiments",
    });
    assert.equal(exp.code, 0, exp.stderr);
    assert.match(exp.stdout, /faults \(scale default, backend wasm\): 1 runs/);
    assert.match(exp.stdout, /toy\/s0 +[0-9a-f]{16} +to train/);
  },
);

Deno.test("entryOf: serve, report and diff run the dashboard's main, every other command the CLI's", () => {
  for (const c of ["serve", "report", "diff"]) assert.match(entryOf([c]).pathname, /\/lib\/serve\/main\.ts$/);
  for (const c of ["exp", "query", "list"]) assert.match(entryOf([c]).pathname, /\/lib\/cli\/main\.ts$/);
});

launcherTest(
  "launcher: `deno task report --out <outside>` and `diff` run in the launcher (no second process to compute " +
    "permissions); an output folder outside the project relaunches with exactly that write path",
  "launch-report",
  async (results, out) => {
    const diff = await task(["diff", "nosuchrun", "another"], {});
    assert.equal(diff.code, 2, diff.stderr);
    // The project's own results folder: with a database the references are unknown, without one it says so.
    assert.match(diff.stderr, /names no run or variant|no results database at /);
    assert.doesNotMatch(diff.stderr, /launcher: relaunching|permissions\.ts/);
    const report = await task(["report", "--out", out], { FINELAB_RESULTS: results });
    assert.equal(report.code, 0, report.stderr);
    assert.match(report.stderr, new RegExp(`launcher: relaunching with .*--allow-write=[^ ]*${out}`));
    assert.match(report.stdout, /wrote \d+ pages/);
    assert.ok((await Deno.stat(`${out}/index.html`)).isFile);
  },
);

import assert from "node:assert/strict";
import type { Plan } from "../runner/plan.ts";
import type { ProjectPaths } from "../util/paths.ts";
import { withTempDir } from "../util/testing.ts";
import { memoOutputs, memoPlan, saveOutputs, savePlan, stampInputs } from "./noop.ts";

/** A throwaway project in `root`: lib/, experiments/, data/, deno.json, deno.lock and a results folder. */
async function project(root: string): Promise<ProjectPaths> {
  for (const d of ["lib/train", "experiments", "data", "results/cache/abc", "results/plots/e"]) {
    await Deno.mkdir(`${root}/${d}`, { recursive: true });
  }
  for (const f of ["lib/train/mod.ts", "experiments/e.ts", "data/d.ts", "deno.json", "deno.lock"]) {
    await Deno.writeTextFile(`${root}/${f}`, `// ${f}\nexport const x = 1;\n`);
  }
  await Deno.writeTextFile(
    `${root}/results/cache/abc/status.json`,
    '{"status":"completed","files":{"summary.json":"x"}}',
  );
  await Deno.writeTextFile(`${root}/results/cache/abc/summary.json`, "{}");
  await Deno.writeTextFile(`${root}/results/results.duckdb`, "db");
  await Deno.writeTextFile(`${root}/results/plots/e/loss.svg`, "<svg/>");
  await settle();
  return {
    root,
    results: `${root}/results`,
    cache: `${root}/results/cache`,
    db: `${root}/results/results.duckdb`,
    plots: `${root}/results/plots`,
    experiments: `${root}/experiments`,
  } as ProjectPaths;
}

function fakePlan(paths: ProjectPaths): Plan {
  const run = { run_id: "v/s0", hash: "abc", parent: null, paths: { dir: `${paths.cache}/abc` } };
  return {
    experiment: { id: "e" },
    scale: "tiny",
    backend: { name: "native", reason: "auto: native openblas" },
    runs: [{ ...run, config: { experiment: "e", data: { dataset: "d" } } }],
    dependencies: [],
  } as unknown as Plan;
}

/** Waits past the window in which a fresh change is not trusted (noop.ts RACY_MS). */
const settle = () => new Promise((r) => setTimeout(r, 2100));

/** Runs `fn` on a fresh {@link project} in a temporary folder, removed afterwards. */
const withProject = (fn: (paths: ProjectPaths) => Promise<void>) =>
  withTempDir("noop", async (root) => fn(await project(root)));

const REQUEST = { id: "e", scale: "tiny", set: [], config: [] };

/** Rewrites a file with different content of the same size and puts its mtime back. */
async function sneakyEdit(path: string): Promise<void> {
  const before = await Deno.stat(path);
  const text = await Deno.readTextFile(path);
  await Deno.writeTextFile(path, text.replace("x = 1", "x = 2"));
  await Deno.utime(path, before.atime!, before.mtime!);
  assert.equal((await Deno.stat(path)).mtime?.getTime(), before.mtime?.getTime());
}

Deno.test("noop memo: a plan is reused until any input changes (even an edit that keeps size and mtime)", async () => {
  await withProject(async (paths) => {
    await savePlan(paths, await stampInputs(paths, REQUEST), fakePlan(paths));
    const plan = await memoPlan(paths, REQUEST);
    assert.deepEqual(plan?.runs.map((r) => [r.run_id, r.hash, r.dependency]), [["v/s0", "abc", null]]);
    assert.equal(await memoPlan(paths, { ...REQUEST, scale: "default" }), null, "another request");
    assert.equal(await memoPlan(paths, { ...REQUEST, set: ["train.lr=1"] }), null, "another request");

    await sneakyEdit(`${paths.root}/lib/train/mod.ts`);
    assert.equal(await memoPlan(paths, REQUEST), null, "an edit on the code path is noticed");
    await savePlan(paths, await stampInputs(paths, REQUEST), fakePlan(paths));
    assert.equal(await memoPlan(paths, REQUEST), null, "a change this recent is not trusted yet");

    await settle();
    await savePlan(paths, await stampInputs(paths, REQUEST), fakePlan(paths));
    assert.ok(await memoPlan(paths, REQUEST));
    await Deno.writeTextFile(`${paths.root}/lib/train/new.ts`, "export {};\n");
    assert.equal(await memoPlan(paths, REQUEST), null, "a new file is noticed");

    await settle();
    await savePlan(paths, await stampInputs(paths, REQUEST), fakePlan(paths));
    assert.ok(await memoPlan(paths, REQUEST));
    await Deno.remove(`${paths.root}/data/d.ts`);
    assert.equal(await memoPlan(paths, REQUEST), null, "a removed file is noticed");
  });
});

Deno.test("noop memo: outputs are current until a status file, the database or a plot changes", async () => {
  await withProject(async (paths) => {
    await savePlan(paths, await stampInputs(paths, REQUEST), fakePlan(paths));
    assert.equal(await memoOutputs(paths, REQUEST, true), null, "no completed run recorded yet");
    const plots = [`${paths.plots}/e/loss.svg`];
    const save = () =>
      saveOutputs(paths, REQUEST, { declared: true, plot: true, printed: ["table", "verdict"], plots });
    await save();
    const hit = await memoOutputs(paths, REQUEST, true);
    assert.deepEqual(hit?.outputs.printed, ["table", "verdict"]);
    assert.equal(await memoOutputs(paths, REQUEST, false), null, "--no-plot is another rerun");

    const entry = `${paths.cache}/abc`;
    for (const changed of [`${entry}/status.json`, `${entry}/summary.json`, paths.db, plots[0]]) {
      const text = changed.endsWith("status.json")
        ? '{"status":"completed","files":{"summary.json":"yz"}}'
        : "changed!";
      await Deno.writeTextFile(changed, text);
      assert.equal(await memoOutputs(paths, REQUEST, true), null, `${changed} changed`);
      await save();
      assert.ok(await memoOutputs(paths, REQUEST, true));
    }
    await Deno.writeTextFile(`${paths.db}.wal`, "wal");
    assert.equal(await memoOutputs(paths, REQUEST, true), null, "a write-ahead log appeared");
  });
});

Deno.test("noop memo: a corrupt memo means plan again", async () => {
  await withProject(async (paths) => {
    await savePlan(paths, await stampInputs(paths, REQUEST), fakePlan(paths));
    for await (const e of Deno.readDir(`${paths.results}/memo`)) {
      await Deno.writeTextFile(`${paths.results}/memo/${e.name}`, "{ torn");
    }
    assert.equal(await memoPlan(paths, REQUEST), null);
    assert.equal(await memoOutputs(paths, REQUEST, true), null);
  });
});

/**
 * The dependency direction of lib/: each folder (layer) may import only the layers listed for it.
 * Data flows experiment -> runner -> train (models, data, backends) -> cache -> store -> report/plot;
 * `core` (shared types, the config, run records, hashing) and `util` are the bottom that every layer
 * may import, and `backends` (the tensor engine) imports nothing of the framework. The pipeline is
 * assembled by the API (lib/api, behind the root mod.ts) over the runner and the executors
 * (lib/executor); the CLI parses arguments, calls the API and prints: cli -> api -> runner/executor.
 *
 * Type-only imports count like value imports except where {@link TYPE_ONLY} allows them: core's
 * config is the union of the FFN variants' option types (lib/models/ffn/<kind>.ts), and the
 * experiment API re-exports them. Test files (`*_test.ts`) may import any layer but the CLI (only the
 * CLI's own tests may); test helpers that are not `_test.ts` files follow their layer's rule.
 */
import assert from "node:assert/strict";
import { relative } from "node:path";
import { localImports } from "./util/imports.ts";
import { REPO_ROOT } from "./util/paths.ts";

/** What the CLI may import: everything but the dashboard. */
const CLI_IMPORTS = [
  "core",
  "util",
  "experiment",
  "data",
  "models",
  "backends",
  "train",
  "store",
  "runner",
  "plot",
  "report",
  "api",
  "executor",
];
/** Layer -> the layers it may import (besides itself). */
const ALLOWED: Record<string, string[]> = {
  util: [],
  backends: [],
  core: ["util", "backends"],
  data: ["core", "util"],
  models: ["core", "util", "backends", "data"],
  train: ["core", "util", "models", "data", "backends"],
  experiment: ["core", "util"],
  store: ["core", "util"],
  runner: ["core", "util", "experiment", "data", "models", "backends", "train", "store"],
  plot: ["core", "util"],
  report: ["core", "util", "plot", "experiment"],
  cli: CLI_IMPORTS,
  // Other executors (lib/executor/slurm) sit beside the runner, under the API: they submit `exp --run <hash>`
  // invocations with the permission flags of lib/runner/permissions.ts; the API (and the CLI's Slurm status
  // display) calls them.
  executor: ["core", "util", "experiment", "data", "models", "backends", "train", "store", "runner"],
  // The dashboard reads the store and the cache (report/plot layer).
  serve: ["core", "util", "experiment", "train", "store", "runner", "plot", "report"],
  // The API (behind the root mod.ts) assembles the pipeline; the CLI calls it.
  api: CLI_IMPORTS.filter((l) => l !== "api"),
};
/** Type-only edges allowed besides {@link ALLOWED}: layer -> folders. */
const TYPE_ONLY: Record<string, string[]> = {
  core: ["lib/models/ffn/"],
  experiment: ["lib/models/ffn/"],
  plot: ["lib/store/"],
};
/** CLI modules any test may use: the harness that runs the CLI as `deno task` does. */
const TEST_HARNESS = ["lib/cli/faults/helpers.ts", "lib/cli/permissions.ts"];
/** core may import only the engine's vocabulary, not the engine. */
const NARROW: Record<string, string[]> = { "core->backends": ["lib/backends/names.ts"] };

/** One import of one file, repo-relative. */
interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

/** The layer of a repo-relative path: the folder under lib/, `api` for the root mod.ts. */
function layer(path: string): string | null {
  if (path === "mod.ts") return "api";
  const m = path.match(/^lib\/([^/]+)\//);
  return m ? m[1] : null;
}

/** Every edge that breaks the rules, as `from -> to (why)`. */
function violations(edges: Edge[]): string[] {
  const out: string[] = [];
  for (const e of edges) {
    const a = layer(e.from), b = layer(e.to);
    if (!a || !b || a === b) continue;
    if (e.from.endsWith("_test.ts")) {
      if (b === "cli" && a !== "cli" && !TEST_HARNESS.includes(e.to)) {
        out.push(`${e.from} -> ${e.to} (only the CLI's tests may import the CLI)`);
      }
      continue;
    }
    const rule = ALLOWED[a];
    if (!rule) {
      out.push(`${e.from}: layer ${a} has no rule in lib/layers_test.ts (add one)`);
      continue;
    }
    if (e.typeOnly && (TYPE_ONLY[a] ?? []).some((p) => e.to.startsWith(p))) continue;
    const narrow = NARROW[`${a}->${b}`];
    if (!rule.includes(b)) out.push(`${e.from} -> ${e.to} (${a} may import ${rule.join(", ") || "nothing of lib"})`);
    else if (narrow && !narrow.includes(e.to)) {
      out.push(`${e.from} -> ${e.to} (${a} may import only ${narrow.join(", ")})`);
    }
  }
  return out;
}

/** The import edges of every module under lib/ and of the root mod.ts. */
async function treeEdges(): Promise<Edge[]> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory && e.name !== "testdata" && e.name !== "build") await walk(p);
      else if (e.isFile && e.name.endsWith(".ts")) files.push(p);
    }
  };
  await walk(`${REPO_ROOT}/lib`);
  try {
    await Deno.stat(`${REPO_ROOT}/mod.ts`);
    files.push(`${REPO_ROOT}/mod.ts`);
  } catch { /* no root module */ }
  const edges: Edge[] = [];
  for (const f of files) {
    for (const i of await localImports(f)) {
      edges.push({ from: relative(REPO_ROOT, f), to: relative(REPO_ROOT, i.path), typeOnly: i.typeOnly });
    }
  }
  return edges;
}

Deno.test("layers: every import under lib/ points down the dependency direction", async () => {
  const edges = await treeEdges();
  assert.ok(edges.length > 200, `only ${edges.length} import edges found: is the reader broken?`);
  assert.deepEqual(violations(edges), []);
});

Deno.test("layers: an injected wrong import is reported", async () => {
  const edges = await treeEdges();
  const wrong: Edge[] = [
    { from: "lib/train/mod.ts", to: "lib/runner/plan.ts", typeOnly: true },
    { from: "lib/backends/init.ts", to: "lib/core/config.ts", typeOnly: true },
    { from: "lib/report/finedeep.ts", to: "lib/train/analysis.ts", typeOnly: false },
    { from: "lib/store/mod.ts", to: "lib/cli/main.ts", typeOnly: false },
    { from: "lib/core/config.ts", to: "lib/backends/mod.ts", typeOnly: false },
    { from: "lib/runner/plan_test.ts", to: "lib/cli/exp.ts", typeOnly: false },
    { from: "lib/executor/slurm/submit.ts", to: "lib/cli/run_cmd.ts", typeOnly: false },
    { from: "lib/api/mod.ts", to: "lib/cli/exp.ts", typeOnly: false },
  ];
  const found = violations([...edges, ...wrong]);
  assert.equal(found.length, wrong.length, found.join("\n"));
  for (const w of wrong) assert.ok(found.some((v) => v.startsWith(`${w.from} -> ${w.to}`)), `${w.from} -> ${w.to}`);
});

Deno.test("experiments: declarative modules that import only the experiment API, reports and their own presets", async () => {
  const problems: string[] = [];
  for await (const e of Deno.readDir(`${REPO_ROOT}/experiments`)) {
    if (!e.isFile || !e.name.endsWith(".ts") || e.name.endsWith("_test.ts")) continue;
    const path = `${REPO_ROOT}/experiments/${e.name}`;
    for (const i of await localImports(path)) {
      const to = relative(REPO_ROOT, i.path);
      const ok = to === "lib/experiment/mod.ts" || /^lib\/report\/[a-z_]+\.ts$/.test(to) || /^experiments\/_/.test(to);
      if (!ok) {
        problems.push(`experiments/${e.name} imports ${to} (allowed: lib/experiment/mod.ts, lib/report/, ./_*.ts)`);
      }
    }
    const text = await Deno.readTextFile(path);
    const code = text.replace(/^\/\*\*[\s\S]*?\*\/\n/, "").split("\n").filter((l) => l.trim()).length;
    if (code > 75) problems.push(`experiments/${e.name}: ${code} lines besides its doc comment (at most ~70)`);
    if (/\bSELECT\b|ctx\.query|Plot\./.test(text)) problems.push(`experiments/${e.name}: SQL or chart code`);
  }
  assert.deepEqual(problems, []);
});

import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { hashValue } from "../core/hash.ts";
import type { ConcreteBackend } from "../core/config.ts";
import { lockedIntegrity, moduleGraph, runCode } from "./identity.ts";
import { REPO_ROOT } from "../util/paths.ts";

async function project(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/deno.json`, "{}\n");
  for (const [p, t] of Object.entries(files)) {
    await Deno.mkdir(`${dir}/${p}`.replace(/\/[^/]+$/, ""), { recursive: true });
    await Deno.writeTextFile(`${dir}/${p}`, t);
  }
  return dir;
}

Deno.test("moduleGraph: a changed byte in an imported module changes only graphs that import it", async () => {
  const dir = await project({
    "lib/core.ts": "export const core = 1;\n",
    "lib/types.ts": "export interface T { x: number }\n",
    "lib/ffn/a.ts":
      "import { core } from '../core.ts';\nimport type { T } from '../types.ts';\nexport const a = core + 1;\n",
    "lib/ffn/b.ts": "import { core } from '../core.ts';\nexport const b = core + 2;\n",
  });
  const graphs = async () => {
    const a = await moduleGraph([`${dir}/lib/ffn/a.ts`], { repoRoot: dir });
    const b = await moduleGraph([`${dir}/lib/ffn/b.ts`], { repoRoot: dir });
    return { a: hashValue(a.code), b: hashValue(b.code), aCode: a.code };
  };
  const g1 = await graphs();
  // A type-only import is erased at run time: not part of the code that can change a result.
  assert.deepEqual(Object.keys(g1.aCode).sort(), ["lib/core.ts", "lib/ffn/a.ts"]);
  await Deno.writeTextFile(`${dir}/lib/ffn/a.ts`, "import { core } from '../core.ts';\nexport const a = core + 1; \n");
  const g2 = await graphs();
  assert.notEqual(g2.a, g1.a);
  assert.equal(g2.b, g1.b);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("moduleGraph: a missing import is an error, not a silent gap", async () => {
  const dir = await project({ "x.ts": "import './missing.ts';\n" });
  await assert.rejects(moduleGraph([`${dir}/x.ts`], { repoRoot: dir }), /Cannot resolve the imports of .*missing\.ts/s);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("moduleGraph + lockedIntegrity: npm packages of the trainer are pinned by deno.lock", async () => {
  const g = await moduleGraph([`${REPO_ROOT}/lib/experiment/expand.ts`], { repoRoot: REPO_ROOT });
  assert.ok(g.npm.some((p) => p.startsWith("yaml@")), g.npm.join(","));
  const deps = await lockedIntegrity(g.npm, { repoRoot: REPO_ROOT });
  for (const p of g.npm) assert.match(deps[p], /^sha512-/);
  await assert.rejects(lockedIntegrity(["no-such-pkg@1.0.0"], { repoRoot: REPO_ROOT }), /deno\.lock has no integrity/);
});

Deno.test("moduleGraph with types reads the same local modules and npm packages as `deno info`", async () => {
  const root = `${REPO_ROOT}/lib/cli/main.ts`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", `${REPO_ROOT}/deno.json`, root],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { kind: string; specifier: string; local?: string; npmPackage?: string }[];
  };
  const local = info.modules.filter((m) => m.specifier.startsWith("file:") && m.local)
    .map((m) => relative(REPO_ROOT, m.local!)).sort();
  const direct = new Set(info.modules.filter((m) => m.npmPackage).map((m) => m.npmPackage!.replace(/_.*$/, "")));
  const g = await moduleGraph([root], { repoRoot: REPO_ROOT, types: true });
  assert.deepEqual(Object.keys(g.code).sort(), local);
  const ours = new Set(g.npm.map((p) => p.replace(/_.*$/, "")));
  for (const p of direct) assert.ok(ours.has(p), `deno info imports ${p}, moduleGraph misses it`);
});

/** A copy of the project's code (lib/, deno.json, deno.lock) to edit without touching the tree. */
async function copyProject(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "finelab-identity-" });
  const copy = async (rel: string) => {
    const stat = await Deno.stat(join(REPO_ROOT, rel));
    if (stat.isDirectory) {
      for await (const e of Deno.readDir(join(REPO_ROOT, rel))) {
        if (e.name !== "build" && e.name !== "testdata") await copy(join(rel, e.name));
      }
    } else if (/\.(ts|c|h)$/.test(rel) || !rel.includes("/")) {
      await Deno.mkdir(dirname(join(dir, rel)), { recursive: true });
      await Deno.copyFile(join(REPO_ROOT, rel), join(dir, rel));
    }
  };
  for (const p of ["lib", "deno.json", "deno.lock"]) await copy(p);
  return dir;
}

/** Files each backend's runs must hash (on its own path) and files of the other backends. */
const OWN: Record<string, string[]> = {
  native: [
    "lib/backends/native/backend.ts",
    "lib/backends/native/kernels/attention.c",
    "lib/backends/native/kernels/fl.h",
    "lib/backends/setup/native.ts",
  ],
  wasm: [
    "lib/backends/wasm_kernels.ts",
    "lib/backends/wasm_matmul.ts",
    "lib/backends/wasm_simd/kernels_wasm.ts",
    "lib/backends/wasm_fused.ts",
  ],
  webgpu: ["lib/backends/webgpu_fused.ts", "lib/backends/webgpu_kernels.ts", "lib/backends/setup/webgpu.ts"],
};
/** Files on every run's path (trainer, model, data batches, fused-op dispatch). */
const SHARED = ["lib/train/optim.ts", "lib/models/transformer.ts", "lib/backends/fused.ts", "lib/data/batches.ts"];
/** Files that cannot change a run's numbers. */
const NEVER = [
  "lib/store/mod.ts",
  "lib/store/schema.ts",
  "lib/plot/render.ts",
  "lib/report/finedeep.ts",
  "lib/runner/execute.ts",
  "lib/cli/main.ts",
  "lib/core/config.ts",
  "lib/models/ffn/dsmoe.ts",
];

Deno.test("run code hash: per backend, its own files and the shared path change it; other backends, store, plots, reports do not", async () => {
  const dir = await copyProject();
  try {
    const hash = async (backend: ConcreteBackend) =>
      hashValue((await runCode({ kind: "finedeep", backend }, { repoRoot: dir })).code);
    const touch = async (rel: string) => await Deno.writeTextFile(join(dir, rel), "\n// edited\n", { append: true });
    for (const backend of ["native", "wasm", "webgpu"] as const) {
      const before = await hash(backend);
      const others = Object.entries(OWN).filter(([b]) => b !== backend).flatMap(([, f]) => f);
      for (const f of [...others, ...NEVER]) {
        await touch(f);
        assert.equal(await hash(backend), before, `${backend}: editing ${f} changed the hash`);
      }
      let last = before;
      for (const f of [...OWN[backend], ...SHARED, "lib/models/ffn/finedeep.ts"]) {
        await touch(f);
        const now = await hash(backend);
        assert.notEqual(now, last, `${backend}: editing ${f} left the hash unchanged`);
        last = now;
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("moduleGraph: file: URL and absolute imports (experiment modules outside the project) are followed", async () => {
  const dir = await project({ "lib/a.ts": "export const a = 1;\n", "lib/b.ts": "export const b = 2;\n" });
  const other = await project({
    "exp.ts": `import { a } from ${JSON.stringify(`file://${dir}/lib/a.ts`)};\nimport { b } from "${dir}/lib/b.ts";\n`,
  });
  const g = await moduleGraph([`${other}/exp.ts`], { repoRoot: dir });
  assert.deepEqual(Object.keys(g.code).sort(), ["../" + other.split("/").pop() + "/exp.ts", "lib/a.ts", "lib/b.ts"]);
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(other, { recursive: true });
});

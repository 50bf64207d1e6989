import assert from "node:assert/strict";
import { canonicalJson, hashValue, lockedIntegrity, moduleGraph } from "./hash.ts";
import { REPO_ROOT } from "../util/paths.ts";

Deno.test("canonicalJson: key order does not change the hash", () => {
  const a = { train: { lr: 1e-3, steps: 10 }, model: { d_model: 64, ffn: { kind: "dense" } } };
  const b = { model: { ffn: { kind: "dense" }, d_model: 64 }, train: { steps: 10, lr: 0.001 } };
  assert.equal(canonicalJson(a), canonicalJson(b));
  assert.equal(hashValue(a), hashValue(b));
  assert.match(hashValue(a), /^[0-9a-f]{64}$/);
});

Deno.test("canonicalJson: any changed value changes the hash", () => {
  const base = { train: { lr: 1e-3, steps: 10 }, flag: true, name: "x", list: [1, 2] };
  const h = hashValue(base);
  for (
    const v of [{ ...base, flag: false }, { ...base, name: "y" }, { ...base, list: [2, 1] }, {
      ...base,
      train: { lr: 1.0000000000000002e-3, steps: 10 },
    }]
  ) assert.notEqual(hashValue(v), h);
  assert.equal(canonicalJson(-0), "0"); // one spelling for zero
});

Deno.test("canonicalJson: rejects values JSON cannot carry", () => {
  assert.throws(() => canonicalJson({ a: NaN }), /a = NaN: not a finite number/);
  assert.throws(() => canonicalJson({ a: Infinity }), /not a finite number/);
  assert.throws(() => canonicalJson({ a: undefined }), /undefined is not plain JSON/);
  assert.throws(() => canonicalJson({ a: new Map() }), /Map is not plain JSON/);
  assert.throws(() => canonicalJson({ a: () => 1 }), /function is not plain JSON/);
  assert.throws(() => canonicalJson({ a: 1n }), /bigint is not plain JSON/);
});

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
    "lib/ffn/a.ts": "import { core } from '../core.ts';\nexport const a = core + 1;\n",
    "lib/ffn/b.ts": "import { core } from '../core.ts';\nexport const b = core + 2;\n",
  });
  const graphs = async () => {
    const a = await moduleGraph(`${dir}/lib/ffn/a.ts`, { repoRoot: dir });
    const b = await moduleGraph(`${dir}/lib/ffn/b.ts`, { repoRoot: dir });
    return { a: hashValue(a.code), b: hashValue(b.code), aCode: a.code };
  };
  const g1 = await graphs();
  assert.deepEqual(Object.keys(g1.aCode).sort(), ["lib/core.ts", "lib/ffn/a.ts"]);
  // moduleGraph caches per process: use fresh file names to observe a change.
  await Deno.writeTextFile(`${dir}/lib/ffn/a.ts`, "import { core } from '../core.ts';\nexport const a = core + 1; \n");
  const { moduleGraph: fresh } = await import(`./hash.ts?fresh=${crypto.randomUUID()}`);
  const a2 = hashValue((await fresh(`${dir}/lib/ffn/a.ts`, { repoRoot: dir })).code);
  const b2 = hashValue((await fresh(`${dir}/lib/ffn/b.ts`, { repoRoot: dir })).code);
  assert.notEqual(a2, g1.a);
  assert.equal(b2, g1.b);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("moduleGraph: a missing import is an error, not a silent gap", async () => {
  const dir = await project({ "x.ts": "import './missing.ts';\n" });
  await assert.rejects(moduleGraph(`${dir}/x.ts`, { repoRoot: dir }), /Cannot resolve the imports of .*missing\.ts/s);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("moduleGraph + lockedIntegrity: npm packages of the trainer are pinned by deno.lock", async () => {
  const g = await moduleGraph(`${REPO_ROOT}/lib/experiment/expand.ts`, { repoRoot: REPO_ROOT });
  assert.ok(g.npm.some((p) => p.startsWith("yaml@")), g.npm.join(","));
  const deps = await lockedIntegrity(g.npm, { repoRoot: REPO_ROOT });
  for (const p of g.npm) assert.match(deps[p], /^sha512-/);
  await assert.rejects(lockedIntegrity(["no-such-pkg@1.0.0"], { repoRoot: REPO_ROOT }), /deno\.lock has no integrity/);
});

/** The library API: the README's example script runs as written (at --scale tiny) and says what it did. */
import assert from "node:assert/strict";
import { permissionFlags } from "./lib/cli/permissions.ts";
import { fromFileUrl, projectPaths, toFileUrl } from "./lib/util/paths.ts";
import * as finelab from "./mod.ts";

const ROOT = fromFileUrl(new URL(".", import.meta.url)).replace(/\/$/, "");

/** The ```ts block of the README's "Library" section. */
async function readmeScript(): Promise<string> {
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  const section = readme.slice(readme.indexOf("\n## Library"));
  const m = section.match(/```ts\n([\s\S]*?)```/);
  assert.ok(m, "README has a ## Library section with a ```ts block");
  return m[1];
}

Deno.test({
  name: "README library example: five lines that plan, train, store and query dense-baseline at scale tiny",
  sanitizeResources: false, // the in-process part loads the native backend's libraries and DuckDB once
  sanitizeOps: false,
  fn: async () => {
    const script = await readmeScript();
    assert.ok(script.trim().split("\n").filter((l) => l.trim()).length <= 5, script);
    const dir = await Deno.makeTempDir({ prefix: "finelab-api-" });
    try {
      const file = `${dir}/script.ts`;
      await Deno.writeTextFile(file, script.replace('"./mod.ts"', JSON.stringify(toFileUrl(`${ROOT}/mod.ts`).href)));
      const results = `${dir}/results`;
      const flags = permissionFlags({ root: ROOT, results, extraRead: [dir] });
      const run = () =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "--no-prompt", "--unstable-webgpu", "--config", `${ROOT}/deno.json`, ...flags, file],
          cwd: ROOT,
          env: { FINELAB_RESULTS: results, NO_COLOR: "1" },
          stdout: "piped",
          stderr: "piped",
        }).output();
      const out = await run();
      const text = new TextDecoder().decode(out.stdout), err = new TextDecoder().decode(out.stderr);
      assert.ok(out.success, `${text}\n${err}`);
      assert.match(text, /^\d+ runs: (trained, )*trained\n/m);
      const rows = [...text.matchAll(/│\s*\d+\s*│\s*"dense"\s*│\s*(\d)\s*│\s*([\d.]+)\s*│/g)];
      assert.equal(rows.length, 2, text); // tiny: two seeds
      for (const r of rows) assert.ok(Number(r[2]) > 0 && Number(r[2]) < 10, r[0]);
      // Run again: everything is cached, the same losses come back.
      const again = new TextDecoder().decode((await run()).stdout);
      assert.match(again, /^\d+ runs: (cached, )*cached\n/m);
      assert.deepEqual(
        [...again.matchAll(/"dense"\s*│\s*(\d)\s*│\s*([\d.]+)/g)].map((m) => m[2]),
        rows.map((r) => r[2]),
      );
      // The same results through the API in this process: runs() lists them, runOne(hash) finds each one cached.
      const paths = projectPaths(ROOT, results);
      const listed = await finelab.runs({ paths, experiment: "dense-baseline" });
      assert.equal(listed.filter((r) => r.status === "completed").length, 2, JSON.stringify(listed));
      const q = await finelab.query("SELECT hash FROM current_runs WHERE experiment = $e ORDER BY seed", {
        e: "dense-baseline",
      }, {
        paths,
      });
      for (const { hash } of q.rows) {
        const o = await finelab.runOne(String(hash), { paths, log: () => {} });
        assert.equal(o.action, "cached");
        assert.equal(o.record.manifest.hash, hash);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

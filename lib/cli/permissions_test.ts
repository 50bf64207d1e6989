import assert from "node:assert/strict";
import { NATIVE_PERMISSIONS } from "../backends/native/permissions.ts";
import { join } from "node:path";
import { ENV_VARS, permissionFlags } from "./permissions.ts";
import { REPO_ROOT } from "../util/paths.ts";
import { cleanup, cli, ok, SUITE, tempResults } from "./faults/helpers.ts";
import { SERVE_NET } from "./launch.ts";

const CLI_TASKS = ["exp", "query", "claims", "plot", "db", "runs", "list", "gc", "data"];
/** The dashboard's tasks: the same launcher and permission set (serve: plus listening on local interfaces). */
const DASHBOARD_TASKS = ["serve", "report", "diff"];

Deno.test("deno.json: the CLI tasks get their permissions from lib/cli/permissions.ts; no task has -A; network only to listen locally", async () => {
  const config = JSON.parse(await Deno.readTextFile(join(REPO_ROOT, "deno.json")));
  const tasks = config.tasks as Record<string, { command: string } | string>;
  // The permission set `finelab` is permissionFlags() of the default layout, flag for flag.
  const set: Record<string, unknown> = {};
  for (const f of permissionFlags({ root: ".", results: "results", execPath: "deno" })) {
    const m = /^--allow-(\w+)(?:=(.*))?$/.exec(f)!;
    set[m[1]] = m[2] === undefined ? true : m[2].split(",");
  }
  assert.deepEqual(config.permissions.finelab, set);
  for (const [name, t] of Object.entries(tasks)) {
    const cmd = typeof t === "string" ? t : t.command;
    assert.doesNotMatch(cmd, /(^|\s)(-A|--allow-all|--allow-net)(\s|$)/, `task ${name}: ${cmd}`);
    // Network: the dashboard listens on local interfaces (0.0.0.0 only when --host asks); the tests talk to 127.0.0.1.
    const net = [...cmd.matchAll(/--allow-net=(\S+)/g)].map((m) => m[1]);
    // bench:store times the dashboard's pages on a local port.
    const allowed: Record<string, string> = { serve: SERVE_NET, test: "127.0.0.1", "bench:store": "127.0.0.1" };
    assert.deepEqual(net, allowed[name] ? [allowed[name]] : [], `task ${name}: network ${net}`);
  }
  for (const name of [...CLI_TASKS, ...DASHBOARD_TASKS]) {
    const cmd = typeof tasks[name] === "string" ? tasks[name] as string : (tasks[name] as { command: string }).command;
    const net = name === "serve" ? ` --allow-net=${SERVE_NET.replace(/[.[\]]/g, "\\$&")}` : "";
    assert.match(
      cmd,
      new RegExp(`^deno run -q -P=finelab --no-prompt --unstable-webgpu${net} lib/cli/launch\\.ts ${name}$`),
      `task ${name}`,
    );
    assert.doesNotMatch(cmd, /--allow-(read|write|ffi|run|env|sys)(\s|$)/, `task ${name} has an unscoped flag`);
  }
});

Deno.test("permissionFlags: scoped flags; writes go to the results folder and the native build folder only", () => {
  const flags = permissionFlags({ root: "/p", results: "/scratch/r", experiments: "/p/exps", execPath: "/bin/deno" });
  assert.deepEqual(flags, [
    "--allow-read=/p,/scratch/r,/p/exps,/proc/cpuinfo",
    "--allow-write=/scratch/r,/p/lib/backends/native/build",
    "--allow-ffi", // unscoped: the native backend's pointer views need it
    "--allow-run=git,/bin/deno,cc,gcc",
    `--allow-env=${[...ENV_VARS, ...NATIVE_PERMISSIONS.env].join(",")}`,
    "--allow-sys=hostname,osRelease,cpus,networkInterfaces,systemMemoryInfo",
  ]);
  const def = permissionFlags({ execPath: "/bin/deno" });
  assert.equal(def[0], "--allow-read=.,results,/proc/cpuinfo");
  assert.equal(def[1], "--allow-write=results,lib/backends/native/build");
});

Deno.test({
  name: "permissions: `deno task runs` expands the computed flags and works; an experiment module cannot read, " +
    "write or fetch outside its sandbox",
  ...SUITE,
  async fn() {
    const results = await tempResults("perms");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "runs", "--format", "json"],
      cwd: REPO_ROOT,
      env: { FINELAB_RESULTS: results, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), []);

    const exps = await Deno.makeTempDir({ prefix: "finelab-perms-exps-" });
    const define = new URL("../experiment/mod.ts", import.meta.url).href;
    const attempts: Record<string, [string, RegExp]> = {
      readetc: [`Deno.readTextFileSync("/etc/hostname");`, /Requires read access to "\/etc\/hostname"/],
      writeroot: [`Deno.writeTextFileSync(${JSON.stringify(join(REPO_ROOT, "x.txt"))}, "x");`, /Requires write access/],
      fetch: [`await fetch("https://example.com/");`, /Requires net access to "example\.com/],
      spawn: [`new Deno.Command("sh", { args: ["-c", "true"] }).outputSync();`, /Requires run access to "sh"/],
      env: [`Deno.env.get("HOME");`, /Requires env access to "HOME"/],
    };
    for (const [id, [code]] of Object.entries(attempts)) {
      await Deno.writeTextFile(
        join(exps, `${id}.ts`),
        `import { defineExperiment } from ${JSON.stringify(define)};\n${code}\n` +
          `export default defineExperiment({ id: ${JSON.stringify(id)}, description: "x", seeds: [0] });\n`,
      );
    }
    for (const [id, [, denied]] of Object.entries(attempts)) {
      const o = await cli(results, ["exp", id, "--dry-run"], { experiments: exps });
      assert.equal(o.code, 2, `${id}: ${o.stderr}`);
      assert.match(o.stderr, /Cannot load experiment module/, id);
      assert.match(o.stderr, denied, id);
    }
    ok(await cli(results, ["runs"]));
    await cleanup(results, exps);
  },
});

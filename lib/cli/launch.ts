/**
 * The entry point of `deno task exp|query|plot|db|runs|list|gc|data` and of the dashboard's
 * `serve|report|diff` (lib/serve/main.ts): one Deno process in the common case.
 *
 * The tasks start `deno run -q -P=finelab lib/cli/launch.ts <command>`: the permission set `finelab` in
 * deno.json is {@link permissionFlags} for the default layout (a test keeps the two equal). When the command
 * line or the environment needs more (FINELAB_RESULTS, FINELAB_EXPERIMENTS, FINELAB_EXTRA_READ or
 * FINELAB_FONT_DIRS outside the project, a `--config` file elsewhere, `plot --out <folder>`), this relaunches
 * the CLI once with exactly the flags {@link permissionFlags} computes for them; otherwise it runs the CLI in
 * this process. `serve` also gets the network permission its task line grants (local interfaces only), also when
 * relaunched.
 *
 * @module
 */
import { resolve } from "node:path";
import { flagsFromEnv } from "./permissions.ts";
import { denoBinary } from "../util/deno_bin.ts";

/** Paths named on the command line that the CLI reads (`--config`) or writes (`plot --out`). */
export function argPaths(args: readonly string[]): { read: string[]; write: string[] } {
  const read: string[] = [], write: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const m = /^--(config|out)(?:=(.*))?$/.exec(args[i]);
    if (!m) continue;
    const value = m[2] ?? args[++i];
    if (value === undefined || value === "") continue; // commander reports the missing value
    (m[1] === "config" ? read : write).push(resolve(value));
  }
  return { read, write };
}

/** The permission descriptors of a list of flags as {@link permissionFlags} writes them. */
export function descriptors(flags: readonly string[]): Deno.PermissionDescriptor[] {
  const out: Deno.PermissionDescriptor[] = [];
  for (const f of flags) {
    const m = /^--allow-(read|write|run|env|sys|ffi)(?:=(.*))?$/.exec(f);
    if (!m) continue;
    const name = m[1];
    const values = m[2] === undefined ? [undefined] : m[2].split(",");
    for (const v of values) {
      if (name === "read" || name === "write" || name === "ffi") {
        out.push({ name, path: v } as Deno.PermissionDescriptor);
      } else if (name === "run") out.push({ name, command: v });
      else if (name === "env") out.push({ name, variable: v });
      else out.push({ name: "sys", kind: v as Deno.SysPermissionDescriptor["kind"] });
    }
  }
  return out;
}

/** The flags this command line needs, and those of them this process was not granted. */
export function missingFlags(args: readonly string[]): { flags: string[]; missing: Deno.PermissionDescriptor[] } {
  const extra = argPaths(args);
  const flags = flagsFromEnv({ extraRead: extra.read, extraWrite: extra.write, execPath: denoBinary() });
  const missing = descriptors(flags).filter((d) => Deno.permissions.querySync(d).state !== "granted");
  return { flags, missing };
}

/** The dashboard's commands: lib/serve/main.ts runs them (the CLI does not import the dashboard). */
const DASHBOARD = new Set(["serve", "report", "diff"]);

/** The module that runs `args` (its export `main(args)`): the dashboard's or the CLI's. */
export function entryOf(args: readonly string[]): URL {
  return new URL(DASHBOARD.has(args[0]) ? "../serve/main.ts" : "./main.ts", import.meta.url);
}

/** The interfaces `deno task serve` may listen on (its task line grants them; a relaunch passes them on). */
export const SERVE_NET = "127.0.0.1,localhost,0.0.0.0,[::1],[::]";

/** Runs the CLI in a child process with `flags` (stdio shared, SIGTERM forwarded); returns its exit code. */
async function relaunch(flags: string[], args: readonly string[]): Promise<number> {
  const net = args[0] === "serve" ? [`--allow-net=${SERVE_NET}`] : [];
  const child = new Deno.Command(denoBinary(), {
    args: ["run", "-q", "--no-prompt", "--unstable-webgpu", ...flags, ...net, entryOf(args).pathname, ...args],
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const forward = () => child.kill("SIGTERM");
  const ignore = () => {}; // Ctrl-C reaches the child too (same process group); it ends itself
  Deno.addSignalListener("SIGTERM", forward);
  Deno.addSignalListener("SIGINT", ignore);
  const status = await child.status;
  Deno.removeSignalListener("SIGTERM", forward);
  Deno.removeSignalListener("SIGINT", ignore);
  return status.signal ? 128 + (status.signal === "SIGINT" ? 2 : status.signal === "SIGKILL" ? 9 : 15) : status.code;
}

if (import.meta.main) {
  const { flags, missing } = missingFlags(Deno.args);
  if (missing.length > 0) {
    if (Deno.env.get("FINELAB_DEBUG")) console.error(`launcher: relaunching with ${flags.join(" ")}`);
    Deno.exit(await relaunch(flags, Deno.args));
  }
  // A computed specifier, so the CLI's import graph does not take in the dashboard.
  const { main } = await import(entryOf(Deno.args).href) as { main(args: string[]): Promise<number> };
  Deno.exit(await main(Deno.args));
}

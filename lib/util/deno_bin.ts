/**
 * The deno binary to spawn (`deno info` for the code hash, the CLI launcher): this process's own binary when
 * it may run it, else `deno` from PATH. The tasks' permission set names `deno`, which Deno resolves through
 * PATH (e.g. /usr/bin/deno) and does not match the binary behind a symlink that `Deno.execPath()` returns.
 *
 * @module
 */

/** This process's deno binary if it is allowed to run it, else `deno` (resolved through PATH). */
export function denoBinary(): string {
  const exec = Deno.execPath();
  try {
    if (Deno.permissions.querySync({ name: "run", command: exec }).state === "granted") return exec;
  } catch { /* unknown permission state: fall back to PATH */ }
  return "deno";
}
